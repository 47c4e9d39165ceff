import Glibc
import SAMixCore
import SAMixOps
import SAMixNN
import SAMixData
import SAMixMixing

/// DecoupleMix's decoupled mixup cross-entropy (Liu et al., arXiv 2203.10761; OpenMixup
/// `soft_mix_cross_entropy` with `ClsMixupHead.eta_weight`, docs/method.md §4.4).
///
/// For a row with logits z, mixed classes a = yᵢ (weight λ) and b = y_π(i) (weight 1 − λ):
///
///     ℓ = −λ·log softmax(z)_a − (1 − λ)·log softmax(z)_b                       (mixup CE, "local")
///       + Σ_{t ∈ {a, b}} η_t · −log( e^{z_t} / (e^{z_t} + Σ_{c ∉ {a, b}} e^{z_c}) )  ("global")
///
/// i.e. for each mixed class a CE in which the *other* mixed class is removed from the softmax
/// denominator, so the two mixed classes no longer compete with each other. The decoupled term is
/// used only for rows with two distinct classes whose weights both exceed `nonzeroThreshold` (1e-3)
/// and differ (λ ≠ 0.5); other rows get the plain mixup CE. The loss is the batch mean.
///
/// η_t = `eta` (`scale = .none`, the paper's form and OpenMixup's `idx = 0`) or `eta·λ_t^idx`
/// (`scale = .power(idx)`, OpenMixup's 'pow' mode). `mode` selects the terms: `.both` (OpenMixup's
/// CIFAR setting `eta_weight=dict(eta=0.1, mode="both", thr=0.5)`), `.less` / `.more` keep only the
/// term whose λ_t is below / above `threshold`.
///
/// Deviations: η_t is paired with (a, b) in label order, not with the two classes in class-index
/// order of the batch's first row as OpenMixup does (a quirk that swaps λ-scaled weights); the
/// λ = 0.5 skip is decided per row rather than for the whole batch (identical with one λ per batch).
public struct DecoupledMixupLoss: Sendable, Equatable {
    public enum Mode: Sendable, Equatable { case both, less, more }
    public enum LambdaScale: Sendable, Equatable {
        case none
        case power(Float)
    }

    public var eta: Float
    public var mode: Mode
    public var threshold: Float
    public var scale: LambdaScale
    public var nonzeroThreshold: Float

    public init(eta: Float = 0.1, mode: Mode = .both, threshold: Float = 0.5, scale: LambdaScale = .none,
                nonzeroThreshold: Float = 1e-3) throws {
        self.eta = eta
        self.mode = mode
        self.threshold = threshold
        self.scale = scale
        self.nonzeroThreshold = nonzeroThreshold
        try validate()
    }

    func validate() throws {
        try require(eta.isFinite && eta >= 0, "DecoupleMix η must be a finite value ≥ 0, got \(eta)")
        try require(threshold.isFinite, "DecoupleMix threshold must be finite")
        try require(nonzeroThreshold.isFinite && nonzeroThreshold >= 0 && nonzeroThreshold < 0.5,
                    "DecoupleMix non-zero threshold must be in [0, 0.5), got \(nonzeroThreshold)")
        if case .power(let idx) = scale { try require(idx.isFinite && idx >= 0, "DecoupleMix power must be ≥ 0, got \(idx)") }
    }

    /// η_t of a mixed class with weight λ_t (0 when `mode` excludes the term).
    func weight(lambda lt: Float) -> Float {
        switch mode {
        case .both: break
        case .less: if !(lt < threshold) { return 0 }
        case .more: if !(lt > threshold) { return 0 }
        }
        switch scale {
        case .none: return eta
        case .power(let idx): return idx == 0 ? eta : eta * powf(lt, idx)
        }
    }

    /// Whether a row with classes (a, b) and ratio λ gets the decoupled term.
    func isDecoupled(a: Int, b: Int, lam: Float) -> Bool {
        a != b && lam > nonzeroThreshold && (1 - lam) > nonzeroThreshold && lam != 1 - lam
    }
}

extension Tensor {
    /// The decoupled mixup cross-entropy of logits [N, K] (see `DecoupledMixupLoss`), a scalar; per-sample
    /// ratios `lam` (weight of `labelsA`). Differentiable in the logits.
    public func decoupledMixupCrossEntropy(labelsA ya: [Int], labelsB yb: [Int], lam: [Float],
                                           config: DecoupledMixupLoss) throws -> Tensor {
        try config.validate()
        try requireShape(rank == 2, "decoupledMixupCrossEntropy: logits must be [N, K], got \(shape)")
        let n = shape[0], k = shape[1]
        try require(n > 0 && k > 0, "decoupledMixupCrossEntropy: empty logits \(shape)")
        try require(ya.count == n && yb.count == n && lam.count == n,
                    "decoupledMixupCrossEntropy: \(ya.count)/\(yb.count) labels and \(lam.count) ratios for a batch of \(n)")
        for i in 0..<n {
            try require(ya[i] >= 0 && ya[i] < k && yb[i] >= 0 && yb[i] < k,
                        "decoupledMixupCrossEntropy: labels (\(ya[i]), \(yb[i])) of row \(i) out of range 0..<\(k)")
            try require(lam[i].isFinite && lam[i] >= 0 && lam[i] <= 1,
                        "decoupledMixupCrossEntropy: lam[\(i)] = \(lam[i]) is not in [0, 1]")
        }
        let needGrad = Tensor.needsGrad([self])
        let grad = needGrad ? try Tensor(zeros: [n, k]) : nil
        var total = 0.0
        var p = [Double](repeating: 0, count: k)
        let x = data
        for i in 0..<n {
            let z = x + i * k, a = ya[i], b = yb[i], l = Double(lam[i])
            var m = -Double.infinity
            for c in 0..<k { m = Swift.max(m, Double(z[c])) }
            var s = 0.0
            for c in 0..<k { p[c] = exp(Double(z[c]) - m); s += p[c] }
            let lse = m + log(s)
            let wa = a == b ? 1.0 : l, wb = a == b ? 0.0 : 1 - l
            var row = wa * (lse - Double(z[a])) + wb * (lse - Double(z[b]))
            let g = grad.map { $0.data + i * k }
            if let g {
                for c in 0..<k { g[c] = Float((wa + wb) * p[c] / s) }
                g[a] -= Float(wa); g[b] -= Float(wb)
            }
            if config.isDecoupled(a: a, b: b, lam: lam[i]) {
                for (t, other, lt) in [(a, b, lam[i]), (b, a, 1 - lam[i])] {
                    let eta = Double(config.weight(lambda: lt))
                    if eta == 0 { continue }
                    let sd = s - p[other]          // Σ_{c ≠ other} e^{z_c − m}
                    row += eta * (m + log(sd) - Double(z[t]))
                    if let g {
                        for c in 0..<k where c != other { g[c] += Float(eta * p[c] / sd) }
                        g[t] -= Float(eta)
                    }
                }
            }
            total += row
        }
        let out = try Tensor(repeating: Float(total / Double(n)), shape: [])
        guard let grad else { return out }
        return out.recordOp("decoupledMixupCrossEntropy", [self]) { g in
            try requireShape(g.count == 1, "decoupledMixupCrossEntropy backward: scalar gradient expected, got \(g.shape)")
            let r = try Tensor(uninitializedShape: [n, k])
            let sc = g.data[0] / Float(n), gp = grad.data, rp = r.data
            for j in 0..<(n * k) { rp[j] = gp[j] * sc }
            return [r]
        }
    }
}

/// Training with an image-space mixing policy and the decoupled mixup loss: each step mixes the batch
/// with `policy` (in place, like `MixPolicyObjective`) and minimises `DecoupledMixupLoss` with the
/// policy's per-sample label weights. Registered as "decouplemix" with Mixup α = 1, η = 0.1 (mode both).
public final class DecoupleMixObjective: TrainingObjective {
    public let name: String
    public let policy: MixPolicy
    public let loss: DecoupledMixupLoss

    public init(name: String = "decouplemix", policy: MixPolicy, loss: DecoupledMixupLoss) {
        self.name = name
        self.policy = policy
        self.loss = loss
    }

    public func loss(model: ImageClassifier, batch: Batch, context: inout StepContext) throws -> Tensor {
        let (n, c, h, w) = try ModelMixing.checkBatch(batch, name)
        let shape = try ImageBatchShape(batch: n, channels: c, height: h, width: w)
        let result = try policy.mix(batch.images.data, shape: shape, rng: &context.rng)
        let partnerLabels = result.partner.map { batch.labels[$0] }
        context.metrics.append(("lambda", Double(result.labelLambda.reduce(0, +)) / Double(n)))
        return try model(batch.images).decoupledMixupCrossEntropy(labelsA: batch.labels, labelsB: partnerLabels,
                                                                  lam: result.labelLambda, config: loss)
    }
}
