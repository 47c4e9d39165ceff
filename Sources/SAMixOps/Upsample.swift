import SAMixCore

/// Spatial upsampling of NCHW tensors by integer factors: nearest and bilinear.
///
/// Bilinear uses half-pixel centres (PyTorch `align_corners=False`): output pixel `o` samples the
/// input at `s = max((o + 0.5)/f − 0.5, 0)`, blending `⌊s⌋` and `min(⌊s⌋ + 1, H − 1)` with weights
/// `1 − (s − ⌊s⌋)` and `s − ⌊s⌋`. Nearest copies input pixel `⌊o/f⌋`. Backward scatters the
/// gradient with the same weights. Work is split over the N·C planes.
extension Tensor {
    /// Nearest-neighbour upsampling: [N, C, H, W] → [N, C, H·fh, W·fw].
    public func upsampleNearest(factor: Int) throws -> Tensor {
        try upsampleNearest(factorH: factor, factorW: factor)
    }

    /// Nearest-neighbour upsampling with separate height and width factors.
    public func upsampleNearest(factorH fh: Int, factorW fw: Int) throws -> Tensor {
        let (n, c, h, w) = try upsampleCheck("upsampleNearest", fh, fw)
        let oh = h * fh, ow = w * fw, planes = n * c
        let out = try Tensor(uninitializedShape: [n, c, oh, ow])
        let x = data, y = out.data
        Tensor.upsamplePlanes(planes, work: out.count) { r in
            for p in r {
                let src = x + p &* h &* w, dst = y + p &* oh &* ow
                for iy in 0..<h {
                    let srow = src + iy &* w
                    let first = dst + iy &* fh &* ow
                    for ix in 0..<w {
                        let v = srow[ix], d = first + ix &* fw
                        for j in 0..<fw { d[j] = v }
                    }
                    for rep in 1..<Swift.max(fh, 1) { (first + rep &* ow).update(from: first, count: ow) }
                }
            }
        }
        let inShape = shape
        return out.recordOp("upsampleNearest", [self]) { g in
            try requireShape(g.count == planes &* oh &* ow, "upsampleNearest backward: gradient \(g.shape)")
            let gx = try Tensor(zeros: inShape)
            let gp = g.data, gxp = gx.data
            Tensor.upsamplePlanes(planes, work: g.count) { r in
                for p in r {
                    let src = gp + p &* oh &* ow, dst = gxp + p &* h &* w
                    for oy in 0..<oh {
                        let srow = src + oy &* ow, drow = dst + (oy / fh) &* w
                        for ix in 0..<w {
                            var s: Float = 0
                            let b = srow + ix &* fw
                            for j in 0..<fw { s += b[j] }
                            drow[ix] += s
                        }
                    }
                }
            }
            return [gx]
        }
    }

    /// Bilinear upsampling (align_corners = false): [N, C, H, W] → [N, C, H·f, W·f].
    public func upsampleBilinear(factor: Int) throws -> Tensor {
        try upsampleBilinear(factorH: factor, factorW: factor)
    }

    /// Bilinear upsampling with separate height and width factors.
    public func upsampleBilinear(factorH fh: Int, factorW fw: Int) throws -> Tensor {
        let (n, c, h, w) = try upsampleCheck("upsampleBilinear", fh, fw)
        let oh = h * fh, ow = w * fw, planes = n * c
        let ty = BilinearTaps(input: h, factor: fh), tx = BilinearTaps(input: w, factor: fw)
        let out = try Tensor(uninitializedShape: [n, c, oh, ow])
        let x = data, y = out.data
        // Empty outputs skip the kernels (their row buffers would be empty).
        Tensor.upsamplePlanes(out.count == 0 ? 0 : planes, work: out.count &* 4) { r in
            var tmp = [Float](repeating: 0, count: 2 &* ow)
            tmp.withUnsafeMutableBufferPointer { tb in
                let rowA = tb.baseAddress!, rowB = rowA + ow
                for p in r {
                    let src = x + p &* h &* w, dst = y + p &* oh &* ow
                    var cachedA = -1, cachedB = -1
                    for oy in 0..<oh {
                        let i0 = ty.lo[oy], i1 = ty.hi[oy], wy = ty.frac[oy]
                        // Horizontally interpolated input rows i0 and i1 (reused across output rows).
                        if cachedA != i0 {
                            if cachedB == i0 { rowA.update(from: rowB, count: ow) } else { tx.interpolateRow(src + i0 &* w, rowA) }
                            cachedA = i0
                        }
                        if cachedB != i1 { tx.interpolateRow(src + i1 &* w, rowB); cachedB = i1 }
                        let d = dst + oy &* ow
                        let w0 = 1 - wy
                        for j in 0..<ow { d[j] = rowA[j] * w0 + rowB[j] * wy }
                    }
                }
            }
        }
        let inShape = shape
        return out.recordOp("upsampleBilinear", [self]) { g in
            try requireShape(g.count == planes &* oh &* ow, "upsampleBilinear backward: gradient \(g.shape)")
            let gx = try Tensor(zeros: inShape)
            let gp = g.data, gxp = gx.data
            Tensor.upsamplePlanes(g.count == 0 ? 0 : planes, work: g.count &* 4) { r in
                var tmp = [Float](repeating: 0, count: ow)
                tmp.withUnsafeMutableBufferPointer { tb in
                    let row = tb.baseAddress!
                    for p in r {
                        let src = gp + p &* oh &* ow, dst = gxp + p &* h &* w
                        for oy in 0..<oh {
                            let i0 = ty.lo[oy], i1 = ty.hi[oy], wy = ty.frac[oy]
                            let grow = src + oy &* ow
                            // Vertical split of the gradient row, then horizontal scatter.
                            for j in 0..<ow { row[j] = grow[j] * (1 - wy) }
                            tx.scatterRow(row, dst + i0 &* w)
                            for j in 0..<ow { row[j] = grow[j] * wy }
                            tx.scatterRow(row, dst + i1 &* w)
                        }
                    }
                }
            }
            return [gx]
        }
    }

    fileprivate func upsampleCheck(_ op: String, _ fh: Int, _ fw: Int) throws -> (Int, Int, Int, Int) {
        try requireShape(rank == 4, "\(op): input must be [N, C, H, W], got \(shape)")
        try require(fh >= 1 && fw >= 1 && fh <= 1 << 12 && fw <= 1 << 12,
                    "\(op): factors must be between 1 and 4096, got \(fh), \(fw)")
        let (n, c, h, w) = (shape[0], shape[1], shape[2], shape[3])
        try Tensor.validate([n, c, h * fh, w * fw])
        return (n, c, h, w)
    }

    fileprivate static func upsamplePlanes(_ planes: Int, work: Int, _ body: (Range<Int>) -> Void) {
        if planes <= 0 { return }
        if work >= 1 << 16 && planes > 1 {
            parallelChunks(planes) { _, r in body(r) }
        } else {
            body(0..<planes)
        }
    }
}

/// Source taps of 1-D bilinear upsampling with half-pixel centres, one entry per output index.
fileprivate struct BilinearTaps {
    var lo: [Int]
    var hi: [Int]
    var frac: [Float]

    init(input: Int, factor: Int) {
        let out = input * factor
        lo = [Int](repeating: 0, count: out)
        hi = lo
        frac = [Float](repeating: 0, count: out)
        let scale = 1 / Float(factor)
        for o in 0..<out {
            let s = Swift.max((Float(o) + 0.5) * scale - 0.5, 0)
            let i0 = Swift.min(Int(s), input - 1)
            lo[o] = i0
            hi[o] = Swift.min(i0 + 1, input - 1)
            frac[o] = s - Float(i0)
        }
    }

    /// `dst[o] = src[lo]·(1 − frac) + src[hi]·frac` for every output index.
    func interpolateRow(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>) {
        lo.withUnsafeBufferPointer { l in hi.withUnsafeBufferPointer { h in frac.withUnsafeBufferPointer { f in
            for o in 0..<l.count {
                let t = f[o]
                dst[o] = src[l[o]] * (1 - t) + src[h[o]] * t
            }
        } } }
    }

    /// Adjoint of `interpolateRow`: `dst[lo] += g[o]·(1 − frac)`, `dst[hi] += g[o]·frac`.
    func scatterRow(_ g: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>) {
        lo.withUnsafeBufferPointer { l in hi.withUnsafeBufferPointer { h in frac.withUnsafeBufferPointer { f in
            for o in 0..<l.count {
                let t = f[o], v = g[o]
                dst[l[o]] += v * (1 - t)
                dst[h[o]] += v * t
            }
        } } }
    }
}
