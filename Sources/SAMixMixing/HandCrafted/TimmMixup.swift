import SAMixCore
import SAMixOps
import SAMixNN
import SAMixData

/// Configuration of timm's `Mixup` (`timm/data/mixup.py`), with timm's knob names and semantics.
///
/// - `mixupAlpha`, `cutmixAlpha`: Beta(α, α) parameters; 0 disables that method (at least one must be
///   > 0, or `cutmixMinMax` set, which forces `cutmixAlpha = 1` as in timm).
/// - `cutmixMinMax`: box sides drawn from `[lo, hi)` fractions of H/W instead of the λ rule.
/// - `prob`: probability of mixing at all (per batch in `.batch` mode, per pair/element otherwise).
/// - `switchProb`: probability of CutMix instead of Mixup when both are active.
/// - `mode`: `.batch` (one λ/box for the batch), `.pair` (one per pair i ↔ B−1−i, applied symmetrically),
///   `.elem` (one per element).
/// - `correctLam`: use the clipped box fraction as the CutMix label weight (always with minmax).
/// - `labelSmoothing`: ε of the soft targets (off = ε/K, on = 1 − ε + ε/K).
/// - `numClasses`: required (timm's silent default of 1000 is a known trap).
public struct MixupConfig: Sendable {
    public enum Mode: String, Sendable { case batch, pair, elem }

    public var mixupAlpha: Double
    public var cutmixAlpha: Double
    public var cutmixMinMax: (Double, Double)?
    public var prob: Double
    public var switchProb: Double
    public var mode: Mode
    public var correctLam: Bool
    public var labelSmoothing: Double
    public var numClasses: Int

    public init(numClasses: Int, mixupAlpha: Double = 1.0, cutmixAlpha: Double = 0.0,
                cutmixMinMax: (Double, Double)? = nil, prob: Double = 1.0, switchProb: Double = 0.5,
                mode: Mode = .batch, correctLam: Bool = true, labelSmoothing: Double = 0.1) throws {
        self.numClasses = numClasses
        self.mixupAlpha = mixupAlpha
        self.cutmixAlpha = cutmixMinMax != nil ? 1.0 : cutmixAlpha
        self.cutmixMinMax = cutmixMinMax
        self.prob = prob
        self.switchProb = switchProb
        self.mode = mode
        self.correctLam = correctLam
        self.labelSmoothing = labelSmoothing
        try validate()
    }

    /// Throws `invalidArgument` for out-of-range settings.
    public func validate() throws {
        try require(numClasses >= 1, "numClasses must be ≥ 1, got \(numClasses)")
        try require(mixupAlpha >= 0 && mixupAlpha.isFinite, "mixup_alpha must be finite and ≥ 0, got \(mixupAlpha)")
        try require(cutmixAlpha >= 0 && cutmixAlpha.isFinite, "cutmix_alpha must be finite and ≥ 0, got \(cutmixAlpha)")
        try require(mixupAlpha > 0 || cutmixAlpha > 0, "one of mixup_alpha > 0, cutmix_alpha > 0 or cutmix_minmax must be set")
        if let mm = cutmixMinMax { try CutMix.checkMinMax(mm) }
        try require(prob >= 0 && prob <= 1, "prob must be in [0, 1], got \(prob)")
        try require(switchProb >= 0 && switchProb <= 1, "switch_prob must be in [0, 1], got \(switchProb)")
        try require(labelSmoothing >= 0 && labelSmoothing < 1, "label_smoothing must be in [0, 1), got \(labelSmoothing)")
    }
}

/// timm-compatible Mixup/CutMix switcher. Partner of sample i is B − 1 − i (`x.flip(0)`).
///
/// Odd batch sizes (timm asserts an even batch): `.batch` and `.elem` pair the middle sample with itself,
/// so it is left unchanged and its target is its own smoothed label; `.pair` mixes the ⌊B/2⌋ pairs and
/// leaves the middle sample unchanged with λ = 1. Batch size 1 therefore returns the input unchanged.
///
/// Per-element λ in `.pair`/`.elem` mode, a sample whose draw is not mixed (prob gate) gets `.keep` and
/// λ = 1 (timm: `lam != 1` check). The RNG draw order per decision is: prob gate, switch, λ, box; it is
/// not NumPy-compatible, but it is deterministic per seed.
public struct TimmMixup: MixPolicy, Sendable {
    public var config: MixupConfig
    /// timm's `mixup_enabled` (set to false by the train loop at `--mixup-off-epoch`).
    public var enabled: Bool = true

    public init(_ config: MixupConfig) throws {
        try config.validate()
        self.config = config
    }

    /// One timm decision: (mix?, use CutMix?, λ).
    private func decide(_ fixedLambda: Double?, rng: inout SplitMix64) -> (Bool, Bool, Double) {
        let c = config
        guard enabled, rng.uniformDouble() < c.prob else { return (false, false, 1) }
        var useCut: Bool
        if c.mixupAlpha > 0 && c.cutmixAlpha > 0 {
            useCut = rng.uniformDouble() < c.switchProb
        } else {
            useCut = c.cutmixAlpha > 0
        }
        let a = useCut ? c.cutmixAlpha : c.mixupAlpha
        let l = fixedLambda ?? rng.beta(a, a)
        return (true, useCut, l)
    }

    /// (op, realised λ, label λ) for one decision.
    private func op(_ d: (Bool, Bool, Double), height H: Int, width W: Int,
                    rng: inout SplitMix64) -> (SampleMix, Float, Float) {
        let (mix, useCut, l) = d
        if !mix || l >= 1 { return (.keep, 1, 1) }
        if useCut {
            let box = CutMix.sampleBox(lambda: l, height: H, width: W, minMax: config.cutmixMinMax, rng: &rng)
            let area = boxLambda(box, height: H, width: W)
            let label = (config.correctLam || config.cutmixMinMax != nil) ? area : Float(l)
            return (box.isEmpty ? .keep : .box(box), area, label)
        }
        return (.blend(Float(l)), Float(l), Float(l))
    }

    /// The draws of one call in timm's order — one op for the batch, per flip pair i ↔ B−1−i, or per
    /// sample — with its pixel share λ and label weight, written into `ops`, `lam`, `label` (B entries
    /// each, prefilled with keep / 1 / 1). In elem mode an odd batch's middle sample (its own partner)
    /// draws but stays unchanged (λ = 1).
    private func draw(_ lambda: Double?, height H: Int, width W: Int, rng: inout SplitMix64,
                      ops: UnsafeMutableBufferPointer<SampleMix>, lam: UnsafeMutableBufferPointer<Float>,
                      label: UnsafeMutableBufferPointer<Float>) {
        let B = ops.count
        switch config.mode {
        case .batch:
            let (o, l, lb) = op(decide(lambda, rng: &rng), height: H, width: W, rng: &rng)
            for i in 0..<B { ops[i] = o; lam[i] = l; label[i] = lb }
        case .pair:
            for i in 0..<(B / 2) {
                let (o, l, lb) = op(decide(lambda, rng: &rng), height: H, width: W, rng: &rng)
                let j = B - 1 - i
                ops[i] = o; ops[j] = o
                lam[i] = l; lam[j] = l
                label[i] = lb; label[j] = lb
            }
        case .elem:
            for i in 0..<B {
                let (o, l, lb) = op(decide(lambda, rng: &rng), height: H, width: W, rng: &rng)
                if B - 1 - i == i { continue }
                ops[i] = o; lam[i] = l; label[i] = lb
            }
        }
    }

    public func plan<T: MixElement>(images: UnsafePointer<T>, shape: ImageBatchShape, lambda: Double?,
                                    rng: inout SplitMix64) throws -> MixResult {
        try config.validate()
        try checkLambda(lambda)
        let B = shape.batch, H = shape.height, W = shape.width
        let partner = (0..<B).map { B - 1 - $0 }
        var ops = [SampleMix](repeating: .keep, count: B)
        var lam = [Float](repeating: 1, count: B), label = lam
        ops.withUnsafeMutableBufferPointer { o in
            lam.withUnsafeMutableBufferPointer { l in
                label.withUnsafeMutableBufferPointer { lb in
                    draw(lambda, height: H, width: W, rng: &rng, ops: o, lam: l, label: lb)
                }
            }
        }
        return try MixResult(batch: B, height: H, width: W, partner: partner, ops: ops, lambda: lam, labelLambda: label)
    }

    /// timm's `__call__` on a float batch, the C ABI's hot path (`samix_policy_mix_timm`): mixes `images` in
    /// place and writes the `B × numClasses` soft targets (`config.labelSmoothing`) into `targets`. Same
    /// random draws, pixels and targets as `plan` + `MixResult.apply(inPlace:)` + `softTargets`, but each
    /// flip pair i ↔ B−1−i is mixed directly with its one-pass kernel and no `MixResult` is built: no heap
    /// allocation, so the fixed cost per call stays far below the pixel work. `labels` must lie in
    /// `0..<config.numClasses` (the caller checks them).
    public func mixInPlace(_ images: UnsafeMutablePointer<Float>, shape: ImageBatchShape,
                           labels: UnsafePointer<Int64>, targets: UnsafeMutablePointer<Float>,
                           rng: inout SplitMix64) throws {
        try config.validate()
        let B = shape.batch, H = shape.height, W = shape.width
        let g = ImageGeometry(c: shape.channels, h: H, w: W, layout: shape.layout)
        try withUnsafeTemporaryAllocation(of: SampleMix.self, capacity: B) { opsBuffer in
            try withUnsafeTemporaryAllocation(of: Float.self, capacity: 2 * B) { floats in
                guard let ops = opsBuffer.baseAddress, let lamAndLabel = floats.baseAddress else {
                    throw SAMixError.shapeMismatch("empty batch")
                }
                ops.initialize(repeating: .keep, count: B)
                defer { ops.deinitialize(count: B) }
                lamAndLabel.initialize(repeating: 1, count: 2 * B)
                let label = lamAndLabel + B
                // The draws of `plan`, by the same code.
                draw(nil, height: H, width: W, rng: &rng, ops: UnsafeMutableBufferPointer(start: ops, count: B),
                     lam: UnsafeMutableBufferPointer(start: lamAndLabel, count: B),
                     label: UnsafeMutableBufferPointer(start: label, count: B))
                // Pixels: every pair once (an odd batch's middle sample is paired with itself: unchanged).
                let n = g.count
                var work = 0
                for t in 0..<B where B - 1 - t != t {
                    switch ops[t] {
                    case .keep: break
                    case .box(let b): work &+= b.area &* g.c
                    default: work &+= n
                    }
                }
                let pairs = B / 2
                let parallel = pairs >= 2 && work >= MixApplyTuning.parallelThreshold
                parallelFor(pairs, minChunk: parallel ? 1 : max(pairs, 1)) { i in
                    let j = B - 1 - i
                    let p = images + i &* n, q = images + j &* n
                    if mixPairInPlace(p, q, ops[i], ops[j], g: g) { return }
                    // At most one side mixes (the other keeps its pixels): it reads the untouched partner.
                    applyImageOp(ops[i], dst: p, a: UnsafePointer(p), b: UnsafePointer(q), g: g, masks: nil)
                    applyImageOp(ops[j], dst: q, a: UnsafePointer(q), b: UnsafePointer(p), g: g, masks: nil)
                }
                // Soft targets by `MixTargets.build`'s row code (labels were checked by the caller).
                MixTargets.writeRows(labels: labels, count: B, numClasses: config.numClasses,
                                     smoothing: Float(config.labelSmoothing), lambda: { label[$0] },
                                     partner: { B - 1 - $0 }, into: targets)
            }
        }
    }

    /// timm's `__call__`: mixes `images` in place and returns the soft targets (`B × numClasses`, with
    /// `labelSmoothing`) together with the mixing record.
    public func callAsFunction<T: MixElement>(_ images: UnsafeMutablePointer<T>, shape: ImageBatchShape, labels: [Int],
                                              rng: inout SplitMix64) throws -> (targets: [Float], result: MixResult) {
        try requireShape(labels.count == shape.batch, "got \(labels.count) labels for a batch of \(shape.batch)")
        let r = try mix(images, shape: shape, rng: &rng)
        let t = try r.softTargets(labels: labels, numClasses: config.numClasses, smoothing: Float(config.labelSmoothing))
        return (t, r)
    }

    /// Array variant of `callAsFunction`.
    public func callAsFunction<T: MixElement>(_ images: inout [T], shape: ImageBatchShape, labels: [Int],
                                              rng: inout SplitMix64) throws -> (targets: [Float], result: MixResult) {
        try requireShape(images.count == shape.elementCount,
                         "image buffer has \(images.count) elements, shape needs \(shape.elementCount)")
        return try images.withUnsafeMutableBufferPointer { buf in
            guard let base = buf.baseAddress else { throw SAMixError.shapeMismatch("empty image buffer") }
            return try self(base, shape: shape, labels: labels, rng: &rng)
        }
    }
}
