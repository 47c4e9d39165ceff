import SAMixCore

/// Selects rows along the first dimension: y[i] = x[index[i]] (index values in 0..<N, repeats
/// allowed). Backward scatters: dx[index[i]] += dy[i]. Used for x[π] in mixup.
extension Tensor {
    public func gatherRows(_ index: [Int]) throws -> Tensor {
        try requireShape(rank >= 1, "gatherRows needs rank ≥ 1")
        let n = shape[0]
        try require(index.allSatisfy { $0 >= 0 && $0 < n }, "gatherRows index out of range 0..<\(n)")
        let row = n == 0 ? 0 : count / n
        var outShape = shape
        outShape[0] = index.count
        let out = try Tensor(uninitializedShape: outShape)
        let src = data, dst = out.data
        parallelFor(index.count, minChunk: max(1, 4096 / max(row, 1))) { i in
            (dst + i &* row).update(from: src + index[i] &* row, count: row)
        }
        let inShape = shape
        return out.recordOp("gatherRows", [self]) { g in
            let dx = try Tensor(zeros: inShape)
            let gp = g.data, dp = dx.data
            for (i, j) in index.enumerated() {
                let d = dp + j &* row, s = gp + i &* row
                for k in 0..<row { d[k] += s[k] }
            }
            return [dx]
        }
    }
}
