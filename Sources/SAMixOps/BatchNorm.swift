import SAMixCore

/// Batch normalisation over NCHW (statistics per channel over N, H, W).
///
/// Training: μ_c, σ²_c from the batch (biased variance), y = γ·(x − μ)/√(σ² + ε) + β, and the
/// running statistics move by `momentum`: r ← (1 − m)·r + m·batch (running variance uses the
/// unbiased estimate, as PyTorch). Evaluation: the running statistics are used.
/// Backward (training), with x̂ = (x − μ)/σ and M = N·H·W:
/// dβ = Σ dy, dγ = Σ dy·x̂, dx = γ/σ · (dy − dβ/M − x̂·dγ/M).
/// x̂ is recomputed from x in the backward pass rather than stored.
///
/// Synchronized (`synchronizedOver` a group of more than one process, training only): μ, σ² and M
/// are over the whole global batch (per-channel sums all-reduced: Σx with the count, then
/// Σ(x − μ)²), and backward all-reduces Σ dy and Σ dy·x̂ before dx, as PyTorch's SyncBatchNorm does;
/// dγ, dβ stay this rank's sums (the trainer averages gradients over ranks). Every rank must call
/// it for the same layers in the same order.
///
/// `relu`: returns max(y, 0) in the same pass (BatchNorm followed by ReLU, fused): the forward writes
/// one tensor instead of two, and backward masks dy by [out > 0] while it reads it instead of a
/// separate ReLU backward pass. The numbers are bit-identical to `batchNorm2d(…).relu()` (the masked
/// gradient of each plane is formed in a small per-thread buffer and reduced by the same code).
public func batchNorm2d(_ x: Tensor, gamma: Tensor?, beta: Tensor?, runningMean: Tensor?, runningVar: Tensor?,
                        training: Bool, momentum: Float = 0.1, epsilon: Float = 1e-5,
                        synchronizedOver group: ProcessGroup? = nil, relu: Bool = false) throws -> Tensor {
    try requireShape(x.rank == 4 || x.rank == 2, "batchNorm2d input must be [N, C, H, W] or [N, C], got \(x.shape)")
    let n = x.shape[0], c = x.shape[1]
    let hw = x.rank == 4 ? x.shape[2] * x.shape[3] : 1
    for (name, t) in [("gamma", gamma), ("beta", beta), ("runningMean", runningMean), ("runningVar", runningVar)] {
        if let t { try requireShape(t.count == c, "batchNorm2d \(name) must have \(c) elements, got \(t.shape)") }
    }
    let m = n * hw
    if training { try require(m > 1, "batchNorm2d in training mode needs more than one value per channel, got input \(x.shape)") }
    try require(epsilon > 0, "batchNorm2d epsilon must be > 0")
    let y = try Tensor(uninitializedShape: x.shape)
    let mean = try Tensor(uninitializedShape: [c]), invStd = try Tensor(uninitializedShape: [c])
    let xp = x.data, yp = y.data, mp = mean.data, sp = invStd.data
    let gp = gamma?.data, bp = beta?.data
    let cstride = c * hw
    let sync = training ? group.flatMap { $0.isDistributed ? $0 : nil } : nil
    let totalM = try sync.map {
        try synchronizedStatistics(xp, n: n, c: c, hw: hw, group: $0, mean: mp, invStd: sp, runningMean: runningMean,
                                   runningVar: runningVar, momentum: momentum, epsilon: epsilon)
    } ?? m
    let synced = sync != nil
    parallelFor(c) { ch in
        var mu: Float, istd: Float
        if synced {
            mu = mp[ch]
            istd = sp[ch]
        } else if training {
            var s: Double = 0
            for img in 0..<n { s += Double(sumFloats(xp + (img &* cstride &+ ch &* hw), hw)) }
            mu = Float(s / Double(m))
            var v: Double = 0
            for img in 0..<n {
                let p = xp + (img &* cstride &+ ch &* hw)
                v += Double(squaredDeviationSum(p, hw, mu))
            }
            let variance = Float(v / Double(m))
            istd = 1 / (variance + epsilon).squareRoot()
            if let rm = runningMean?.data, let rv = runningVar?.data {
                rm[ch] = (1 - momentum) * rm[ch] + momentum * mu
                rv[ch] = (1 - momentum) * rv[ch] + momentum * Float(v / Double(max(m - 1, 1)))
            }
        } else {
            mu = runningMean?.data[ch] ?? 0
            let variance = runningVar?.data[ch] ?? 1
            istd = 1 / (variance + epsilon).squareRoot()
        }
        mp[ch] = mu
        sp[ch] = istd
        let scale = (gp?[ch] ?? 1) * istd
        let shift = (bp?[ch] ?? 0) - mu * scale
        for img in 0..<n {
            let src = xp + (img &* cstride &+ ch &* hw), dst = yp + (img &* cstride &+ ch &* hw)
            if relu {
                for i in 0..<hw { let v = src[i] * scale + shift; dst[i] = v > 0 ? v : 0 }
            } else {
                for i in 0..<hw { dst[i] = src[i] * scale + shift }
            }
        }
    }
    var inputs = [x]
    if let gamma { inputs.append(gamma) }
    if let beta { inputs.append(beta) }
    let xd = x.detached(), gd = gamma?.detached()
    let hasGamma = gamma != nil, hasBeta = beta != nil
    let outd: Tensor? = relu && Tensor.needsGrad(inputs) ? y.detached() : nil   // the ReLU mask [out > 0]
    return y.recordOp(relu ? "batchNorm2dReLU" : "batchNorm2d", inputs) { dyIn in
        // Fused ReLU: the gradient reaching BatchNorm is dy·[out > 0], formed plane by plane in
        // `masked` (one H·W plane, cache-resident) so the sums see exactly the unfused values.
        let outp = outd?.data
        @inline(__always) func plane(_ off: Int, _ masked: UnsafeMutablePointer<Float>) -> UnsafePointer<Float> {
            guard let outp else { return UnsafePointer(dyIn.data + off) }
            let s = dyIn.data + off, o = outp + off
            for i in 0..<hw { masked[i] = o[i] > 0 ? s[i] : 0 }
            return UnsafePointer(masked)
        }
        // Re-derive the pointers from the tensors so the closure keeps mean/invStd alive.
        let mp = mean.data, sp = invStd.data
        let dx = x.requiresGrad ? try Tensor(uninitializedShape: xd.shape) : nil   // dyIn: [N, C, H, W] like x
        let dgamma = try Tensor(uninitializedShape: [c]), dbeta = try Tensor(uninitializedShape: [c])
        let xp = xd.data, dxp = dx?.data, dgp = dgamma.data, dbp = dbeta.data
        let gp = gd?.data
        // Synchronized: the global Σ dy and Σ dy·x̂ of every channel, reduced before dx.
        var global: [Double] = []
        if let sync {
            global = [Double](repeating: 0, count: 2 * c)
            global.withUnsafeMutableBufferPointer { g in
                let gs = g.baseAddress!
                parallelFor(c) { ch in
                    var sdy: Double = 0, sdyx: Double = 0
                    withUnsafeTemporaryAllocation(of: Float.self, capacity: outp == nil ? 1 : hw) { tmp in
                        for img in 0..<n {
                            let off = img &* cstride &+ ch &* hw
                            let g = plane(off, tmp.baseAddress!)
                            sdy += Double(sumFloats(g, hw))
                            sdyx += Double(dotFloats(g, xp + off, hw))
                        }
                    }
                    gs[ch] = sdy
                    gs[c &+ ch] = (sdyx - Double(mp[ch]) * sdy) * Double(sp[ch])
                }
            }
            try sync.allreduceSum(&global)
        }
        let globalSums = global
        let invM = 1 / Float(totalM)
        parallelFor(c) { ch in
          withUnsafeTemporaryAllocation(of: Float.self, capacity: outp == nil ? 1 : hw) { tmp in
            let masked = tmp.baseAddress!
            let mu = mp[ch], istd = sp[ch]
            var sdy: Double = 0, sdyx: Double = 0
            for img in 0..<n {
                let off = img &* cstride &+ ch &* hw
                let g = plane(off, masked)
                sdy += Double(sumFloats(g, hw))
                sdyx += Double(dotFloats(g, xp + off, hw))
            }
            // Σ dy·x̂ = istd·(Σ dy·x − μ·Σ dy)
            let db = Float(sdy), dg = Float((sdyx - Double(mu) * sdy)) * istd
            dbp[ch] = db
            dgp[ch] = dg
            guard let dxp else { return }
            let g = gp?[ch] ?? 1
            if training {
                let k = g * istd
                let (sumDy, sumDyXhat) = synced ? (Float(globalSums[ch]), Float(globalSums[c &+ ch])) : (db, dg)
                let a = sumDy * invM, b = sumDyXhat * invM * istd
                for img in 0..<n {
                    let off = img &* cstride &+ ch &* hw
                    let s = plane(off, masked), xs = xp + off, d = dxp + off
                    for i in 0..<hw { d[i] = k * (s[i] - a - (xs[i] - mu) * b) }
                }
            } else {
                let k = g * istd
                for img in 0..<n {
                    let off = img &* cstride &+ ch &* hw
                    let s = plane(off, masked), d = dxp + off
                    for i in 0..<hw { d[i] = k * s[i] }
                }
            }
          }
        }
        var grads: [Tensor?] = [dx]
        if hasGamma { grads.append(gamma?.requiresGrad == true ? dgamma : nil) }
        if hasBeta { grads.append(beta?.requiresGrad == true ? dbeta : nil) }
        return grads
    }
}

/// Batch statistics over every rank of `group`: fills `mean` and `invStd` per channel, updates the
/// running statistics, and returns the global count M (Σ over ranks of N·H·W).
private func synchronizedStatistics(_ xp: UnsafeMutablePointer<Float>, n: Int, c: Int, hw: Int, group: ProcessGroup,
                                    mean: UnsafeMutablePointer<Float>, invStd: UnsafeMutablePointer<Float>,
                                    runningMean: Tensor?, runningVar: Tensor?, momentum: Float, epsilon: Float) throws -> Int {
    let cstride = c * hw
    var sums = [Double](repeating: 0, count: c + 1)
    sums.withUnsafeMutableBufferPointer { b in
        let sp = b.baseAddress!
        parallelFor(c) { ch in
            var s: Double = 0
            for img in 0..<n { s += Double(sumFloats(xp + (img &* cstride &+ ch &* hw), hw)) }
            sp[ch] = s
        }
    }
    sums[c] = Double(n * hw)
    try group.allreduceSum(&sums)
    let total = sums[c]
    for ch in 0..<c { mean[ch] = Float(sums[ch] / total) }
    var deviations = [Double](repeating: 0, count: c)
    deviations.withUnsafeMutableBufferPointer { b in
        let dp = b.baseAddress!
        parallelFor(c) { ch in
            var v: Double = 0
            for img in 0..<n { v += Double(squaredDeviationSum(xp + (img &* cstride &+ ch &* hw), hw, mean[ch])) }
            dp[ch] = v
        }
    }
    try group.allreduceSum(&deviations)
    for ch in 0..<c {
        let variance = Float(deviations[ch] / total)
        invStd[ch] = 1 / (variance + epsilon).squareRoot()
        if let rm = runningMean?.data, let rv = runningVar?.data {
            rm[ch] = (1 - momentum) * rm[ch] + momentum * mean[ch]
            rv[ch] = (1 - momentum) * rv[ch] + momentum * Float(deviations[ch] / max(total - 1, 1))
        }
    }
    return Int(total)
}

/// Σ (p[i] − mu)², vectorised.
@inlinable
func squaredDeviationSum(_ p: UnsafePointer<Float>, _ n: Int, _ mu: Float) -> Float {
    var a0 = SIMD8<Float>(), a1 = SIMD8<Float>()
    let m = SIMD8<Float>(repeating: mu)
    let raw = UnsafeRawPointer(p)
    var i = 0
    while i &+ 16 <= n {
        let d0 = raw.loadUnaligned(fromByteOffset: i &* 4, as: SIMD8<Float>.self) - m
        let d1 = raw.loadUnaligned(fromByteOffset: (i &+ 8) &* 4, as: SIMD8<Float>.self) - m
        a0 += d0 * d0
        a1 += d1 * d1
        i &+= 16
    }
    var s = (a0 + a1).sum()
    while i < n { let d = p[i] - mu; s += d * d; i &+= 1 }
    return s
}
