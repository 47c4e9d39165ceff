import SAMixCore

/// Matrix products through BLAS SGEMM: `C = op(A)·op(B)` for [M, K]×[K, N] matrices and batched
/// [B, M, K]×[B, K, N] stacks, where `op` optionally transposes (then A is stored [K, M] and/or
/// B is stored [N, K]).
///
/// Backward (G = dL/dC): `d op(A) = G·op(B)ᵀ`, `d op(B) = op(A)ᵀ·G`, each written directly in the
/// stored layout of A and B by choosing the SGEMM transposes. Work is split over the batch, or
/// over rows of C for one large matrix, with BLAS single-threaded inside each worker.
extension Tensor {
    /// `op(a)·op(b)` for rank-2 or rank-3 (batched) tensors of equal rank.
    public static func matmul(_ a: Tensor, _ b: Tensor, transposeA: Bool = false,
                              transposeB: Bool = false) throws -> Tensor {
        try requireShape(a.rank == b.rank && (a.rank == 2 || a.rank == 3),
                         "matmul: operands must both be [M, K] or [B, M, K], got \(a.shape) and \(b.shape)")
        let batched = a.rank == 3
        let batch = batched ? a.shape[0] : 1
        if batched {
            try requireShape(b.shape[0] == batch, "matmul: batch sizes differ in \(a.shape) and \(b.shape)")
        }
        let r = a.rank
        let m = transposeA ? a.shape[r - 1] : a.shape[r - 2]
        let k = transposeA ? a.shape[r - 2] : a.shape[r - 1]
        let kb = transposeB ? b.shape[r - 1] : b.shape[r - 2]
        let n = transposeB ? b.shape[r - 2] : b.shape[r - 1]
        try requireShape(k == kb, "matmul: inner dimensions differ: op(A) is \(m)×\(k), op(B) is \(kb)×\(n) "
                         + "(shapes \(a.shape), \(b.shape), transposes \(transposeA), \(transposeB))")
        let out = try Tensor(uninitializedShape: batched ? [batch, m, n] : [m, n])
        MatMulKernels.batched(transA: transposeA, transB: transposeB, batch: batch, m: m, n: n, k: k,
                              a: a.data, b: b.data, c: out.data)
        guard needsGrad([a, b]) else { return out }
        let ad = a.detached(), bd = b.detached()
        let needA = a.requiresGrad, needB = b.requiresGrad
        let aShape = a.shape, bShape = b.shape
        let tA = transposeA, tB = transposeB
        return out.recordOp("matmul", [a, b]) { g in
            try requireShape(g.count == batch &* m &* n, "matmul backward: gradient \(g.shape) for [\(batch), \(m), \(n)]")
            var ga: Tensor? = nil, gb: Tensor? = nil
            if needA {
                let t = try Tensor(uninitializedShape: aShape)
                if !tA {
                    // dA [M, K] = G [M, N] · op(B)ᵀ
                    MatMulKernels.batched(transA: false, transB: !tB, batch: batch, m: m, n: k, k: n,
                                          a: g.data, b: bd.data, c: t.data)
                } else {
                    // dA [K, M] = op(B) · Gᵀ
                    MatMulKernels.batched(transA: tB, transB: true, batch: batch, m: k, n: m, k: n,
                                          a: bd.data, b: g.data, c: t.data)
                }
                ga = t
            }
            if needB {
                let t = try Tensor(uninitializedShape: bShape)
                if !tB {
                    // dB [K, N] = op(A)ᵀ · G
                    MatMulKernels.batched(transA: !tA, transB: false, batch: batch, m: k, n: n, k: m,
                                          a: ad.data, b: g.data, c: t.data)
                } else {
                    // dB [N, K] = Gᵀ · op(A)
                    MatMulKernels.batched(transA: true, transB: tA, batch: batch, m: n, n: k, k: m,
                                          a: g.data, b: ad.data, c: t.data)
                }
                gb = t
            }
            return [ga, gb]
        }
    }

    /// `self · other` (see `Tensor.matmul`).
    public func matmul(_ other: Tensor, transposeA: Bool = false, transposeB: Bool = false) throws -> Tensor {
        try Tensor.matmul(self, other, transposeA: transposeA, transposeB: transposeB)
    }
}

enum MatMulKernels {
    /// Below this many multiply-adds a product runs on the calling thread.
    static let parallelFlops = 1 << 18

    /// `C[i] = op(A[i])·op(B[i])` for `i < batch`; A[i] holds M·K floats (stored [M, K], or [K, M]
    /// when `transA`), B[i] K·N floats, C[i] is [M, N].
    static func batched(transA: Bool, transB: Bool, batch: Int, m: Int, n: Int, k: Int,
                        a: UnsafePointer<Float>, b: UnsafePointer<Float>, c: UnsafeMutablePointer<Float>) {
        let sa = m &* k, sb = k &* n, sc = m &* n
        if k == 0 {
            // An empty inner dimension gives zeros (C is uninitialised, so no BLAS beta-scaling).
            c.update(repeating: 0, count: batch &* sc)
            return
        }
        let flops = batch &* m &* n &* k
        if batch > 1 && flops >= parallelFlops {
            parallelChunks(batch) { _, r in
                for i in r {
                    rows(transA: transA, transB: transB, rows: 0..<m, m: m, n: n, k: k,
                         a: a + i &* sa, b: b + i &* sb, c: c + i &* sc)
                }
            }
        } else if batch == 1 && flops >= parallelFlops && m > 1 {
            parallelChunks(m, minChunk: 8) { _, r in
                rows(transA: transA, transB: transB, rows: r, m: m, n: n, k: k, a: a, b: b, c: c)
            }
        } else {
            for i in 0..<batch {
                rows(transA: transA, transB: transB, rows: 0..<m, m: m, n: n, k: k,
                     a: a + i &* sa, b: b + i &* sb, c: c + i &* sc)
            }
        }
    }

    /// Rows `rows` of one product `C = op(A)·op(B)`.
    @inline(__always)
    static func rows(transA: Bool, transB: Bool, rows: Range<Int>, m: Int, n: Int, k: Int,
                     a: UnsafePointer<Float>, b: UnsafePointer<Float>, c: UnsafeMutablePointer<Float>) {
        if rows.isEmpty { return }
        // Row i of op(A) starts at a + i·K (stored [M, K]) or at column i, a + i (stored [K, M]).
        let aStart = transA ? a + rows.lowerBound : a + rows.lowerBound &* k
        sgemm(transA: transA, transB: transB, m: rows.count, n: n, k: k,
              a: aStart, lda: transA ? m : k, b: b, ldb: transB ? k : n,
              c: c + rows.lowerBound &* n, ldc: n)
    }
}
