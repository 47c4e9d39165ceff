import SAMixCore

/// Inverted dropout: in training each element is zeroed with probability p and the survivors are
/// scaled by 1/(1 − p), so the expected output equals the input and evaluation is the identity.
/// Backward multiplies the gradient by the same mask.
extension Tensor {
    /// Elements per independently seeded block of the mask (the mask depends only on the seed,
    /// never on the thread count).
    static let dropoutBlock = 1 << 14

    /// Dropout with drop probability `p` in [0, 1]. When `training` is false (or p = 0) the input
    /// is returned unchanged. Consumes one draw of `rng` per call.
    public func dropout(p: Float, training: Bool, rng: inout SplitMix64) throws -> Tensor {
        try require(p.isFinite && p >= 0 && p <= 1, "dropout: p must be in [0, 1], got \(p)")
        if !training || p == 0 { return self }
        let base = SplitMix64(seed: rng.next())
        let mask = try Tensor(uninitializedShape: shape)
        let out = try Tensor(uninitializedShape: shape)
        let keepScale: Float = p >= 1 ? 0 : 1 / (1 - p)
        // Keep when a 24-bit uniform integer is ≥ p·2²⁴.
        let threshold = UInt64((Double(p) * 16_777_216).rounded())
        let x = data, mp = mask.data, y = out.data
        let blocks = (count + Tensor.dropoutBlock - 1) / Tensor.dropoutBlock
        let fill: (Range<Int>) -> Void = { r in
            for b in r {
                var g = base.fork(index: UInt64(b))
                let lo = b &* Tensor.dropoutBlock, hi = Swift.min(lo &+ Tensor.dropoutBlock, self.count)
                for i in lo..<hi {
                    let keep = (g.next() >> 40) >= threshold
                    mp[i] = keep ? keepScale : 0
                }
                for i in lo..<hi { y[i] = x[i] * mp[i] }
            }
        }
        if blocks > 1 { parallelChunks(blocks) { _, r in fill(r) } } else { fill(0..<blocks) }
        guard Tensor.needsGrad([self]) else { return out }
        return out.recordOp("dropout", [self]) { g in
            try requireShape(g.count == mask.count, "dropout backward: gradient \(g.shape) for \(mask.shape)")
            let gx = try Tensor(uninitializedShape: mask.shape)
            let gp = g.data, mk = mask.data, gxp = gx.data
            Tensor.elementwiseChunks(mask.count) { r in
                for i in r { gxp[i] = gp[i] * mk[i] }
            }
            return [gx]
        }
    }
}
