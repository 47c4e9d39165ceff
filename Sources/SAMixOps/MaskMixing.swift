import SAMixCore

/// Mixing a batch with its permuted partners under a per-pixel mask (docs/method.md §1, §10 item 5):
///
/// `x̃[n, c, p] = x[n, c, p]·(1 − M₁[n, p]) + x[π(n), c, p]·M₁[n, p]`
///
/// with M₁ [N, 1, H, W] the partner mask (OpenMixup channel 1 of the 2-channel mask; channel 0 is
/// M₀ = 1 − M₁), broadcast over the image channels. The label weight of y is λ and of y[π] 1 − λ.
///
/// Backward (G = ∂L/∂x̃): `∂L/∂M₁[n, p] = Σ_c G[n, c, p]·(x[π(n), c, p] − x[n, c, p])`;
/// `∂L/∂x[n] += G[n]·(1 − M₁[n])`, `∂L/∂x[π(n)] += G[n]·M₁[n]`.
extension Tensor {
    public func mixed(withPartners permutation: [Int], partnerMask m: Tensor) throws -> Tensor {
        try requireShape(rank == 4, "mixed(withPartners:): images must be [N, C, H, W], got \(shape)")
        let n = shape[0], c = shape[1], hw = shape[2] * shape[3]
        try requireShape(m.shape == [n, 1, shape[2], shape[3]],
                         "mixed(withPartners:): mask must be [\(n), 1, \(shape[2]), \(shape[3])], got \(m.shape)")
        try require(permutation.count == n && permutation.allSatisfy { $0 >= 0 && $0 < n },
                    "mixed(withPartners:): permutation must hold \(n) indices in 0..<\(n)")
        let out = try Tensor(uninitializedShape: shape)
        let x = data, mp = m.data, y = out.data
        let plane = c &* hw
        parallelFor(n) { i in
            let xa = x + i &* plane, xb = x + permutation[i] &* plane, yi = y + i &* plane, mi = mp + i &* hw
            for ch in 0..<c {
                let o = ch &* hw
                for k in 0..<hw { let a = xa[o &+ k]; yi[o &+ k] = a + (xb[o &+ k] - a) * mi[k] }
            }
        }
        guard Tensor.needsGrad([self, m]) else { return out }
        let xd = detached(), md = m.detached(), needX = requiresGrad, needM = m.requiresGrad
        let xShape = shape, mShape = m.shape
        return out.recordOp("mixedWithPartners", [self, m]) { g in
            try requireShape(g.count == n &* plane, "mixedWithPartners backward: gradient \(g.shape) for \(xShape)")
            let gp = g.data, x = xd.data, mk = md.data
            var gm: Tensor? = nil, gx: Tensor? = nil
            if needM {
                let t = try Tensor(zeros: mShape)
                let dm = t.data
                parallelFor(n) { i in
                    let xa = x + i &* plane, xb = x + permutation[i] &* plane, gi = gp + i &* plane
                    let di = dm + i &* hw
                    for ch in 0..<c {
                        let o = ch &* hw
                        for k in 0..<hw { di[k] += gi[o &+ k] * (xb[o &+ k] - xa[o &+ k]) }
                    }
                }
                gm = t
            }
            if needX {
                let t = try Tensor(zeros: xShape)
                let dx = t.data
                for i in 0..<n {
                    let gi = gp + i &* plane, mi = mk + i &* hw
                    let da = dx + i &* plane, db = dx + permutation[i] &* plane
                    for ch in 0..<c {
                        let o = ch &* hw
                        for k in 0..<hw {
                            da[o &+ k] += gi[o &+ k] * (1 - mi[k])
                            db[o &+ k] += gi[o &+ k] * mi[k]
                        }
                    }
                }
                gx = t
            }
            return [gx, gm]
        }
    }
}
