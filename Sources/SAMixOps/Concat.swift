import SAMixCore

/// Concatenation and narrowing (slicing) along one axis.
///
/// With tensors seen as [outer, nᵢ, inner] around the axis, concat copies, for each outer index,
/// the contiguous blocks of nᵢ·inner elements one after another; its backward narrows the gradient
/// back into pieces. `narrow` is the inverse: its backward writes the gradient into a zero tensor.
extension Tensor {
    /// Joins `tensors` along `axis` (negative counts from the end). All must have the same rank and
    /// the same sizes on every other axis; channel concat of NCHW maps is `axis: 1`.
    public static func concat(_ tensors: [Tensor], axis: Int) throws -> Tensor {
        guard let first = tensors.first else {
            throw SAMixError.invalidArgument("concat: no tensors given")
        }
        let a = try first.normalizedAxis(axis, "concat")
        var outShape = first.shape
        var total = 0
        for (i, t) in tensors.enumerated() {
            try requireShape(t.rank == first.rank, "concat: tensor \(i) has shape \(t.shape), tensor 0 \(first.shape)")
            for d in 0..<first.rank where d != a {
                try requireShape(t.shape[d] == first.shape[d],
                                 "concat along axis \(a): tensor \(i) has shape \(t.shape), tensor 0 \(first.shape)")
            }
            total += t.shape[a]
        }
        outShape[a] = total
        let out = try Tensor(uninitializedShape: outShape)
        let (outer, _, inner) = first.axisSplit(a)
        let sizes = tensors.map { $0.shape[a] }
        let rowOut = total &* inner
        var offset = 0
        for (t, n) in zip(tensors, sizes) {
            copyBlocks(from: t.data, srcRow: n &* inner, srcOffset: 0,
                       to: out.data, dstRow: rowOut, dstOffset: offset &* inner,
                       block: n &* inner, rows: outer)
            offset += n
        }
        guard needsGrad(tensors) else { return out }
        let needs = tensors.map(\.requiresGrad)
        let shapes = tensors.map(\.shape)
        return out.recordOp("concat", tensors) { g in
            try requireShape(g.count == outer &* rowOut, "concat backward: gradient \(g.shape) for \(outShape)")
            var grads: [Tensor?] = []
            var offset = 0
            for (i, n) in sizes.enumerated() {
                if needs[i] {
                    let gi = try Tensor(uninitializedShape: shapes[i])
                    copyBlocks(from: g.data, srcRow: rowOut, srcOffset: offset &* inner,
                               to: gi.data, dstRow: n &* inner, dstOffset: 0,
                               block: n &* inner, rows: outer)
                    grads.append(gi)
                } else {
                    grads.append(nil)
                }
                offset += n
            }
            return grads
        }
    }

    /// Elements `start..<start+length` along `axis` (copies): e.g. `narrow(axis: 1, start: 0,
    /// length: 3)` keeps the first three channels of an NCHW tensor.
    public func narrow(axis: Int, start: Int, length: Int) throws -> Tensor {
        let a = try normalizedAxis(axis, "narrow")
        let n = shape[a]
        try require(start >= 0 && length >= 0 && start <= n && length <= n - start,
                    "narrow: \(length) elements from \(start) do not fit in 0..<\(n) on axis \(a) of \(shape)")
        var outShape = shape
        outShape[a] = length
        let out = try Tensor(uninitializedShape: outShape)
        let (outer, _, inner) = axisSplit(a)
        Tensor.copyBlocks(from: data, srcRow: n &* inner, srcOffset: start &* inner,
                          to: out.data, dstRow: length &* inner, dstOffset: 0,
                          block: length &* inner, rows: outer)
        let inShape = shape, outCount = out.count
        return out.recordOp("narrow", [self]) { g in
            try requireShape(g.count == outCount, "narrow backward: gradient \(g.shape) for \(outShape)")
            let gx = try Tensor(zeros: inShape)
            Tensor.copyBlocks(from: g.data, srcRow: length &* inner, srcOffset: 0,
                              to: gx.data, dstRow: n &* inner, dstOffset: start &* inner,
                              block: length &* inner, rows: outer)
            return [gx]
        }
    }

    /// Splits along `axis` into pieces of the given sizes (which must add up to the axis size).
    public func split(axis: Int, sizes: [Int]) throws -> [Tensor] {
        let a = try normalizedAxis(axis, "split")
        try require(sizes.allSatisfy { $0 >= 0 } && sizes.reduce(0, +) == shape[a],
                    "split: sizes \(sizes) do not add up to \(shape[a]) on axis \(a) of \(shape)")
        var start = 0
        var parts: [Tensor] = []
        for s in sizes {
            parts.append(try narrow(axis: a, start: start, length: s))
            start += s
        }
        return parts
    }

    /// Copies `rows` blocks of `block` floats between row-strided layouts.
    fileprivate static func copyBlocks(from src: UnsafePointer<Float>, srcRow: Int, srcOffset: Int,
                                       to dst: UnsafeMutablePointer<Float>, dstRow: Int, dstOffset: Int,
                                       block: Int, rows: Int) {
        if block == 0 || rows == 0 { return }
        let body: (Range<Int>) -> Void = { r in
            for o in r {
                (dst + (o &* dstRow &+ dstOffset)).update(from: src + (o &* srcRow &+ srcOffset), count: block)
            }
        }
        if rows &* block >= 1 << 17 && rows > 1 {
            parallelChunks(rows) { _, r in body(r) }
        } else {
            body(0..<rows)
        }
    }
}
