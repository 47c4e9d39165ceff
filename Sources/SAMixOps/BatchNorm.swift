import SAMixCore

/// Batch normalisation over NCHW (statistics per channel over N, H, W).
///
/// Training: μ_c, σ²_c from the batch (biased variance), y = γ·(x − μ)/√(σ² + ε) + β, and the
/// running statistics move by `momentum`: r ← (1 − m)·r + m·batch (running variance uses the
/// unbiased estimate, as PyTorch). Evaluation: the running statistics are used.
/// Backward (training), with x̂ = (x − μ)/σ and M = N·H·W:
/// dβ = Σ dy, dγ = Σ dy·x̂, dx = γ/σ · (dy − dβ/M − x̂·dγ/M).
/// x̂ is recomputed from x in the backward pass rather than stored.
public func batchNorm2d(_ x: Tensor, gamma: Tensor?, beta: Tensor?, runningMean: Tensor?, runningVar: Tensor?,
                        training: Bool, momentum: Float = 0.1, epsilon: Float = 1e-5) throws -> Tensor {
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
    parallelFor(c) { ch in
        var mu: Float, istd: Float
        if training {
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
            for i in 0..<hw { dst[i] = src[i] * scale + shift }
        }
    }
    var inputs = [x]
    if let gamma { inputs.append(gamma) }
    if let beta { inputs.append(beta) }
    let xd = x.detached(), gd = gamma?.detached()
    let hasGamma = gamma != nil, hasBeta = beta != nil
    return y.recordOp("batchNorm2d", inputs) { dy in
        // Re-derive the pointers from the tensors so the closure keeps mean/invStd alive.
        let mp = mean.data, sp = invStd.data
        let dx = x.requiresGrad ? try Tensor(uninitializedShape: xd.shape) : nil
        let dgamma = try Tensor(uninitializedShape: [c]), dbeta = try Tensor(uninitializedShape: [c])
        let xp = xd.data, dyp = dy.data, dxp = dx?.data, dgp = dgamma.data, dbp = dbeta.data
        let gp = gd?.data
        parallelFor(c) { ch in
            let mu = mp[ch], istd = sp[ch]
            var sdy: Double = 0, sdyx: Double = 0
            for img in 0..<n {
                let off = img &* cstride &+ ch &* hw
                sdy += Double(sumFloats(dyp + off, hw))
                sdyx += Double(dotFloats(dyp + off, xp + off, hw))
            }
            // Σ dy·x̂ = istd·(Σ dy·x − μ·Σ dy)
            let db = Float(sdy), dg = Float((sdyx - Double(mu) * sdy)) * istd
            dbp[ch] = db
            dgp[ch] = dg
            guard let dxp else { return }
            let g = gp?[ch] ?? 1
            if training {
                let k = g * istd, invM = 1 / Float(m)
                let a = db * invM, b = dg * invM * istd
                for img in 0..<n {
                    let off = img &* cstride &+ ch &* hw
                    let s = dyp + off, xs = xp + off, d = dxp + off
                    for i in 0..<hw { d[i] = k * (s[i] - a - (xs[i] - mu) * b) }
                }
            } else {
                let k = g * istd
                for img in 0..<n {
                    let off = img &* cstride &+ ch &* hw
                    let s = dyp + off, d = dxp + off
                    for i in 0..<hw { d[i] = k * s[i] }
                }
            }
        }
        var grads: [Tensor?] = [dx]
        if hasGamma { grads.append(gamma?.requiresGrad == true ? dgamma : nil) }
        if hasBeta { grads.append(beta?.requiresGrad == true ? dbeta : nil) }
        return grads
    }
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
