import Glibc
import SAMixCore
import SAMixOps
import SAMixNN
import SAMixData

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
