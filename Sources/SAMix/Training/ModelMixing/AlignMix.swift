import Glibc

/// Entropy-regularised optimal transport between two point sets with uniform marginals, by log-domain
/// Sinkhorn iterations — the `SinkhornDistance` module AlignMix uses:
///
///     C_ij = ‖a_i − b_j‖²,   M(u, v)_ij = (−C_ij + u_i + v_j)/ε,
///     u ← ε·(log(μ + 1e−8) − logsumexp_j M(u, v)) + u,   v ← ε·(log(ν + 1e−8) − logsumexp_i M(u, v)) + v,
///     P = exp(M(u, v)),   μ = 1/n, ν = 1/m,
///
/// stopping after `maxIterations` (100) or when Σ_i |Δu_i| < `threshold` (0.1, as in the reference;
/// computed per pair here — the reference averages it over the batch). Computation in Double.
/// With the reference's loose rule the last update (v) makes the column marginals exact while rows
/// can be off by tens of percent when it stops early; pass a smaller `threshold` (and more iterations)
/// for an accurate plan. On ResNet-20 CIFAR features (costs ~30–1000, ε = 0.1) it usually runs all
/// 100 iterations: 2·HW² exponentials per iteration and pair.
public struct Sinkhorn: Sendable {
    public let epsilon: Double
    public let maxIterations: Int
    public let threshold: Double

    public init(epsilon: Double = 0.1, maxIterations: Int = 100, threshold: Double = 0.1) throws {
        try require(epsilon > 0 && epsilon.isFinite, "Sinkhorn ε must be a finite value > 0, got \(epsilon)")
        try require(maxIterations >= 1, "Sinkhorn needs at least one iteration")
        try require(threshold >= 0 && !threshold.isNaN, "Sinkhorn threshold must be ≥ 0")
        self.epsilon = epsilon
        self.maxIterations = maxIterations
        self.threshold = threshold
    }

    /// Squared Euclidean cost between the columns of two [d, n] and [d, m] point sets stored row-major
    /// (feature-major, as a C×HW feature map is): C[i·m + j] = Σ_c (a[c·n + i] − b[c·m + j])².
    public static func squaredDistances(_ a: UnsafePointer<Float>, n: Int, _ b: UnsafePointer<Float>, m: Int, dims d: Int) -> [Double] {
        var cost = [Double](repeating: 0, count: n * m)
        for c in 0..<d {
            let ar = a + c * n, br = b + c * m
            for i in 0..<n {
                let ai = Double(ar[i])
                for j in 0..<m { let t = ai - Double(br[j]); cost[i * m + j] += t * t }
            }
        }
        return cost
    }

    /// The transport plan (n × m, row-major; rows sum to ≈ 1/n, columns to ≈ 1/m) for the cost matrix, and
    /// the number of iterations run. Non-finite costs throw.
    public func plan(cost: [Double], rows n: Int, cols m: Int) throws -> (plan: [Double], iterations: Int) {
        try require(n >= 1 && m >= 1, "Sinkhorn: empty point set")
        try requireShape(cost.count == n * m, "Sinkhorn: \(cost.count) costs for \(n)×\(m)")
        try require(cost.allSatisfy { $0.isFinite }, "Sinkhorn: non-finite cost")
        let eps = epsilon
        let logMu = log(1.0 / Double(n) + 1e-8), logNu = log(1.0 / Double(m) + 1e-8)
        var u = [Double](repeating: 0, count: n), v = [Double](repeating: 0, count: m)
        var iterations = 0
        var colMax = [Double](repeating: 0, count: m), colSum = [Double](repeating: 0, count: m)
        for _ in 0..<maxIterations {
            iterations += 1
            var err = 0.0
            for i in 0..<n {
                var mx = -Double.infinity
                for j in 0..<m { mx = max(mx, (-cost[i * m + j] + u[i] + v[j]) / eps) }
                var s = 0.0
                for j in 0..<m { s += exp((-cost[i * m + j] + u[i] + v[j]) / eps - mx) }
                let nu = eps * (logMu - (mx + log(s))) + u[i]
                err += abs(nu - u[i])
                u[i] = nu
            }
            for j in 0..<m { colMax[j] = -Double.infinity; colSum[j] = 0 }
            for i in 0..<n { for j in 0..<m { colMax[j] = max(colMax[j], (-cost[i * m + j] + u[i] + v[j]) / eps) } }
            for i in 0..<n { for j in 0..<m { colSum[j] += exp((-cost[i * m + j] + u[i] + v[j]) / eps - colMax[j]) } }
            for j in 0..<m { v[j] = eps * (logNu - (colMax[j] + log(colSum[j]))) + v[j] }
            if err < threshold { break }
        }
        var p = [Double](repeating: 0, count: n * m)
        for i in 0..<n { for j in 0..<m { p[i * m + j] = exp((-cost[i * m + j] + u[i] + v[j]) / eps) } }
        return (p, iterations)
    }
}

/// AlignMix (Venkataramanan et al. 2022; OpenMixup `alignmix.py`, spec §7): mixes the LAST-STAGE
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
