import Glibc
import SAMix

// Checkpoints: model and trainer files in the safetensors format (engine: `Checkpoint`,
// `SafetensorsFile`), written atomically.

/// Reads `n` caller metadata pairs (UTF-8 C strings); keys must not collide with the engine's own.
func readMetadata(_ n: Int64, _ keys: UnsafePointer<UnsafePointer<CChar>?>?,
                  _ values: UnsafePointer<UnsafePointer<CChar>?>?) throws -> [String: String] {
    guard n >= 0, n <= 4096 else { throw CAPIError(.invalidArgument, "metadata count \(n) is out of range 0...4096") }
    var out: [String: String] = [:]
    if n == 0 { return out }
    let kp = try nonNull(keys, "metadata keys"), vp = try nonNull(values, "metadata values")
    for i in 0..<Int(n) {
        let k = try readString(kp[i], "metadata key \(i)", maxBytes: 1024)
        let v = try readString(vp[i], "metadata value '\(k)'", maxBytes: 1 << 26)
        guard !k.isEmpty else { throw CAPIError(.invalidArgument, "metadata key \(i) is empty") }
        guard out[k] == nil else { throw CAPIError(.invalidArgument, "duplicate metadata key '\(k)'") }
        out[k] = v
    }
    return out
}

@_cdecl("samix_model_save")
public func samix_model_save(_ handle: UInt64, _ path: UnsafePointer<CChar>?, _ n: Int64,
                             _ keys: UnsafePointer<UnsafePointer<CChar>?>?,
                             _ values: UnsafePointer<UnsafePointer<CChar>?>?) -> Int32 {
    guarded("samix_model_save") {
        let file = try readString(path, "path", maxBytes: 4096)
        let meta = try readMetadata(n, keys, values)
        try Registry.shared.with(handle, .model, as: ImageClassifier.self) { m in
            try Checkpoint.save(m, to: file, metadata: meta)
        }
    }
}

@_cdecl("samix_model_load")
public func samix_model_load(_ handle: UInt64, _ path: UnsafePointer<CChar>?, _ strict: Int32) -> Int32 {
    guarded("samix_model_load") {
        let file = try readString(path, "path", maxBytes: 4096)
        try Registry.shared.with(handle, .model, as: ImageClassifier.self) { m in
            try Checkpoint.load(into: m, from: file, strict: strict != 0)
        }
    }
}

/// The `__metadata__` map of a safetensors file as a JSON object (reads only the header).
@_cdecl("samix_checkpoint_metadata")
public func samix_checkpoint_metadata(_ path: UnsafePointer<CChar>?, _ buf: UnsafeMutablePointer<CChar>?,
                                      _ cap: Int64, _ needed: UnsafeMutablePointer<Int64>?) -> Int32 {
    guarded("samix_checkpoint_metadata") {
        let file = try readString(path, "path", maxBytes: 4096)
        let meta = try Checkpoint.metadata(of: file)
        let json = JSONValue.object(meta.sorted { $0.key < $1.key }.map { ($0.key, .string($0.value)) })
        try copyOutString(json.serialized, buf, cap, needed)
    }
}

/// What a front end needs to rebuild the trainer of a trainer checkpoint, as typed JSON.
@_cdecl("samix_trainer_checkpoint_config")
public func samix_trainer_checkpoint_config(_ path: UnsafePointer<CChar>?, _ buf: UnsafeMutablePointer<CChar>?,
                                            _ cap: Int64, _ needed: UnsafeMutablePointer<Int64>?) -> Int32 {
    guarded("samix_trainer_checkpoint_config") {
        let file = try readString(path, "path", maxBytes: 4096)
        let meta = try Checkpoint.metadata(of: file)
        guard meta["format"] == Checkpoint.trainerFormat else {
            throw CAPIError(.invalidArgument, "\(file) is not a samix trainer checkpoint (format \(meta["format"] ?? "none"))")
        }
        var cfg: [String: String] = [:]
        for (k, v) in meta where k.hasPrefix(TrainerConfig.prefix) { cfg[String(k.dropFirst(TrainerConfig.prefix.count))] = v }
        let config: TrainerConfig
        do { config = try TrainerConfig(metadata: cfg) } catch let e as SAMixError {
            throw CAPIError(.invalidArgument, "\(file): \(e.message)")
        }
        guard let arch = meta["architecture"], let k = meta["num_classes"].flatMap({ Int($0) }), k >= 1,
              let c = meta["in_channels"].flatMap({ Int($0) }), c >= 1, let seed = meta["seed"].flatMap({ UInt64($0) }) else {
            throw CAPIError(.invalidArgument, "\(file): trainer checkpoint lacks or has invalid architecture, num_classes, in_channels or seed")
        }
        let json = JSONValue.object([("architecture", .string(arch)), ("num_classes", .number(String(k))),
                                     ("in_channels", .number(String(c))), ("seed", .number(String(seed))),
                                     ("config", config.json)])
        try copyOutString(json.serialized, buf, cap, needed)
    }
}

@_cdecl("samix_trainer_save")
public func samix_trainer_save(_ handle: UInt64, _ path: UnsafePointer<CChar>?, _ n: Int64,
                               _ keys: UnsafePointer<UnsafePointer<CChar>?>?,
                               _ values: UnsafePointer<UnsafePointer<CChar>?>?) -> Int32 {
    guarded("samix_trainer_save") {
        let file = try readString(path, "path", maxBytes: 4096)
        var meta = try readMetadata(n, keys, values)
        try Registry.shared.with(handle, .trainer, as: TrainerBox.self) { b in
            for (k, v) in b.config?.metadata ?? [:] { meta[TrainerConfig.prefix + k] = v }
            var extra: [(String, Tensor)] = []
            if let norm = b.normalization {
                extra = [("normalization.mean", try Tensor(norm.mean, shape: [norm.mean.count])),
                         ("normalization.std", try Tensor(norm.std, shape: [norm.std.count]))]
            }
            try Checkpoint.save(b.trainer, to: file, metadata: meta, extraTensors: extra)
        }
    }
}

@_cdecl("samix_trainer_load")
public func samix_trainer_load(_ handle: UInt64, _ path: UnsafePointer<CChar>?, _ allowChangedSettings: Int32) -> Int32 {
    guarded("samix_trainer_load") {
        let file = try readString(path, "path", maxBytes: 4096)
        try Registry.shared.with(handle, .trainer, as: TrainerBox.self) { b in
            var norm: Normalization? = nil
            try Checkpoint.load(into: b.trainer, from: file, allowChangedSettings: allowChangedSettings != 0) { extras in
                if let m = extras.tensors["normalization.mean"], let s = extras.tensors["normalization.std"] {
                    let c = b.trainer.model.inChannels
                    guard m.count == s.count, m.count == 1 || m.count == c else {
                        throw CAPIError(.invalidArgument, "\(file): normalisation has \(m.count) means and \(s.count) stds for \(c) channels")
                    }
                    norm = try Normalization(mean: m.scalars, std: s.scalars)
                }
            }
            b.normalization = norm
        }
    }
}
