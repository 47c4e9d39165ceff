import COpenBLAS
import SAMixCore

/// Row-major single-precision GEMM through OpenBLAS: C = alpha·op(A)·op(B) + beta·C,
/// op(A) is M×K, op(B) is K×N, C is M×N. samix calls it from its own worker threads with BLAS
/// itself single-threaded (`Engine.configureBLAS`).
@inline(__always)
package func sgemm(transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int,
           alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
           b: UnsafePointer<Float>, ldb: Int,
           beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int) {
    if m == 0 || n == 0 { return }
    if k == 0 {
        // Empty inner dimension: C = beta·C, with beta = 0 meaning "overwrite" (C may be uninitialised).
        for i in 0..<m { for j in 0..<n { c[i &* ldc &+ j] = beta == 0 ? 0 : beta * c[i &* ldc &+ j] } }
        return
    }
    Engine.configureBLAS()
    cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
}
