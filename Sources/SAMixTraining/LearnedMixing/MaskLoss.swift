import SAMixCore
import SAMixOps
import SAMixNN
import SAMixData
import SAMixMixing

/// The Mixer's mask regulariser (OpenMixup `PixelMixBlock.mask_loss`, docs/method.md §3.7), a fused op with
/// its own backward.
///
/// For the partner mask m = M₁ (values in [0, 1]) of one group of P pixels, with mean m̄,
/// residual r = 1 − m̄ − λ (the own-image share minus its label weight), variance
/// Var = (1/P) Σ (m − m̄)², margin δ and variance weight w (2 in OpenMixup):
/// - `l1` (AutoMix):            L = max(|r| − δ, 0)
/// - `l1Variance` (SAMix):      L = max(|r| − δ, 0) − w·Var      (rewards contrasted masks; ≥ −w/4)
/// - `l2Variance`:              L = max(r² − δ², 0) − w·Var
/// - `sparsity`:                L = max((1/P) Σ |m(m − 1)| − δ, 0)
/// The loss is the mean of L over the groups. Gradient: ∂L/∂m_p = (∂L/∂m̄)/P − 2w(m_p − m̄)/P with
/// ∂L/∂m̄ = −sign(r) (l1, where |r| > δ) or −2r (l2, where r² > δ²), and
/// sign(m(m−1))·(2m − 1)/P for `sparsity` where active.
///
/// **Groups (`scope`)**: the default `.batch` is the reference — OpenMixup computes one mean and
/// one variance over the whole batch (docs/method.md §3.7, §9 quirk 4). `.sample` is a project option: each
/// sample's mask mean is held near λ and its own spatial variance rewarded. Reason: with one batch
/// group the Mixer can satisfy the mean constraint while giving individual pairs masks far from
/// their label λ, and the variance term then also rewards differences *between* samples' means.
/// A constant mask M₁ ≡ 1 − λ gives 0 in every mode and scope.
public struct MaskLoss: Equatable, Sendable {
    public enum Mode: String, Equatable, Sendable, CaseIterable {
        case l1 = "L1"
        case l1Variance = "L1+Variance"
        case l2Variance = "L2+Variance"
        case sparsity = "Sparsity"
    }

    public enum Scope: String, Equatable, Sendable {
        /// Mean and variance per sample (project option: the per-sample label λ is what each mask
        /// must match).
        case sample
        /// Mean and variance over the whole batch (OpenMixup; the default).
        case batch
    }

    public var mode: Mode
    /// δ (`mask_loss_margin`, 0.1 in every config).
    public var margin: Float
    /// w of the variance reward (2 in OpenMixup).
    public var varianceWeight: Float
    public var scope: Scope

    public init(mode: Mode, margin: Float = 0.1, varianceWeight: Float = 2, scope: Scope = .batch) throws {
        try require(margin.isFinite && margin >= 0, "mask loss margin must be ≥ 0, got \(margin)")
        try require(varianceWeight.isFinite && varianceWeight >= 0, "mask loss variance weight must be ≥ 0")
        self.mode = mode
        self.margin = margin
        self.varianceWeight = varianceWeight
        self.scope = scope
    }

    /// The loss of partner masks `partnerMask` [N, ...] mixed at label weight λ (scalar `[]`).
    /// `batchGroups` (scope `.batch`): the mean of the loss of G equal contiguous groups of the batch
    /// instead of one (what G data-parallel ranks, each with its shard, compute; `Trainer.pairingGroups`).
    public func callAsFunction(partnerMask m: Tensor, lam: Float, batchGroups: Int = 1) throws -> Tensor {
        try requireShape(m.rank >= 1 && m.count > 0, "mask loss needs a non-empty mask, got \(m.shape)")
        try require(lam.isFinite && lam >= 0 && lam <= 1, "mask loss: λ = \(lam) is not in [0, 1]")
        try require(batchGroups >= 1 && m.shape[0] % batchGroups == 0,
                    "mask loss: \(batchGroups) groups do not divide a batch of \(m.shape[0])")
        let groups = scope == .batch ? batchGroups : m.shape[0]
        let size = m.count / groups
        let lamD = Double(lam), delta = Double(margin), w = Double(varianceWeight)
        let mode = self.mode
        // Per group: loss and the two gradient coefficients (∂L/∂m̄, active-sparsity flag).
        var total = 0.0
        var dMean = [Double](repeating: 0, count: groups), means = [Double](repeating: 0, count: groups)
        var sparsityActive = [Bool](repeating: false, count: groups)
        let p = m.data
        for g in 0..<groups {
            let base = p + g * size
            var s = 0.0
            for i in 0..<size { s += Double(base[i]) }
            let mean = s / Double(size)
            means[g] = mean
            var variance = 0.0
            if mode != .sparsity {
                for i in 0..<size { let d = Double(base[i]) - mean; variance += d * d }
                variance /= Double(size)
            }
            let r = 1 - mean - lamD
            var l = 0.0
            switch mode {
            case .l1, .l1Variance:
                if abs(r) > delta { l = abs(r) - delta; dMean[g] = r > 0 ? -1 : 1 }
                if mode == .l1Variance { l -= w * Swift.max(variance, 0) }
            case .l2Variance:
                if r * r > delta * delta { l = r * r - delta * delta; dMean[g] = -2 * r }
                l -= w * Swift.max(variance, 0)
            case .sparsity:
                var a = 0.0
                for i in 0..<size { let v = Double(base[i]); a += abs(v * (v - 1)) }
                a /= Double(size)
                if a > delta { l = a - delta; sparsityActive[g] = true }
            }
            total += l
        }
        let out = try Tensor(repeating: Float(total / Double(groups)), shape: [])
        guard Tensor.needsGrad([m]) else { return out }
        let md = m.detached(), shape = m.shape
        let useVariance = mode == .l1Variance || mode == .l2Variance
        return out.recordOp("maskLoss", [m]) { gOut in
            try requireShape(gOut.count == 1, "maskLoss backward: scalar gradient expected, got \(gOut.shape)")
            let scale = Double(gOut.data[0]) / Double(groups) / Double(size)
            let gx = try Tensor(uninitializedShape: shape)
            let src = md.data, dst = gx.data
            for g in 0..<groups {
                let b = g * size
                let mean = means[g], dm = dMean[g]
                for i in 0..<size {
                    let v = Double(src[b + i])
                    var d = dm
                    if useVariance { d -= 2 * w * (v - mean) }
                    if mode == .sparsity {
                        let q = v * (v - 1)
                        d = sparsityActive[g] && q != 0 ? (q > 0 ? 1 : -1) * (2 * v - 1) : 0
                    }
                    dst[b + i] = Float(d * scale)
                }
            }
            return [gx]
        }
    }
}
