import SAMixCore

/// NumPy-style broadcasting of two shapes (dimensions aligned from the right; a dimension of 1
/// stretches). Used by the elementwise binary ops and to reduce their gradients.
enum Broadcast {
    static func shape(_ a: [Int], _ b: [Int]) throws -> [Int] {
        let r = max(a.count, b.count)
        var out = [Int](repeating: 1, count: r)
        for i in 0..<r {
            let da = i < r - a.count ? 1 : a[i - (r - a.count)]
            let db = i < r - b.count ? 1 : b[i - (r - b.count)]
            if da == db || db == 1 { out[i] = da } else if da == 1 { out[i] = db } else {
                throw SAMixError.shapeMismatch("shapes \(a) and \(b) do not broadcast")
            }
        }
        return out
    }

    /// Element strides of `shape` viewed inside `outShape` (0 along broadcast dimensions).
    static func strides(_ shape: [Int], in outShape: [Int]) -> [Int] {
        let r = outShape.count, off = r - shape.count
        var strides = [Int](repeating: 0, count: r)
        var s = 1
        for i in stride(from: shape.count - 1, through: 0, by: -1) {
            strides[i + off] = shape[i] == 1 ? 0 : s
            s *= shape[i]
        }
        return strides
    }

    /// Calls `body(outOffset, aOffset, bOffset, n, aStep, bStep)` for each innermost run.
    static func forEachRun(_ outShape: [Int], _ sa: [Int], _ sb: [Int],
                           _ body: (Int, Int, Int, Int, Int, Int) -> Void) {
        let r = outShape.count
        let total = outShape.reduce(1, *)
        if total == 0 { return }
        if r == 0 { body(0, 0, 0, 1, 0, 0); return }
        let inner = outShape[r - 1]
        var index = [Int](repeating: 0, count: r)
        var o = 0
        while o < total {
            var oa = 0, ob = 0
            for d in 0..<(r - 1) { oa &+= index[d] &* sa[d]; ob &+= index[d] &* sb[d] }
            body(o, oa, ob, inner, sa[r - 1], sb[r - 1])
            o &+= inner
            var d = r - 2
            while d >= 0 {
                index[d] += 1
                if index[d] < outShape[d] { break }
                index[d] = 0
                d -= 1
            }
        }
    }

    /// Sums a gradient of `fullShape` down to `shape` (the inverse of broadcasting).
    static func reduce(_ g: Tensor, to shape: [Int]) throws -> Tensor {
        if g.shape == shape { return g }
        let out = try Tensor(zeros: shape)
        let so = strides(shape, in: g.shape)
        let zero = [Int](repeating: 0, count: g.shape.count)
        let gp = g.data, op = out.data
        forEachRun(g.shape, zero, so) { o, _, ob, n, _, bStep in
            if bStep == 0 {
                var s: Float = 0
                for j in 0..<n { s += gp[o &+ j] }
                op[ob] += s
            } else {
                for j in 0..<n { op[ob &+ j &* bStep] += gp[o &+ j] }
            }
        }
        return out
    }
}
