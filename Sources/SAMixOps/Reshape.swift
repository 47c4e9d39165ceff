import SAMixCore

extension Tensor {
    /// The same elements viewed with another shape (no copy). One dimension may be -1 (inferred).
    public func reshaped(_ newShape: [Int]) throws -> Tensor {
        var dims = newShape
        let inferred = dims.indices.filter { dims[$0] == -1 }
        try require(inferred.count <= 1, "reshape to \(newShape): at most one -1")
        if let i = inferred.first {
            let known = dims.enumerated().filter { $0.offset != i }.reduce(1) { $0 * max($1.element, 0) }
            try requireShape(known > 0 && count % known == 0, "cannot reshape \(shape) to \(newShape)")
            dims[i] = count / known
        }
        try Tensor.validate(dims)
        try requireShape(dims.reduce(1, *) == count, "cannot reshape \(shape) (\(count) elements) to \(newShape)")
        let out = try Tensor(storage: storage, shape: dims)
        let inShape = shape
        return out.recordOp("reshape", [self]) { g in [try g.reshaped(inShape)] }
    }

    /// Collapses all dimensions after the first: [N, ...] → [N, rest].
    public func flattened() throws -> Tensor {
        try require(rank >= 1, "flatten needs rank ≥ 1")
        return try reshaped([shape[0], shape[0] == 0 ? 0 : count / shape[0]])
    }

    /// Reorders dimensions (copies): `permuted([0, 2, 3, 1])` turns NCHW into NHWC.
    public func permuted(_ axes: [Int]) throws -> Tensor {
        try require(axes.count == rank && Set(axes) == Set(0..<rank), "permutation \(axes) is invalid for rank \(rank)")
        let outShape = axes.map { shape[$0] }
        let out = try Tensor(uninitializedShape: outShape)
        var inStrides = [Int](repeating: 1, count: rank)
        if rank > 1 { for d in stride(from: rank - 2, through: 0, by: -1) { inStrides[d] = inStrides[d + 1] * shape[d + 1] } }
        let srcStrides = axes.map { inStrides[$0] }
        Tensor.stridedCopy(from: data, strides: srcStrides, to: out.data, shape: outShape)
        var inverse = [Int](repeating: 0, count: rank)
        for (i, a) in axes.enumerated() { inverse[a] = i }
        return out.recordOp("permute", [self]) { g in [try g.permuted(inverse)] }
    }

    /// Writes a strided view of `src` into contiguous `dst` of `shape`.
    static func stridedCopy(from src: UnsafePointer<Float>, strides: [Int],
                            to dst: UnsafeMutablePointer<Float>, shape: [Int]) {
        let rank = shape.count
        let total = shape.reduce(1, *)
        if total == 0 { return }
        if rank == 0 { dst[0] = src[0]; return }
        var index = [Int](repeating: 0, count: rank)
        let inner = shape[rank - 1], innerStride = strides[rank - 1]
        var o = 0
        while o < total {
            var offset = 0
            for d in 0..<(rank - 1) { offset &+= index[d] &* strides[d] }
            for j in 0..<inner { dst[o &+ j] = src[offset &+ j &* innerStride] }
            o &+= inner
            var d = rank - 2
            while d >= 0 {
                index[d] += 1
                if index[d] < shape[d] { break }
                index[d] = 0
                d -= 1
            }
        }
    }
}
