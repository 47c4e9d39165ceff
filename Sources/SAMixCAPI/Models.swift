import Glibc
import SAMix

// Models: `ImageClassifier`s from the engine's `ModelZoo`, behind handles of kind `.model`.

/// Checks an NCHW float batch for `model`; returns its shape.
func readImageBatch(_ x: UnsafePointer<Float>?, _ shape: UnsafePointer<Int64>?, channels: Int,
                    name: String = "x") throws -> (UnsafePointer<Float>, [Int]) {
    let dims = try readShape(shape, 4, name: name, expectedRank: 4...4)
    guard dims[0] >= 1 else { throw CAPIError(.shape, "\(name) is an empty batch (N = 0)") }
    guard dims[1] == channels else {
        throw CAPIError(.shape, "\(name) has \(dims[1]) channels, the model expects \(channels) (shape \(dims))")
    }
    guard dims[2] >= 1, dims[3] >= 1 else { throw CAPIError(.shape, "\(name) has an empty image size \(dims)") }
    let p = try nonNull(x, name)
    try requireFinite(p, dims.reduce(1, *), name)
    return (p, dims)
}

@_cdecl("samix_model_create")
public func samix_model_create(_ name: UnsafePointer<CChar>?, _ numClasses: Int64, _ inChannels: Int64,
                               _ seed: UInt64, _ out: UnsafeMutablePointer<UInt64>?) -> Int32 {
    guarded("samix_model_create") {
        let out = try nonNull(out, "out")
        let arch = try readString(name, "name", maxBytes: 64)
        guard numClasses >= 1, numClasses <= 1_000_000 else {
            throw CAPIError(.invalidArgument, "num_classes must be in 1...1000000, got \(numClasses)")
        }
        guard inChannels >= 1, inChannels <= 4096 else {
            throw CAPIError(.invalidArgument, "in_channels must be in 1...4096, got \(inChannels)")
        }
        let model = try ModelZoo.make(arch, numClasses: Int(numClasses), inChannels: Int(inChannels), seed: seed)
        out.pointee = Registry.shared.insert(model, kind: .model)
    }
}

@_cdecl("samix_model_free")
public func samix_model_free(_ handle: UInt64) -> Int32 {
    freeHandle("samix_model_free", handle, .model)
}

/// out[4] = {num_classes, in_channels, parameter count (scalars), state-dict entries}.
@_cdecl("samix_model_info")
public func samix_model_info(_ handle: UInt64, _ out: UnsafeMutablePointer<Int64>?,
                             _ arch: UnsafeMutablePointer<CChar>?, _ cap: Int64,
                             _ needed: UnsafeMutablePointer<Int64>?) -> Int32 {
    guarded("samix_model_info") {
        try Registry.shared.with(handle, .model, as: ImageClassifier.self) { m in
            if let out {
                out[0] = Int64(m.numClasses)
                out[1] = Int64(m.inChannels)
                out[2] = Int64(m.parameterCount)
                out[3] = Int64(m.stateDict().count)
            }
            try copyOutString(m.architecture, arch, cap, needed)
        }
    }
}

@_cdecl("samix_model_set_training")
public func samix_model_set_training(_ handle: UInt64, _ training: Int32) -> Int32 {
    guarded("samix_model_set_training") {
        try Registry.shared.with(handle, .model, as: ImageClassifier.self) { m in m.train(training != 0) }
    }
}

@_cdecl("samix_model_is_training")
public func samix_model_is_training(_ handle: UInt64, _ out: UnsafeMutablePointer<Int32>?) -> Int32 {
    guarded("samix_model_is_training") {
        let out = try nonNull(out, "out")
        try Registry.shared.with(handle, .model, as: ImageClassifier.self) { m in out.pointee = m.isTraining ? 1 : 0 }
    }
}

/// Forward pass without gradient recording in the model's current mode (training mode uses batch
/// statistics and updates BN running statistics, like PyTorch). Writes N×num_classes logits.
@_cdecl("samix_model_forward")
public func samix_model_forward(_ handle: UInt64, _ x: UnsafePointer<Float>?, _ shape: UnsafePointer<Int64>?,
                                _ logits: UnsafeMutablePointer<Float>?, _ logitsCount: Int64) -> Int32 {
    guarded("samix_model_forward") { try modelForward(handle, x, shape, logits, logitsCount, mode: -1) }
}

/// `samix_model_forward` in an explicit mode for this call only: `mode` -1 = the model's current
/// mode, 0 = evaluation, 1 = training. The model's stored mode is unchanged afterwards, and since
/// the switch happens under the model's lock, concurrent calls never see it.
@_cdecl("samix_model_forward_mode")
public func samix_model_forward_mode(_ handle: UInt64, _ x: UnsafePointer<Float>?, _ shape: UnsafePointer<Int64>?,
                                     _ logits: UnsafeMutablePointer<Float>?, _ logitsCount: Int64,
                                     _ mode: Int32) -> Int32 {
    guarded("samix_model_forward_mode") { try modelForward(handle, x, shape, logits, logitsCount, mode: mode) }
}

func modelForward(_ handle: UInt64, _ x: UnsafePointer<Float>?, _ shape: UnsafePointer<Int64>?,
                  _ logits: UnsafeMutablePointer<Float>?, _ logitsCount: Int64, mode: Int32) throws {
    guard mode >= -1, mode <= 1 else {
        throw CAPIError(.invalidArgument, "mode must be -1 (current), 0 (evaluation) or 1 (training), got \(mode)")
    }
    try Registry.shared.with(handle, .model, as: ImageClassifier.self) { m in
        let (xp, dims) = try readImageBatch(x, shape, channels: m.inChannels)
        let need = Int64(dims[0]) * Int64(m.numClasses)
        guard logitsCount == need else {
            throw CAPIError(.shape, "logits buffer holds \(logitsCount) floats, need \(dims[0])×\(m.numClasses)")
        }
        let lp = try nonNull(logits, "logits")
        try m.requireMemory(batch: dims[0], height: dims[2], width: dims[3], training: false)
        let input = try Tensor(borrowing: UnsafeMutablePointer(mutating: xp), shape: dims)
        let run = { try GradMode.withDisabled { try m(input) } }
        let y = mode < 0 ? try run() : try m.withMode(training: mode == 1, run)
        guard y.count == Int(need) else {
            throw CAPIError(.internalError, "model returned shape \(y.shape), expected [\(dims[0]), \(m.numClasses)]")
        }
        lp.update(from: y.data, count: y.count)
    }
}

// MARK: - State dict

/// Entry `index` of the model's state dict (parameters first, then buffers).
func stateEntry(_ m: Module, _ index: Int64) throws -> (name: String, tensor: Tensor, isParameter: Bool) {
    let params = m.namedParameters(), buffers = m.namedBuffers()
    guard index >= 0, index < Int64(params.count + buffers.count) else {
        throw CAPIError(.invalidArgument, "state index \(index) outside 0..<\(params.count + buffers.count)")
    }
    let i = Int(index)
    if i < params.count { return (params[i].0, params[i].1, true) }
    let b = buffers[i - params.count]
    return (b.0, b.1, false)
}

/// Name (into buf), shape (into shape[8], rank into *rank) and whether entry `index` is a trainable
/// parameter (1) or a buffer (0).
@_cdecl("samix_model_state_entry")
public func samix_model_state_entry(_ handle: UInt64, _ index: Int64, _ buf: UnsafeMutablePointer<CChar>?,
                                    _ cap: Int64, _ needed: UnsafeMutablePointer<Int64>?,
                                    _ shape: UnsafeMutablePointer<Int64>?, _ rank: UnsafeMutablePointer<Int64>?,
                                    _ isParameter: UnsafeMutablePointer<Int32>?) -> Int32 {
    guarded("samix_model_state_entry") {
        try Registry.shared.with(handle, .model, as: ImageClassifier.self) { m in
            let e = try stateEntry(m, index)
            guard e.tensor.rank <= 8 else { throw CAPIError(.internalError, "tensor of rank \(e.tensor.rank)") }
            if let shape { for (k, d) in e.tensor.shape.enumerated() { shape[k] = Int64(d) } }
            rank?.pointee = Int64(e.tensor.rank)
            isParameter?.pointee = e.isParameter ? 1 : 0
            try copyOutString(e.name, buf, cap, needed)
        }
    }
}

/// Copies the values of state entry `index` (exactly `count` floats) into `out`.
@_cdecl("samix_model_state_get")
public func samix_model_state_get(_ handle: UInt64, _ index: Int64, _ out: UnsafeMutablePointer<Float>?,
                                  _ count: Int64) -> Int32 {
    guarded("samix_model_state_get") {
        try Registry.shared.with(handle, .model, as: ImageClassifier.self) { m in
            let e = try stateEntry(m, index)
            guard count == Int64(e.tensor.count) else {
                throw CAPIError(.shape, "'\(e.name)' has \(e.tensor.count) values, buffer holds \(count)")
            }
            if count > 0 { try nonNull(out, "out").update(from: e.tensor.data, count: e.tensor.count) }
        }
    }
}

/// Loads a state dict given as `n` (name, values, rank, shape) entries; shapes are packed in
/// `shapes` (sum of ranks int64s). `strict` = 1 requires exactly the model's entries.
/// Values must be finite.
@_cdecl("samix_model_load_state")
public func samix_model_load_state(_ handle: UInt64, _ n: Int64, _ names: UnsafePointer<UnsafePointer<CChar>?>?,
                                   _ values: UnsafePointer<UnsafePointer<Float>?>?, _ ranks: UnsafePointer<Int64>?,
                                   _ shapes: UnsafePointer<Int64>?, _ strict: Int32) -> Int32 {
    guarded("samix_model_load_state") {
        guard n >= 0, n <= 1 << 20 else { throw CAPIError(.invalidArgument, "entry count \(n) is out of range") }
        try Registry.shared.with(handle, .model, as: ImageClassifier.self) { m in
            let state = try readStateEntries(n, names, values, ranks, shapes)
            try m.loadStateDict(state, strict: strict != 0)
        }
    }
}

/// Parses (name, pointer, shape) entries into borrowed tensors, validating everything.
func readStateEntries(_ n: Int64, _ names: UnsafePointer<UnsafePointer<CChar>?>?,
                      _ values: UnsafePointer<UnsafePointer<Float>?>?, _ ranks: UnsafePointer<Int64>?,
                      _ shapes: UnsafePointer<Int64>?) throws -> [String: Tensor] {
    var state: [String: Tensor] = [:]
    if n == 0 { return state }
    let np = try nonNull(names, "names"), vp = try nonNull(values, "values"), rp = try nonNull(ranks, "ranks")
    var offset = 0
    for i in 0..<Int(n) {
        let name = try readString(np[i], "names[\(i)]", maxBytes: 4096)
        let rank = rp[i]
        let dims = try readShape(rank == 0 ? nil : shapes.map { $0 + offset }, rank, name: "'\(name)'")
        offset += Int(rank)
        guard state[name] == nil else { throw CAPIError(.invalidArgument, "duplicate entry '\(name)'") }
        let count = dims.reduce(1, *)
        let p: UnsafePointer<Float>
        if count == 0 {
            p = UnsafePointer(emptyFloat.pointer)
        } else {
            p = try nonNull(vp[i], "values[\(i)]")
        }
        try requireFinite(p, count, "'\(name)'")
        state[name] = try Tensor(borrowing: UnsafeMutablePointer(mutating: p), shape: dims)
    }
    return state
}

/// One float that is never written: the data pointer of an empty state tensor.
private struct EmptyFloat: @unchecked Sendable { let pointer = UnsafeMutablePointer<Float>.allocate(capacity: 1) }
private let emptyFloat = EmptyFloat()
