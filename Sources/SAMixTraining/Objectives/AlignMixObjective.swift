import Glibc
import SAMixCore
import SAMixOps
import SAMixNN
import SAMixData
import SAMixMixing

/// AlignMix (Venkataramanan et al. 2022; OpenMixup `alignmix.py`, docs/method.md §7): mixes the LAST-STAGE
/// feature maps of the pair (A = h_i, B = h_π(i), each C × HW) after aligning them with optimal transport.
/// P = HW · Sinkhorn plan between the HW feature vectors of A and B (ε = 0.1, ≤ 100 iterations), so its
/// rows and columns sum to ≈ 1. With probability 0.5
///
///     h̃ = λ·A + (1 − λ)·B·Pᵀ      (B's features transported onto A's positions),  else
///     h̃ = λ·A·P + (1 − λ)·B       (A's features transported onto B's positions),
///
/// λ ~ Beta(α, α); the head (GAP + linear) runs on h̃ and the labels are Mixup's (λ for yᵢ).
/// Gradients flow through both feature maps (and the whole backbone); the plan P is computed from
/// detached features and treated as a constant, as the reference does (`.detach()`).
public final class AlignMixObjective: TrainingObjective {
    public let alpha: Double
    public let sinkhorn: Sinkhorn
    public let partnerMode: PartnerMode
    public let mixLoss: MixupLoss
    public var name: String { "alignmix" }

    /// OpenMixup CIFAR-100 setting: α = 2 (docs "AlignMix (2, official)"), ε = 0.1, 100 iterations.
    public init(alpha: Double = 2, sinkhorn: Sinkhorn? = nil, partnerMode: PartnerMode = .permutation,
                loss: MixupLoss = .mixupCE) throws {
        try require(alpha > 0 && alpha.isFinite, "AlignMix: α must be a finite value > 0, got \(alpha)")
        try loss.validate()
        self.alpha = alpha
        self.sinkhorn = try sinkhorn ?? Sinkhorn()
        self.partnerMode = partnerMode
        self.mixLoss = loss
    }

    /// The per-pair plans P·HW [N, HW, HW] between the positions of h_i (rows) and h_π(i) (columns).
    public func alignmentPlans(features h: Tensor, partner: [Int]) throws -> Tensor {
        try requireShape(h.rank == 4 && h.shape[0] == partner.count, "AlignMix: features \(h.shape) for \(partner.count) partners")
        try require(partner.allSatisfy { $0 >= 0 && $0 < h.shape[0] }, "AlignMix: partner index out of range")
        let n = h.shape[0], c = h.shape[1], hw = h.shape[2] * h.shape[3]
        let out = try Tensor(zeros: [n, hw, hw])
        let src = h.data, dst = out.data
        var failure: Error? = nil
        var plans = [[Double]](repeating: [], count: n)
        plans.withUnsafeMutableBufferPointer { pb in
            let pbase = pb.baseAddress!
            parallelFor(n) { i in
                let cost = Sinkhorn.squaredDistances(src + i * c * hw, n: hw, src + partner[i] * c * hw, m: hw, dims: c)
                if let r = try? sinkhorn.plan(cost: cost, rows: hw, cols: hw) { pbase[i] = r.plan }
            }
        }
        for i in 0..<n {
            guard plans[i].count == hw * hw else { failure = SAMixError.invalidState("AlignMix: Sinkhorn failed (non-finite features?)"); break }
            let o = dst + i * hw * hw
            for j in 0..<(hw * hw) { o[j] = Float(plans[i][j] * Double(hw)) }
        }
        if let failure { throw failure }
        return out
    }

    /// The mixed feature map for given λ, partners and branch (`alignPartner`: transport B onto A).
    /// `plans` (N × HW × HW, from `alignmentPlans`) are computed from the detached features when nil.
    public func mixFeatures(_ h: Tensor, lam: Float, partner: [Int], alignPartner: Bool, plans given: Tensor? = nil) throws -> Tensor {
        try requireShape(h.rank == 4 && h.shape[0] == partner.count, "AlignMix: features \(h.shape) for \(partner.count) partners")
        let n = h.shape[0], c = h.shape[1], hw = h.shape[2] * h.shape[3]
        let plans = try given ?? alignmentPlans(features: h.detached(), partner: partner)
        try requireShape(plans.shape == [n, hw, hw], "AlignMix: plans \(plans.shape), expected [\(n), \(hw), \(hw)]")
        let a = try h.reshaped([n, c, hw])
        let b = try h.gatherRows(partner).reshaped([n, c, hw])
        let mixed: Tensor
        if alignPartner {
            mixed = try a * lam + (try Tensor.matmul(b, plans, transposeB: true)) * (1 - lam)
        } else {
            mixed = try (try Tensor.matmul(a, plans)) * lam + b * (1 - lam)
        }
        return try mixed.reshaped(h.shape)
    }

    public func loss(model: ImageClassifier, batch: Batch, context: inout StepContext) throws -> Tensor {
        let (n, _, _, _) = try ModelMixing.checkBatch(batch, name)
        let last = model.backbone.stageCount
        try require(last >= 1, "AlignMix: the backbone has no stages")
        let lam = Float(context.rng.beta(alpha, alpha))
        let partner = try partnerMode.draw(batch: n, rng: &context.rng)
        let alignPartner = context.rng.int(below: 2) == 0
        let (logits, _) = try model.forwardWithFeatures(batch.images) { k, h in
            guard k == last else { return h }
            try requireShape(h.rank == 4, "AlignMix: last-stage map must be [N, C, H, W], got \(h.shape)")
            return try self.mixFeatures(h, lam: lam, partner: partner, alignPartner: alignPartner)
        }
        context.metrics.append(("lambda", Double(lam)))
        return try mixLoss(logits: logits, labelsA: batch.labels, labelsB: partner.map { batch.labels[$0] },
                           lam: [Float](repeating: lam, count: n))
    }
}
