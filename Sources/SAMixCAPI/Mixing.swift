import Glibc
import SAMix

// Mixing policies behind handles of kind `.policy`. A policy handle owns its policy and its own
// seeded generator, so repeated `samix_policy_mix` calls continue one reproducible stream.

/// A policy plus its random stream (and, for timm's Mixup, its label settings).
final class PolicyBox {
    let name: String
    let policy: MixPolicy
    var rng: SplitMix64

    init(name: String, policy: MixPolicy, seed: UInt64) {
        self.name = name
        self.policy = policy
        rng = SplitMix64(seed: seed)
    }
}

/// Policy names accepted by `samix_policy_create`.
let policyNames = MixPolicies.names

func partnerMode(_ code: Int32) throws -> PartnerMode? {
    switch code {
    case 0: return nil
    case 1: return .permutation
    case 2: return .derangement
    case 3: return .flip
    case 4: return .roll
    default:
        throw CAPIError(.invalidArgument,
                        "partner mode must be 0 (default), 1 (permutation), 2 (derangement), 3 (flip) or 4 (roll), got \(code)")
    }
}

/// The ABI's `alpha` argument: exactly `SAMIX_DEFAULT_ALPHA` (-1) = the method's default (nil); NaN
/// is an error, never "the default"; any other value goes to the engine, which validates it.
func optionalAlpha(_ alpha: Double) throws -> Double? {
    if alpha == -1 { return nil }
    guard !alpha.isNaN else {
        throw CAPIError(.invalidArgument, "alpha must be a finite value > 0 (or SAMIX_DEFAULT_ALPHA = -1 for the method's default), got nan")
    }
    return alpha
}

/// Builds a hand-crafted policy by name (`MixPolicies.make`). `alpha` -1 = the policy's default.
func makePolicy(_ name: String, alpha: Double, perSample: Bool, partner: PartnerMode?) throws -> MixPolicy {
    try MixPolicies.make(name, alpha: try optionalAlpha(alpha), perSample: perSample, partner: partner)
}

@_cdecl("samix_policy_create")
public func samix_policy_create(_ method: UnsafePointer<CChar>?, _ alpha: Double, _ perSample: Int32,
                                _ partner: Int32, _ seed: UInt64, _ out: UnsafeMutablePointer<UInt64>?) -> Int32 {
    guarded("samix_policy_create") {
        let out = try nonNull(out, "out")
        let name = try readString(method, "method", maxBytes: 64)
        let p = try makePolicy(name, alpha: alpha, perSample: perSample != 0, partner: try partnerMode(partner))
        out.pointee = Registry.shared.insert(PolicyBox(name: name.lowercased(), policy: p, seed: seed), kind: .policy)
    }
}

/// timm's Mixup/CutMix switcher. minmax_lo/hi NaN = no cutmix_minmax; mode 0 batch, 1 pair, 2 elem.
@_cdecl("samix_policy_create_timm")
public func samix_policy_create_timm(_ mixupAlpha: Double, _ cutmixAlpha: Double, _ minmaxLo: Double,
                                     _ minmaxHi: Double, _ prob: Double, _ switchProb: Double, _ mode: Int32,
                                     _ correctLam: Int32, _ labelSmoothing: Double, _ numClasses: Int64,
                                     _ seed: UInt64, _ out: UnsafeMutablePointer<UInt64>?) -> Int32 {
    guarded("samix_policy_create_timm") {
        let out = try nonNull(out, "out")
        let m: MixupConfig.Mode
        switch mode {
        case 0: m = .batch
        case 1: m = .pair
        case 2: m = .elem
        default: throw CAPIError(.invalidArgument, "mode must be 0 (batch), 1 (pair) or 2 (elem), got \(mode)")
        }
        var minmax: (Double, Double)? = nil
        if !(minmaxLo.isNaN && minmaxHi.isNaN) {
            guard minmaxLo.isFinite, minmaxHi.isFinite else {
                throw CAPIError(.invalidArgument, "cutmix_minmax must be two finite numbers, got (\(minmaxLo), \(minmaxHi))")
            }
            minmax = (minmaxLo, minmaxHi)
        }
        for (v, n) in [(mixupAlpha, "mixup_alpha"), (cutmixAlpha, "cutmix_alpha"), (prob, "prob"),
                       (switchProb, "switch_prob"), (labelSmoothing, "label_smoothing")] where !v.isFinite {
            throw CAPIError(.invalidArgument, "\(n) must be finite, got \(v)")
        }
        guard numClasses >= 1, numClasses <= 1 << 24 else {
            throw CAPIError(.invalidArgument, "num_classes must be in 1...\(1 << 24), got \(numClasses)")
        }
        let config = try MixupConfig(numClasses: Int(numClasses), mixupAlpha: mixupAlpha, cutmixAlpha: cutmixAlpha,
                                     cutmixMinMax: minmax, prob: prob, switchProb: switchProb, mode: m,
                                     correctLam: correctLam != 0, labelSmoothing: labelSmoothing)
        let p = try TimmMixup(config)
        out.pointee = Registry.shared.insert(PolicyBox(name: "timm-mixup", policy: p, seed: seed), kind: .policy)
    }
}

@_cdecl("samix_policy_free")
public func samix_policy_free(_ handle: UInt64) -> Int32 {
    freeHandle("samix_policy_free", handle, .policy)
}

/// Reads (*state) or replaces (set = 1) the policy's generator state, for exact resumption.
@_cdecl("samix_policy_rng_state")
public func samix_policy_rng_state(_ handle: UInt64, _ state: UnsafeMutablePointer<UInt64>?, _ set: Int32) -> Int32 {
    guarded("samix_policy_rng_state") {
        let state = try nonNull(state, "state")
        try Registry.shared.with(handle, .policy, as: PolicyBox.self) { b in
            if set != 0 { b.rng = SplitMix64(seed: state.pointee) } else { state.pointee = b.rng.state }
        }
    }
}

/// Mixes one batch. See samix.h for the arguments.
@_cdecl("samix_policy_mix")
public func samix_policy_mix(_ handle: UInt64, _ x: UnsafePointer<Float>?, _ out: UnsafeMutablePointer<Float>?,
                             _ shape: UnsafePointer<Int64>?, _ channelsLast: Int32,
                             _ labels: UnsafePointer<Int64>?, _ numClasses: Int64, _ labelSmoothing: Double,
                             _ lambda: Double, _ targets: UnsafeMutablePointer<Float>?,
                             _ lam: UnsafeMutablePointer<Float>?, _ labelLam: UnsafeMutablePointer<Float>?,
                             _ partner: UnsafeMutablePointer<Int64>?, _ masks: UnsafeMutablePointer<Float>?,
                             _ boxes: UnsafeMutablePointer<Int64>?) -> Int32 {
    guarded("samix_policy_mix") {
        try Registry.shared.with(handle, .policy, as: PolicyBox.self) { b in
            try mixBatch(b.policy, rng: &b.rng, x, out, shape, channelsLast, labels, numClasses, labelSmoothing, lambda,
                         targets, lam, labelLam, partner, masks, boxes)
        }
    }
}

/// One-shot samix_policy_create + samix_policy_mix + samix_policy_free (`samix.mix`): the policy and its
/// generator live for this call only, so no handle is registered. See samix.h for the arguments.
@_cdecl("samix_mix")
public func samix_mix(_ method: UnsafePointer<CChar>?, _ alpha: Double, _ perSample: Int32, _ partnerCode: Int32,
                      _ seed: UInt64, _ x: UnsafePointer<Float>?, _ out: UnsafeMutablePointer<Float>?,
                      _ shape: UnsafePointer<Int64>?, _ channelsLast: Int32,
                      _ labels: UnsafePointer<Int64>?, _ numClasses: Int64, _ labelSmoothing: Double,
                      _ lambda: Double, _ targets: UnsafeMutablePointer<Float>?,
                      _ lam: UnsafeMutablePointer<Float>?, _ labelLam: UnsafeMutablePointer<Float>?,
                      _ partner: UnsafeMutablePointer<Int64>?, _ masks: UnsafeMutablePointer<Float>?,
                      _ boxes: UnsafeMutablePointer<Int64>?) -> Int32 {
    guarded("samix_mix") {
        let name = try readString(method, "method", maxBytes: 64)
        let p = try makePolicy(name, alpha: alpha, perSample: perSample != 0, partner: try partnerMode(partnerCode))
        var rng = SplitMix64(seed: seed)
        try mixBatch(p, rng: &rng, x, out, shape, channelsLast, labels, numClasses, labelSmoothing, lambda,
                     targets, lam, labelLam, partner, masks, boxes)
    }
}

/// The body of samix_policy_mix / samix_mix: validates everything, then plans, applies and writes the outputs.
func mixBatch(_ policy: MixPolicy, rng: inout SplitMix64, _ x: UnsafePointer<Float>?, _ out: UnsafeMutablePointer<Float>?,
              _ shape: UnsafePointer<Int64>?, _ channelsLast: Int32,
              _ labels: UnsafePointer<Int64>?, _ numClasses: Int64, _ labelSmoothing: Double,
              _ lambda: Double, _ targets: UnsafeMutablePointer<Float>?,
              _ lam: UnsafeMutablePointer<Float>?, _ labelLam: UnsafeMutablePointer<Float>?,
              _ partner: UnsafeMutablePointer<Int64>?, _ masks: UnsafeMutablePointer<Float>?,
              _ boxes: UnsafeMutablePointer<Int64>?) throws {
    // Validate everything before the output is touched.
    let dims = try readShape(shape, 4, name: "x", expectedRank: 4...4)
    guard dims.allSatisfy({ $0 >= 1 }) else { throw CAPIError(.shape, "x must have all dimensions ≥ 1, got shape \(dims)") }
    let (B, C, H, W) = channelsLast != 0 ? (dims[0], dims[3], dims[1], dims[2]) : (dims[0], dims[1], dims[2], dims[3])
    let bshape = try ImageBatchShape(batch: B, channels: C, height: H, width: W,
                                     layout: channelsLast != 0 ? .nhwc : .nchw)
    let xp = try nonNull(x, "x"), op = try nonNull(out, "out")
    // Only policies that plan from pixel values need finite pixels; elsewhere NaN/Inf propagate
    // into the output like any elementwise op (and a full scan would cost as much as the mix).
    if policy.readsPixels { try requireFinite(xp, bshape.elementCount, "x") }
    let fixed: Double? = lambda.isNaN ? nil : lambda
    if let l = fixed, !(l >= 0 && l <= 1) {
        throw CAPIError(.invalidArgument, "lambda must be in [0, 1] (or NaN to sample it), got \(l)")
    }
    try validateTargetArguments(targets: targets, labels: labels, batch: B, numClasses: numClasses,
                                labelSmoothing: labelSmoothing)
    let r = try policy.plan(images: xp, shape: bshape, lambda: fixed, rng: &rng)
    try r.apply(input: xp, output: op, shape: bshape)
    try writeMixOutputs(r, labels: labels, numClasses: numClasses, labelSmoothing: labelSmoothing, targets: targets,
                        lam: lam, labelLam: labelLam, partner: partner, masks: masks, boxes: boxes)
}

/// timm Mixup's hot path (`samix.Mixup(...)(x, y)`): mixes the float N×C×H×W batch x in place with the
/// flip pairing and writes the N×num_classes soft targets, both from the policy's own settings. Same
/// draws, pixels and targets as samix_policy_mix(policy, x, x, shape, 0, labels, num_classes,
/// label_smoothing, NaN, targets, NULL...), with five arguments and no intermediate allocation.
@_cdecl("samix_policy_mix_timm")
public func samix_policy_mix_timm(_ handle: UInt64, _ x: UnsafeMutablePointer<Float>?, _ shape: UnsafePointer<Int64>?,
                                  _ labels: UnsafePointer<Int64>?, _ targets: UnsafeMutablePointer<Float>?) -> Int32 {
    guarded("samix_policy_mix_timm") {
        try Registry.shared.with(handle, .policy, as: PolicyBox.self) { b in
            guard let timm = b.policy as? TimmMixup else {
                throw CAPIError(.invalidArgument, "policy '\(b.name)' is not a timm Mixup policy (use samix_policy_mix)")
            }
            let dims = try readShape(shape, 4, name: "x", expectedRank: 4...4)
            guard dims.allSatisfy({ $0 >= 1 }) else { throw CAPIError(.shape, "x must have all dimensions ≥ 1, got shape \(dims)") }
            let bshape = try ImageBatchShape(batch: dims[0], channels: dims[1], height: dims[2], width: dims[3], layout: .nchw)
            let xp = try nonNull(x, "x"), tp = try nonNull(targets, "targets")
            try validateTargetArguments(targets: tp, labels: labels, batch: bshape.batch,
                                        numClasses: Int64(timm.config.numClasses),
                                        labelSmoothing: timm.config.labelSmoothing)
            try timm.mixInPlace(xp, shape: bshape, labels: try nonNull(labels, "labels"), targets: tp, rng: &b.rng)
        }
    }
}

/// Checks the soft-target arguments shared by the mixing entry points (before any output is touched).
func validateTargetArguments(targets: UnsafeMutablePointer<Float>?, labels: UnsafePointer<Int64>?, batch B: Int,
                             numClasses: Int64, labelSmoothing: Double) throws {
    guard targets != nil else { return }
    let lp = try nonNull(labels, "labels")
    guard numClasses >= 1, numClasses <= 1 << 24 else {
        throw CAPIError(.invalidArgument, "num_classes must be in 1...\(1 << 24), got \(numClasses)")
    }
    guard Tensor.elementCount([Int64(B), numClasses]) != nil else {
        throw CAPIError(.invalidArgument, "targets of \(B)×\(numClasses) are too large")
    }
    guard labelSmoothing >= 0, labelSmoothing < 1 else {
        throw CAPIError(.invalidArgument, "label_smoothing must be in [0, 1), got \(labelSmoothing)")
    }
    for i in 0..<B where lp[i] < 0 || lp[i] >= numClasses {
        throw CAPIError(.invalidArgument, "label \(lp[i]) at index \(i) is outside 0..<\(numClasses)")
    }
}

/// Writes what a mixing step did into the caller's optional buffers (NULL = skip): soft targets,
/// realised λ, label λ, partners, N×H×W partner-weight masks and N×4 boxes (-1 rows without a box).
func writeMixOutputs(_ r: MixResult, labels: UnsafePointer<Int64>?, numClasses: Int64, labelSmoothing: Double,
                     targets: UnsafeMutablePointer<Float>?, lam: UnsafeMutablePointer<Float>?,
                     labelLam: UnsafeMutablePointer<Float>?, partner: UnsafeMutablePointer<Int64>?,
                     masks: UnsafeMutablePointer<Float>?, boxes: UnsafeMutablePointer<Int64>?) throws {
    let B = r.batch, H = r.height, W = r.width
    if let targets, let lp = labels {
        try r.softTargets(labels: lp, numClasses: Int(numClasses), smoothing: Float(labelSmoothing), into: targets)
    }
    for i in 0..<B {
        lam?[i] = r.lambda[i]
        labelLam?[i] = r.labelLambda[i]
        partner?[i] = Int64(r.partner[i])
        if let boxes {
            switch r.ops[i] {
            case .box(let bx), .resizedBox(let bx):
                boxes[4 * i] = Int64(bx.y0); boxes[4 * i + 1] = Int64(bx.y1)
                boxes[4 * i + 2] = Int64(bx.x0); boxes[4 * i + 3] = Int64(bx.x1)
            default:
                for k in 0..<4 { boxes[4 * i + k] = -1 }
            }
        }
    }
    if let masks {
        let hw = H * W
        for i in 0..<B {
            let m = try r.partnerWeightMap(sample: i)
            guard m.count == hw else { throw CAPIError(.internalError, "mask of \(m.count) values for \(H)×\(W)") }
            m.withUnsafeBufferPointer { src in
                if let s = src.baseAddress { (masks + i * hw).update(from: s, count: hw) }
            }
        }
    }
}

/// Model-based input mixing (AttentiveMix, PuzzleMix): the classifier `model` supplies attention or
/// saliency. One-shot: the random stream is seeded by `seed`. x is N×C×H×W float (finite); out is a
/// separate N×C×H×W buffer or x itself. Other arguments as samix_policy_mix (no boxes).
@_cdecl("samix_model_policy_mix")
public func samix_model_policy_mix(_ model: UInt64, _ method: UnsafePointer<CChar>?, _ alpha: Double, _ seed: UInt64,
                                   _ x: UnsafePointer<Float>?, _ out: UnsafeMutablePointer<Float>?,
                                   _ shape: UnsafePointer<Int64>?, _ labels: UnsafePointer<Int64>?,
                                   _ numClasses: Int64, _ labelSmoothing: Double, _ lambda: Double,
                                   _ targets: UnsafeMutablePointer<Float>?, _ lam: UnsafeMutablePointer<Float>?,
                                   _ labelLam: UnsafeMutablePointer<Float>?, _ partner: UnsafeMutablePointer<Int64>?,
                                   _ masks: UnsafeMutablePointer<Float>?) -> Int32 {
    guarded("samix_model_policy_mix") {
        let name = try readString(method, "method", maxBytes: 64)
        let policy = try ModelMixPolicy(name: name, alpha: try optionalAlpha(alpha))
        try Registry.shared.with(model, .model, as: ImageClassifier.self) { m in
            let (xp, dims) = try readImageBatch(x, shape, channels: m.inChannels)
            let op = try nonNull(out, "out")
            let n = dims[0]
            let fixed: Double? = lambda.isNaN ? nil : lambda
            if let l = fixed, !(l >= 0 && l <= 1) {
                throw CAPIError(.invalidArgument, "lambda must be in [0, 1] (or NaN to sample it), got \(l)")
            }
            try validateTargetArguments(targets: targets, labels: labels, batch: n, numClasses: numClasses,
                                        labelSmoothing: labelSmoothing)
            // Labels feed PuzzleMix's saliency (the engine checks them against the model) and the targets.
            let y = labels.map { lp in (0..<n).map { Int(lp[$0]) } } ?? []
            let input = try Tensor(borrowing: UnsafeMutablePointer(mutating: xp), shape: dims)
            var rng = SplitMix64(seed: seed)
            let (mixed, r) = try policy.mix(images: input, labels: y, model: m, lambda: fixed, rng: &rng)
            op.update(from: mixed.data, count: mixed.count)   // mixed is a new tensor: out may be x
            try writeMixOutputs(r, labels: labels, numClasses: numClasses, labelSmoothing: labelSmoothing, targets: targets,
                                lam: lam, labelLam: labelLam, partner: partner, masks: masks, boxes: nil)
        }
    }
}
