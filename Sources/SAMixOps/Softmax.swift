import Glibc
import SAMixCore

/// Softmax and log-softmax along any axis, numerically stable (the maximum is subtracted first).
///
/// With the tensor seen as [outer, n, inner] around `axis`:
/// `softmax(x)ₖ = exp(xₖ − m) / Σⱼ exp(xⱼ − m)`, `logSoftmax(x)ₖ = xₖ − m − log Σⱼ exp(xⱼ − m)`.
/// Backward: softmax `gx = y ⊙ (g − Σₖ gₖyₖ)`; log-softmax `gx = g − softmax(x) · Σₖ gₖ`.
extension Tensor {
    /// Softmax along `axis` (default: last).
    public func softmax(axis: Int = -1) throws -> Tensor {
        try softmaxImpl(axis: axis, log: false)
    }

    /// Log-softmax along `axis` (default: last).
    public func logSoftmax(axis: Int = -1) throws -> Tensor {
        try softmaxImpl(axis: axis, log: true)
    }

    private func softmaxImpl(axis: Int, log: Bool) throws -> Tensor {
        let name = log ? "logSoftmax" : "softmax"
        let a = try normalizedAxis(axis, name)
        let (outer, n, inner) = axisSplit(a)
        let out = try Tensor(uninitializedShape: shape)
        if count == 0 {
            let inShape = shape
            return out.recordOp(name, [self]) { _ in [try Tensor(zeros: inShape)] }
        }
        let x = data, y = out.data
        let lastAxis = inner == 1
        SoftmaxKernels.run(outer: outer, work: count) { r in
            if lastAxis {
                for o in r { SoftmaxKernels.row(x + o &* n, y + o &* n, n, log: log) }
            } else {
                SoftmaxKernels.strided(x, y, outers: r, n: n, inner: inner, log: log)
            }
        }
        guard Tensor.needsGrad([self]) else { return out }
        let saved = out.detached()
        return out.recordOp(name, [self]) { g in
            try requireShape(g.count == saved.count, "\(name) backward: gradient \(g.shape) for \(saved.shape)")
            let gx = try Tensor(uninitializedShape: saved.shape)
            let gp = g.data, yp = saved.data, gxp = gx.data
            SoftmaxKernels.run(outer: outer, work: saved.count) { r in
                if lastAxis {
                    for o in r {
                        let base = o &* n
                        let gr = gp + base, yr = yp + base, dr = gxp + base
                        if log {
                            let s = ReduceKernels.sum(gr, n)
                            for k in 0..<n { dr[k] = gr[k] - expf(yr[k]) * s }
                        } else {
                            let s = ReduceKernels.dot(gr, yr, n)
                            for k in 0..<n { dr[k] = yr[k] * (gr[k] - s) }
                        }
                    }
                    return
                }
                // Σₖ over the strided axis, vectorised across `inner` (one buffer per chunk).
                var acc = [Float](repeating: 0, count: inner)
                acc.withUnsafeMutableBufferPointer { accBuf in
                    let s = accBuf.baseAddress!
                    for o in r {
                        let base = o &* n &* inner
                        for i in 0..<inner { s[i] = 0 }
                        for k in 0..<n {
                            let gr = gp + (base &+ k &* inner), yr = yp + (base &+ k &* inner)
                            if log { for i in 0..<inner { s[i] += gr[i] } } else { for i in 0..<inner { s[i] += gr[i] * yr[i] } }
                        }
                        for k in 0..<n {
                            let off = base &+ k &* inner
                            let gr = gp + off, yr = yp + off, dr = gxp + off
                            if log {
                                for i in 0..<inner { dr[i] = gr[i] - expf(yr[i]) * s[i] }
                            } else {
                                for i in 0..<inner { dr[i] = yr[i] * (gr[i] - s[i]) }
                            }
                        }
                    }
                }
            }
            return [gx]
        }
    }
}

/// Row kernels shared by softmax, log-softmax and the fused cross-entropy losses.
enum SoftmaxKernels {
    /// Runs `body` over `0..<outer`, in parallel when the tensor is large.
    @inline(__always)
    static func run(outer: Int, work: Int, _ body: (Range<Int>) -> Void) {
        if work >= 1 << 15 && outer > 1 {
            parallelChunks(outer) { _, r in body(r) }
        } else {
            body(0..<outer)
        }
    }

    /// Writes softmax (or log-softmax) of the contiguous row `x[0..<n]` into `y`; returns
    /// `log Σ exp(x)` (the log-sum-exp). `y` may alias `x`.
    @inline(__always) @discardableResult
    static func row(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int, log: Bool) -> Float {
        if n == 0 { return -.infinity }
        let m = ReduceKernels.max(x, n)
        if !m.isFinite {
            // All −∞ (or a +∞/NaN present): follow IEEE arithmetic without the shift.
            var s: Float = 0
            for k in 0..<n { s += expf(x[k]) }
            let lse = logf(s)
            for k in 0..<n { y[k] = log ? x[k] - lse : expf(x[k]) / s }
            return lse
        }
        var s: Float = 0
        if log {
            for k in 0..<n { s += expf(x[k] - m) }
            let lse = m + logf(s)
            for k in 0..<n { y[k] = x[k] - lse }
            return lse
        }
        for k in 0..<n { let e = expf(x[k] - m); y[k] = e; s += e }
        let inv = 1 / s
        for k in 0..<n { y[k] *= inv }
        return m + logf(s)
    }

    /// Softmax along a strided axis for the outer indices `outers` of [outer, n, inner].
    static func strided(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>,
                        outers: Range<Int>, n: Int, inner: Int, log: Bool) {
        var buf = [Float](repeating: 0, count: 2 &* inner)
        buf.withUnsafeMutableBufferPointer { b in
            let mx = b.baseAddress!, sm = mx + inner
            for o in outers {
                let base = o &* n &* inner
                for i in 0..<inner { mx[i] = -.infinity; sm[i] = 0 }
                for k in 0..<n {
                    let xr = x + (base &+ k &* inner)
                    for i in 0..<inner { mx[i] = Swift.max(mx[i], xr[i]) }
                }
                for i in 0..<inner where !mx[i].isFinite { mx[i] = 0 }
                for k in 0..<n {
                    let off = base &+ k &* inner
                    let xr = x + off, yr = y + off
                    for i in 0..<inner {
                        let e = expf(xr[i] - mx[i])
                        sm[i] += e
                        if !log { yr[i] = e }
                    }
                }
                if log {
                    for i in 0..<inner { sm[i] = mx[i] + logf(sm[i]) }
                    for k in 0..<n {
                        let off = base &+ k &* inner
                        let xr = x + off, yr = y + off
                        for i in 0..<inner { yr[i] = xr[i] - sm[i] }
                    }
                } else {
                    for i in 0..<inner { sm[i] = 1 / sm[i] }
                    for k in 0..<n {
                        let yr = y + (base &+ k &* inner)
                        for i in 0..<inner { yr[i] *= sm[i] }
                    }
                }
            }
        }
    }
}
