import SAMixCore

/// Sum and mean reductions: over all elements (→ a scalar of shape `[]`) or along one axis.
///
/// Float sums use `SIMD8<Float>` with four accumulators (scalar float reductions do not vectorise,
/// machine-notes); parallel partial sums are combined in chunk order, so results are deterministic
/// for a given thread count.
package enum ReduceKernels {
    /// Σ p[0..<n] (4 × SIMD8 accumulators, `sumFloats`).
    @inline(__always)
    package static func sum(_ p: UnsafePointer<Float>, _ n: Int) -> Float { sumFloats(p, n) }

    /// max p[0..<n] (n ≥ 1) with SIMD8 lanes; NaN inputs may be skipped.
    @inline(__always)
    static func max(_ p: UnsafePointer<Float>, _ n: Int) -> Float {
        var i = 0
        var m = -Float.infinity
        let raw = UnsafeRawPointer(p)
        if n >= 16 {
            var m0 = SIMD8<Float>(repeating: -.infinity), m1 = m0
            while i &+ 16 <= n {
                m0 = pointwiseMax(m0, raw.loadUnaligned(fromByteOffset: i &* 4, as: SIMD8<Float>.self))
                m1 = pointwiseMax(m1, raw.loadUnaligned(fromByteOffset: (i &+ 8) &* 4, as: SIMD8<Float>.self))
                i &+= 16
            }
            m = pointwiseMax(m0, m1).max()
        }
        while i < n { let v = p[i]; if v > m { m = v }; i &+= 1 }
        return m
    }

    /// Σ p[i]·q[i] with SIMD8 accumulators.
    @inline(__always)
    static func dot(_ p: UnsafePointer<Float>, _ q: UnsafePointer<Float>, _ n: Int) -> Float {
        var a0 = SIMD8<Float>(), a1 = SIMD8<Float>()
        var i = 0
        let rp = UnsafeRawPointer(p), rq = UnsafeRawPointer(q)
        while i &+ 16 <= n {
            a0 = a0.addingProduct(rp.loadUnaligned(fromByteOffset: i &* 4, as: SIMD8<Float>.self),
                                  rq.loadUnaligned(fromByteOffset: i &* 4, as: SIMD8<Float>.self))
            a1 = a1.addingProduct(rp.loadUnaligned(fromByteOffset: (i &+ 8) &* 4, as: SIMD8<Float>.self),
                                  rq.loadUnaligned(fromByteOffset: (i &+ 8) &* 4, as: SIMD8<Float>.self))
            i &+= 16
        }
        var s = (a0 + a1).sum()
        while i < n { s += p[i] * q[i]; i &+= 1 }
        return s
    }

    /// Sum of `n` floats, split over threads when large; partials combined in chunk order.
    package static func parallelSum(_ p: UnsafePointer<Float>, _ n: Int) -> Float {
        let minChunk = 1 << 16
        let chunks = parallelChunkCount(n, minChunk: minChunk)
        if chunks <= 1 { return sum(p, n) }
        var partial = [Float](repeating: 0, count: chunks)
        partial.withUnsafeMutableBufferPointer { buf in
            let out = buf.baseAddress!
            parallelChunks(n, minChunk: minChunk) { c, r in
                out[c] = sum(p + r.lowerBound, r.count)
            }
        }
        var s: Float = 0
        for v in partial { s += v }
        return s
    }
}

extension Tensor {
    /// Normalises an axis (negative counts from the end) and checks it is in range.
    func normalizedAxis(_ axis: Int, _ op: String) throws -> Int {
        let a = axis < 0 ? axis + rank : axis
        try require(a >= 0 && a < rank, "\(op): axis \(axis) is out of range for shape \(shape)")
        return a
    }

    /// Sizes (outer, n, inner) of `shape` seen as [prod(before axis), shape[axis], prod(after axis)].
    func axisSplit(_ axis: Int) -> (outer: Int, n: Int, inner: Int) {
        var outer = 1, inner = 1
        for d in 0..<axis { outer *= shape[d] }
        for d in (axis + 1)..<rank { inner *= shape[d] }
        return (outer, shape[axis], inner)
    }

    /// Sum of all elements, shape `[]`. Gradient: dL/dx = g everywhere.
    public func sum() throws -> Tensor {
        try reduceAll(scale: 1, name: "sum")
    }

    /// Mean of all elements, shape `[]`. Empty tensors give NaN.
    public func mean() throws -> Tensor {
        try reduceAll(scale: count == 0 ? .nan : 1 / Float(count), name: "mean")
    }

    private func reduceAll(scale: Float, name: String) throws -> Tensor {
        let out = try Tensor(uninitializedShape: [])
        out.data[0] = ReduceKernels.parallelSum(data, count) * scale
        let inShape = shape
        return out.recordOp(name, [self]) { g in
            try requireShape(g.count == 1, "\(name) backward: gradient must be a scalar, got \(g.shape)")
            return [try Tensor(repeating: g.data[0] * scale, shape: inShape)]
        }
    }

    /// Sum along `axis`: [..., n, ...] → [..., ...] (or [..., 1, ...] with `keepDims`).
    public func sum(axis: Int, keepDims: Bool = false) throws -> Tensor {
        try reduceAxis(axis, keepDims: keepDims, mean: false)
    }

    /// Mean along `axis`: `sum(axis:) / shape[axis]`.
    public func mean(axis: Int, keepDims: Bool = false) throws -> Tensor {
        try reduceAxis(axis, keepDims: keepDims, mean: true)
    }

    private func reduceAxis(_ axis: Int, keepDims: Bool, mean: Bool) throws -> Tensor {
        let name = mean ? "mean(axis)" : "sum(axis)"
        let a = try normalizedAxis(axis, name)
        let (outer, n, inner) = axisSplit(a)
        var outShape = shape
        if keepDims { outShape[a] = 1 } else { outShape.remove(at: a) }
        let scale: Float = mean ? (n == 0 ? .nan : 1 / Float(n)) : 1
        let out = try Tensor(uninitializedShape: outShape)
        let x = data, y = out.data
        let work = outer &* n &* inner
        let body: (Range<Int>) -> Void = { r in
            for o in r {
                let src = x + o &* n &* inner, dst = y + o &* inner
                if inner == 1 {
                    dst[0] = ReduceKernels.sum(src, n) * scale
                } else {
                    for i in 0..<inner { dst[i] = 0 }
                    for k in 0..<n {
                        let row = src + k &* inner
                        for i in 0..<inner { dst[i] += row[i] }
                    }
                    if scale != 1 { for i in 0..<inner { dst[i] *= scale } }
                }
            }
        }
        if work >= 1 << 16 && outer > 1 {
            parallelChunks(outer) { _, r in body(r) }
        } else {
            body(0..<outer)
        }
        let inShape = shape
        return out.recordOp(name, [self]) { g in
            try requireShape(g.count == outer &* inner, "\(name) backward: gradient \(g.shape) for output \(outShape)")
            let gx = try Tensor(uninitializedShape: inShape)
            let gp = g.data, gxp = gx.data
            for o in 0..<outer {
                let src = gp + o &* inner
                for k in 0..<n {
                    let dst = gxp + (o &* n &+ k) &* inner
                    for i in 0..<inner { dst[i] = src[i] * scale }
                }
            }
            return [gx]
        }
    }
}
