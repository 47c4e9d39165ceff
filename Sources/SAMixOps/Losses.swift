import Glibc
import SAMixCore

/// Classification losses, fused with log-softmax so they are stable for any logits, each returning
/// the batch mean as a scalar of shape `[]`.
///
/// For logits `x` [N, K] and a target distribution `q` per row,
/// `ℓᵢ = −Σₖ qₖ log softmax(xᵢ)ₖ = (Σₖ qₖ)·lse(xᵢ) − Σₖ qₖ xᵢₖ`, `L = (1/N) Σᵢ ℓᵢ`,
/// `∂L/∂xᵢ = (softmax(xᵢ)·Σₖ qₖ − qᵢ) / N`. The forward pass keeps softmax, so backward is one pass.
extension Tensor {
    /// Cross-entropy with integer labels (`labels.count == N`, each in `0..<K`), optionally with
    /// label smoothing ε: `q = (1 − ε)·onehot + ε/K`.
    public func crossEntropy(labels: [Int], labelSmoothing: Float = 0) throws -> Tensor {
        let (n, k) = try lossShape("crossEntropy")
        try Tensor.validateLabels(labels, n: n, k: k, "crossEntropy", "labels")
        try Tensor.validateSmoothing(labelSmoothing)
        let u = labelSmoothing / Float(max(k, 1)), w = 1 - labelSmoothing
        return try sparseTargetCE("crossEntropy", n: n, k: k) { i in
            LossTarget(a: labels[i], wa: w, b: labels[i], wb: 0, uniform: u)
        }
    }

    /// Mixup cross-entropy with one ratio for the batch: `λ·CE(ya) + (1 − λ)·CE(yb)`.
    public func mixupCrossEntropy(labelsA ya: [Int], labelsB yb: [Int], lam: Float,
                                  labelSmoothing: Float = 0) throws -> Tensor {
        let (n, _) = try lossShape("mixupCrossEntropy")
        return try mixupCrossEntropy(labelsA: ya, labelsB: yb,
                                     lam: [Float](repeating: lam, count: n), labelSmoothing: labelSmoothing)
    }

    /// Mixup cross-entropy with a ratio per sample: `(1/N) Σᵢ λᵢ·CEᵢ(ya) + (1 − λᵢ)·CEᵢ(yb)`.
    /// With label smoothing ε both one-hot targets are smoothed.
    public func mixupCrossEntropy(labelsA ya: [Int], labelsB yb: [Int], lam: [Float],
                                  labelSmoothing: Float = 0) throws -> Tensor {
        let (n, k) = try lossShape("mixupCrossEntropy")
        try Tensor.validateLabels(ya, n: n, k: k, "mixupCrossEntropy", "labelsA")
        try Tensor.validateLabels(yb, n: n, k: k, "mixupCrossEntropy", "labelsB")
        try Tensor.validateSmoothing(labelSmoothing)
        try require(lam.count == n, "mixupCrossEntropy: \(lam.count) ratios for a batch of \(n)")
        for (i, l) in lam.enumerated() {
            try require(l.isFinite && l >= 0 && l <= 1, "mixupCrossEntropy: lam[\(i)] = \(l) is not in [0, 1]")
        }
        let u = labelSmoothing / Float(max(k, 1)), w = 1 - labelSmoothing
        return try sparseTargetCE("mixupCrossEntropy", n: n, k: k) { i in
            LossTarget(a: ya[i], wa: w * lam[i], b: yb[i], wb: w * (1 - lam[i]), uniform: u)
        }
    }

    /// Cross-entropy against soft targets `t` [N, K] (rows need not sum to 1):
    /// `(1/N) Σᵢ −Σₖ tᵢₖ log softmax(xᵢ)ₖ`. Differentiable in both logits and targets
    /// (`∂L/∂tᵢₖ = −log softmax(xᵢ)ₖ / N`).
    public func softTargetCrossEntropy(targets t: Tensor) throws -> Tensor {
        let (n, k) = try lossShape("softTargetCrossEntropy")
        try requireShape(t.shape == shape, "softTargetCrossEntropy: targets \(t.shape) do not match logits \(shape)")
        let logp = try Tensor(uninitializedShape: shape)
        var rowLoss = [Double](repeating: 0, count: n)
        let x = data, lp = logp.data, tp = t.data
        rowLoss.withUnsafeMutableBufferPointer { lossBuf in
            let lb = lossBuf.baseAddress!
            SoftmaxKernels.run(outer: n, work: count) { r in
                for i in r {
                    let off = i &* k
                    SoftmaxKernels.row(x + off, lp + off, k, log: true)
                    lb[i] = -Double(ReduceKernels.dot(tp + off, lp + off, k))
                }
            }
        }
        let out = try Tensor(repeating: Tensor.meanOf(rowLoss), shape: [])
        guard Tensor.needsGrad([self, t]) else { return out }
        let td = t.detached(), needX = requiresGrad, needT = t.requiresGrad
        return out.recordOp("softTargetCrossEntropy", [self, t]) { g in
            try requireShape(g.count == 1, "softTargetCrossEntropy backward: scalar gradient expected, got \(g.shape)")
            let s = g.data[0] / Float(n)
            var gx: Tensor? = nil, gt: Tensor? = nil
            let lp = logp.data, tp = td.data
            if needX {
                let r = try Tensor(uninitializedShape: [n, k])
                let gp = r.data
                for i in 0..<n {
                    let off = i &* k
                    let tsum = ReduceKernels.sum(tp + off, k)
                    for j in 0..<k { gp[off &+ j] = (expf(lp[off &+ j]) * tsum - tp[off &+ j]) * s }
                }
                gx = r
            }
            if needT {
                let r = try Tensor(uninitializedShape: [n, k])
                let gp = r.data
                for j in 0..<(n &* k) { gp[j] = -lp[j] * s }
                gt = r
            }
            return [gx, gt]
        }
    }

    /// Binary cross-entropy on logits (any shape; `targets` of the same shape, usually in [0, 1]):
    /// `ℓ = max(x, 0) − x·t + log(1 + e^(−|x|))`, averaged (`mean`) or summed.
    /// `∂ℓ/∂x = σ(x) − t`, `∂ℓ/∂t = −x`.
    public func binaryCrossEntropyWithLogits(targets t: Tensor, mean: Bool = true) throws -> Tensor {
        try requireShape(t.shape == shape, "binaryCrossEntropyWithLogits: targets \(t.shape) do not match logits \(shape)")
        try require(count > 0 || !mean, "binaryCrossEntropyWithLogits: mean of an empty tensor")
        let x = data, tp = t.data
        let chunkCount = parallelChunkCount(count, minChunk: 1 << 15)
        var partial = [Double](repeating: 0, count: max(chunkCount, 1))
        partial.withUnsafeMutableBufferPointer { pb in
            let p = pb.baseAddress!
            parallelChunks(count, minChunk: 1 << 15) { c, r in
                var s: Float = 0
                for i in r {
                    let v = x[i]
                    s += Swift.max(v, 0) - v * tp[i] + log1pf(expf(-abs(v)))
                }
                p[c] = Double(s)
            }
        }
        let total = partial.reduce(0, +)
        let scale: Float = mean ? 1 / Float(count) : 1
        let out = try Tensor(repeating: Float(total) * scale, shape: [])
        guard Tensor.needsGrad([self, t]) else { return out }
        let xd = self.detached(), td = t.detached(), needX = requiresGrad, needT = t.requiresGrad
        return out.recordOp("binaryCrossEntropyWithLogits", [self, t]) { g in
            try requireShape(g.count == 1, "binaryCrossEntropyWithLogits backward: scalar gradient expected, got \(g.shape)")
            let s = g.data[0] * scale
            let n = xd.count, x = xd.data, tp = td.data
            var gx: Tensor? = nil, gt: Tensor? = nil
            if needX {
                let r = try Tensor(uninitializedShape: xd.shape)
                let gp = r.data
                Tensor.elementwiseChunks(n) { rg in
                    for i in rg {
                        let v = x[i]
                        let sig: Float
                        if v >= 0 { sig = 1 / (1 + expf(-v)) } else { let e = expf(v); sig = e / (1 + e) }
                        gp[i] = (sig - tp[i]) * s
                    }
                }
                gx = r
            }
            if needT {
                let r = try Tensor(uninitializedShape: xd.shape)
                let gp = r.data
                for i in 0..<n { gp[i] = -x[i] * s }
                gt = r
            }
            return [gx, gt]
        }
    }
}

/// A row target `q = uniform + wa·e_a + wb·e_b` (a and b may coincide).
struct LossTarget {
    var a: Int
    var wa: Float
    var b: Int
    var wb: Float
    var uniform: Float
}

extension Tensor {
    /// (N, K) of a rank-2 logits tensor.
    fileprivate func lossShape(_ op: String) throws -> (Int, Int) {
        try requireShape(rank == 2, "\(op): logits must be [N, K], got \(shape)")
        try require(shape[0] > 0, "\(op): empty batch")
        try require(shape[1] > 0, "\(op): no classes")
        return (shape[0], shape[1])
    }

    fileprivate static func validateLabels(_ labels: [Int], n: Int, k: Int, _ op: String, _ what: String) throws {
        try require(labels.count == n, "\(op): \(labels.count) \(what) for a batch of \(n)")
        for (i, y) in labels.enumerated() where y < 0 || y >= k {
            throw SAMixError.invalidArgument("\(op): \(what)[\(i)] = \(y) is out of range 0..<\(k)")
        }
    }

    fileprivate static func validateSmoothing(_ e: Float) throws {
        try require(e.isFinite && e >= 0 && e < 1, "label smoothing must be in [0, 1), got \(e)")
    }

    fileprivate static func meanOf(_ v: [Double]) -> Float {
        var s = 0.0
        for x in v { s += x }
        return Float(s / Double(max(v.count, 1)))
    }

    /// Fused softmax cross-entropy for sparse row targets (hard labels, smoothing, mixup).
    fileprivate func sparseTargetCE(_ name: String, n: Int, k: Int,
                                    _ target: (Int) -> LossTarget) throws -> Tensor {
        let targets = (0..<n).map(target)
        let probs = try Tensor(uninitializedShape: [n, k])
        var rowLoss = [Double](repeating: 0, count: n)
        let x = data, p = probs.data
        targets.withUnsafeBufferPointer { tb in
            rowLoss.withUnsafeMutableBufferPointer { lossBuf in
                let tg = tb.baseAddress!, lb = lossBuf.baseAddress!
                SoftmaxKernels.run(outer: n, work: count) { r in
                    for i in r {
                        let off = i &* k, q = tg[i]
                        let xr = x + off
                        let lse = SoftmaxKernels.row(xr, p + off, k, log: false)
                        let qsum = q.uniform * Float(k) + q.wa + q.wb
                        var dotqx = q.wa * xr[q.a] + q.wb * xr[q.b]
                        if q.uniform != 0 { dotqx += q.uniform * ReduceKernels.sum(xr, k) }
                        lb[i] = Double(qsum) * Double(lse) - Double(dotqx)
                    }
                }
            }
        }
        let out = try Tensor(repeating: Tensor.meanOf(rowLoss), shape: [])
        return out.recordOp(name, [self]) { g in
            try requireShape(g.count == 1, "\(name) backward: scalar gradient expected, got \(g.shape)")
            let s = g.data[0] / Float(n)
            let gx = try Tensor(uninitializedShape: [n, k])
            let pp = probs.data, gp = gx.data
            for i in 0..<n {
                let q = targets[i], off = i &* k
                let qsum = q.uniform * Float(k) + q.wa + q.wb
                let c = qsum * s, u = q.uniform * s
                for j in 0..<k { gp[off &+ j] = pp[off &+ j] * c - u }
                gp[off &+ q.a] -= q.wa * s
                gp[off &+ q.b] -= q.wb * s
            }
            return [gx]
        }
    }
}
