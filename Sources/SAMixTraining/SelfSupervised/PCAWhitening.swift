import Glibc
import SAMixCore
import SAMixOps
import SAMixNN
import SAMixData
import SAMixMixing

/// PCA whitening of feature rows, DeepCluster's `preprocess_features` (faiss
/// `PCAMatrix(d, p, eigen_power=-0.5)` then L2 normalisation), which OpenMixup's clustering hook
/// applies before k-means (`pca_dim = 256`).
///
/// For rows xᵢ ∈ Rᵈ (n rows) with mean μ and covariance C = (1/n) Σ (xᵢ − μ)(xᵢ − μ)ᵀ, eigenpairs
/// (λⱼ, vⱼ) sorted by decreasing λ: yᵢⱼ = vⱼᵀ(xᵢ − μ) / √(λⱼ + ε) for j < p = min(dimensions, d),
/// then yᵢ ← yᵢ / ‖yᵢ‖. ε = 1e-8·λ₀ keeps directions of (numerically) zero variance finite.
/// The eigen-decomposition is cyclic Jacobi in Double (d ≤ a few thousand; 512-d: about a second),
/// deterministic for a given input.
public enum PCAWhitening {
    /// The whitened, L2-normalised rows [n, p] of `features` [n, d].
    public static func apply(_ features: Tensor, dimensions: Int) throws -> Tensor {
        try requireShape(features.rank == 2 && features.shape[0] >= 1 && features.shape[1] >= 1,
                         "PCA whitening expects non-empty [n, d] features, got \(features.shape)")
        try require(dimensions >= 1, "PCA dimensions must be ≥ 1, got \(dimensions)")
        let n = features.shape[0], d = features.shape[1], p = Swift.min(dimensions, d)
        let x = features.data
        for i in 0..<(n * d) where !x[i].isFinite {
            throw SAMixError.numerical("PCA whitening: feature value \(x[i]) at index \(i) is not finite")
        }
        var mean = [Double](repeating: 0, count: d)
        for i in 0..<n { for j in 0..<d { mean[j] += Double(x[i * d + j]) } }
        for j in 0..<d { mean[j] /= Double(n) }
        // Centred rows (Float) and the covariance C = XcᵀXc / n (BLAS), symmetrised in Double.
        let xc = UnsafeMutablePointer<Float>.allocate(capacity: n * d)
        defer { xc.deallocate() }
        for i in 0..<n { for j in 0..<d { xc[i * d + j] = x[i * d + j] - Float(mean[j]) } }
        let c32 = UnsafeMutablePointer<Float>.allocate(capacity: d * d)
        defer { c32.deallocate() }
        sgemm(transA: true, m: d, n: d, k: n, alpha: 1 / Float(n), a: xc, lda: d, b: xc, ldb: d, c: c32, ldc: d)
        var cov = [Double](repeating: 0, count: d * d)
        for a in 0..<d { for b in 0..<d { cov[a * d + b] = (Double(c32[a * d + b]) + Double(c32[b * d + a])) / 2 } }
        let (values, vectors) = symmetricEigen(cov, d)
        let order = (0..<d).sorted { values[$0] != values[$1] ? values[$0] > values[$1] : $0 < $1 }
        let top = Swift.max(values[order[0]], 0)
        let eps = Swift.max(1e-8 * top, 1e-30)
        // Projection W [d, p]: column k = v_{order[k]} / √(λ + ε); Y = Xc·W, then rows L2-normalised.
        let w = UnsafeMutablePointer<Float>.allocate(capacity: d * p)
        defer { w.deallocate() }
        for (k, e) in order.prefix(p).enumerated() {
            let scale = 1 / (Swift.max(values[e], 0) + eps).squareRoot()
            for j in 0..<d { w[j * p + k] = Float(vectors[j * d + e] * scale) }
        }
        let out = try Tensor(uninitializedShape: [n, p])
        let o = out.data
        sgemm(m: n, n: p, k: d, a: xc, lda: d, b: w, ldb: p, c: o, ldc: p)
        for i in 0..<n {
            var norm = 0.0
            for k in 0..<p { norm += Double(o[i * p + k]) * Double(o[i * p + k]) }
            let inv = norm > 0 ? Float(1 / norm.squareRoot()) : 0
            for k in 0..<p { o[i * p + k] *= inv }
        }
        return out
    }

    /// Eigenvalues and eigenvectors (column e of the row-major [d, d] matrix) of the symmetric
    /// matrix `a` by cyclic Jacobi rotations, until the off-diagonal mass is < 1e-22 of the total
    /// (at most 60 sweeps).
    static func symmetricEigen(_ input: [Double], _ d: Int) -> (values: [Double], vectors: [Double]) {
        var aArr = input
        var vArr = [Double](repeating: 0, count: d * d)
        for i in 0..<d { vArr[i * d + i] = 1 }
        var total = 0.0
        for x in aArr { total += x * x }
        aArr.withUnsafeMutableBufferPointer { ab in
            vArr.withUnsafeMutableBufferPointer { vb in
                let a = ab.baseAddress!, v = vb.baseAddress!
                for _ in 0..<60 {
                    var off = 0.0
                    for p in 0..<d { var q = p + 1; while q < d { off += a[p * d + q] * a[p * d + q]; q += 1 } }
                    if off <= 1e-22 * Swift.max(total, 1e-300) { break }
                    for p in 0..<d {
                        var q = p + 1
                        while q < d {
                            defer { q += 1 }
                            let apq = a[p * d + q]
                            if apq == 0 { continue }
                            let app = a[p * d + p], aqq = a[q * d + q]
                            let theta = (aqq - app) / (2 * apq)
                            let t = (theta >= 0 ? 1.0 : -1.0) / (abs(theta) + (theta * theta + 1).squareRoot())
                            let c = 1 / (t * t + 1).squareRoot(), s = t * c
                            for k in 0..<d {
                                let akp = a[k * d + p], akq = a[k * d + q]
                                a[k * d + p] = c * akp - s * akq
                                a[k * d + q] = s * akp + c * akq
                            }
                            for k in 0..<d {
                                let apk = a[p * d + k], aqk = a[q * d + k]
                                a[p * d + k] = c * apk - s * aqk
                                a[q * d + k] = s * apk + c * aqk
                            }
                            a[p * d + q] = 0; a[q * d + p] = 0
                            for k in 0..<d {
                                let vkp = v[k * d + p], vkq = v[k * d + q]
                                v[k * d + p] = c * vkp - s * vkq
                                v[k * d + q] = s * vkp + c * vkq
                            }
                        }
                    }
                }
            }
        }
        return ((0..<d).map { aArr[$0 * d + $0] }, vArr)
    }
}
