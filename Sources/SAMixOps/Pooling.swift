import SAMixCore

/// 2-D pooling over NCHW tensors: max, average and global average.
///
/// Window geometry (PyTorch semantics, floor mode): for input [N, C, H, W], kernel k, stride s and
/// padding p, the output is [N, C, Hₒ, Wₒ] with `Hₒ = (H + 2p − k)/s + 1`. Padding must be at most
/// k/2 so every window holds at least one real pixel. Work is split over the N·C planes.
extension Tensor {
    /// Pooling geometry for one spatial plane.
    fileprivate struct PoolGeometry {
        var h, w, kh, kw, sh, sw, ph, pw, oh, ow: Int
        var planes: Int
        var inPlane: Int { h &* w }
        var outPlane: Int { oh &* ow }
    }

    fileprivate func poolGeometry(_ op: String, kernel: (Int, Int), stride: (Int, Int)?,
                                  padding: (Int, Int)) throws -> PoolGeometry {
        try requireShape(rank == 4, "\(op): input must be [N, C, H, W], got \(shape)")
        let (kh, kw) = kernel
        let (sh, sw) = stride ?? kernel
        let (ph, pw) = padding
        try require(kh > 0 && kw > 0, "\(op): kernel \(kernel) must be positive")
        try require(sh > 0 && sw > 0, "\(op): stride must be positive")
        try require(ph >= 0 && pw >= 0 && ph <= kh / 2 && pw <= kw / 2,
                    "\(op): padding \(padding) must be between 0 and half the kernel \(kernel)")
        let h = shape[2], w = shape[3]
        try requireShape(h > 0 && w > 0, "\(op): empty spatial size in \(shape)")
        try requireShape(h + 2 * ph >= kh && w + 2 * pw >= kw,
                         "\(op): kernel \(kernel) is larger than the padded input \(h)×\(w)")
        return PoolGeometry(h: h, w: w, kh: kh, kw: kw, sh: sh, sw: sw, ph: ph, pw: pw,
                            oh: (h + 2 * ph - kh) / sh + 1, ow: (w + 2 * pw - kw) / sw + 1,
                            planes: shape[0] * shape[1])
    }

    /// Runs `body(planeRange)`, in parallel over planes when the work is large.
    fileprivate static func forPlanes(_ planes: Int, work: Int, _ body: (Range<Int>) -> Void) {
        if work >= 1 << 15 && planes > 1 {
            parallelChunks(planes) { _, r in body(r) }
        } else {
            body(0..<planes)
        }
    }

    /// Max pooling with square kernel `kernel`, `stride` (default: kernel) and zero-free padding
    /// (padded positions never win). Backward routes each output gradient to its arg-max input
    /// (the first maximum in row-major window order).
    public func maxPool2d(kernel: Int, stride: Int? = nil, padding: Int = 0) throws -> Tensor {
        try maxPool2d(kernel: (kernel, kernel), stride: stride.map { ($0, $0) }, padding: (padding, padding))
    }

    /// Max pooling with separate (height, width) kernel, stride and padding.
    public func maxPool2d(kernel: (Int, Int), stride: (Int, Int)?, padding: (Int, Int)) throws -> Tensor {
        let geo = try poolGeometry("maxPool2d", kernel: kernel, stride: stride, padding: padding)
        let n = shape[0], c = shape[1]
        let out = try Tensor(uninitializedShape: [n, c, geo.oh, geo.ow])
        let record = Tensor.needsGrad([self])
        // Arg-max as an index within the input plane (Int32 suffices: planes are < 2³¹ pixels).
        try require(geo.inPlane < Int(Int32.max), "maxPool2d: plane of \(geo.inPlane) pixels is too large")
        var argmax = [Int32](repeating: 0, count: record ? out.count : 0)
        let x = data, y = out.data
        argmax.withUnsafeMutableBufferPointer { ab in
            let am = record ? ab.baseAddress : nil  // an empty array may still have a base address
            Tensor.forPlanes(geo.planes, work: out.count &* geo.kh &* geo.kw) { r in
                for plane in r {
                    let src = x + plane &* geo.inPlane, dst = y + plane &* geo.outPlane
                    let idx = am.map { $0 + plane &* geo.outPlane }
                    for oy in 0..<geo.oh {
                        let y0 = oy &* geo.sh &- geo.ph
                        let yLo = Swift.max(y0, 0), yHi = Swift.min(y0 &+ geo.kh, geo.h)
                        for ox in 0..<geo.ow {
                            let x0 = ox &* geo.sw &- geo.pw
                            let xLo = Swift.max(x0, 0), xHi = Swift.min(x0 &+ geo.kw, geo.w)
                            var best = -Float.infinity, bestAt = yLo &* geo.w &+ xLo
                            for iy in yLo..<yHi {
                                let row = iy &* geo.w
                                for ix in xLo..<xHi {
                                    let v = src[row &+ ix]
                                    // `!(v <= best)` also picks a NaN, like PyTorch.
                                    if !(v <= best) { best = v; bestAt = row &+ ix }
                                }
                            }
                            dst[oy &* geo.ow &+ ox] = best
                            idx?[oy &* geo.ow &+ ox] = Int32(truncatingIfNeeded: bestAt)
                        }
                    }
                }
            }
        }
        guard record else { return out }
        let inShape = shape
        return out.recordOp("maxPool2d", [self]) { g in
            try requireShape(g.count == geo.planes &* geo.outPlane, "maxPool2d backward: gradient \(g.shape)")
            let gx = try Tensor(zeros: inShape)
            let gp = g.data, gxp = gx.data
            argmax.withUnsafeBufferPointer { ab in
                guard let am = ab.baseAddress, !ab.isEmpty else { return }
                Tensor.forPlanes(geo.planes, work: g.count) { r in
                    for plane in r {
                        let dst = gxp + plane &* geo.inPlane
                        let base = plane &* geo.outPlane
                        for o in 0..<geo.outPlane { dst[Int(am[base &+ o])] += gp[base &+ o] }
                    }
                }
            }
            return [gx]
        }
    }

    /// Average pooling with square kernel. With `countIncludePad` (PyTorch's default) every
    /// window is divided by k·k; otherwise by the number of real pixels it covers.
    public func avgPool2d(kernel: Int, stride: Int? = nil, padding: Int = 0,
                          countIncludePad: Bool = true) throws -> Tensor {
        try avgPool2d(kernel: (kernel, kernel), stride: stride.map { ($0, $0) }, padding: (padding, padding),
                      countIncludePad: countIncludePad)
    }

    /// Average pooling with separate (height, width) kernel, stride and padding.
    public func avgPool2d(kernel: (Int, Int), stride: (Int, Int)?, padding: (Int, Int),
                          countIncludePad: Bool = true) throws -> Tensor {
        let geo = try poolGeometry("avgPool2d", kernel: kernel, stride: stride, padding: padding)
        let n = shape[0], c = shape[1]
        let out = try Tensor(uninitializedShape: [n, c, geo.oh, geo.ow])
        // Per-output divisor depends only on the window position.
        var inv = [Float](repeating: 0, count: geo.outPlane)
        for oy in 0..<geo.oh {
            let y0 = oy * geo.sh - geo.ph
            let yc = min(y0 + geo.kh, geo.h) - max(y0, 0)
            for ox in 0..<geo.ow {
                let x0 = ox * geo.sw - geo.pw
                let xc = min(x0 + geo.kw, geo.w) - max(x0, 0)
                let d = countIncludePad ? geo.kh * geo.kw : yc * xc
                inv[oy * geo.ow + ox] = 1 / Float(d)
            }
        }
        let x = data, y = out.data
        inv.withUnsafeBufferPointer { ib in
            let iv = ib.baseAddress!
            Tensor.forPlanes(geo.planes, work: out.count &* geo.kh &* geo.kw) { r in
                for plane in r {
                    let src = x + plane &* geo.inPlane, dst = y + plane &* geo.outPlane
                    for oy in 0..<geo.oh {
                        let y0 = oy &* geo.sh &- geo.ph
                        let yLo = Swift.max(y0, 0), yHi = Swift.min(y0 &+ geo.kh, geo.h)
                        for ox in 0..<geo.ow {
                            let x0 = ox &* geo.sw &- geo.pw
                            let xLo = Swift.max(x0, 0), xHi = Swift.min(x0 &+ geo.kw, geo.w)
                            var s: Float = 0
                            for iy in yLo..<yHi {
                                let row = src + iy &* geo.w
                                for ix in xLo..<xHi { s += row[ix] }
                            }
                            let o = oy &* geo.ow &+ ox
                            dst[o] = s * iv[o]
                        }
                    }
                }
            }
        }
        let inShape = shape
        return out.recordOp("avgPool2d", [self]) { g in
            try requireShape(g.count == geo.planes &* geo.outPlane, "avgPool2d backward: gradient \(g.shape)")
            let gx = try Tensor(zeros: inShape)
            let gp = g.data, gxp = gx.data
            inv.withUnsafeBufferPointer { ib in
                let iv = ib.baseAddress!
                Tensor.forPlanes(geo.planes, work: g.count &* geo.kh &* geo.kw) { r in
                    for plane in r {
                        let src = gp + plane &* geo.outPlane, dst = gxp + plane &* geo.inPlane
                        for oy in 0..<geo.oh {
                            let y0 = oy &* geo.sh &- geo.ph
                            let yLo = Swift.max(y0, 0), yHi = Swift.min(y0 &+ geo.kh, geo.h)
                            for ox in 0..<geo.ow {
                                let x0 = ox &* geo.sw &- geo.pw
                                let xLo = Swift.max(x0, 0), xHi = Swift.min(x0 &+ geo.kw, geo.w)
                                let o = oy &* geo.ow &+ ox
                                let v = src[o] * iv[o]
                                for iy in yLo..<yHi {
                                    let row = dst + iy &* geo.w
                                    for ix in xLo..<xHi { row[ix] += v }
                                }
                            }
                        }
                    }
                }
            }
            return [gx]
        }
    }

    /// Global average pooling: [N, C, H, W] → [N, C], `y = mean over H·W`; backward spreads
    /// `g / (H·W)` over the plane.
    public func globalAvgPool2d() throws -> Tensor {
        try requireShape(rank == 4, "globalAvgPool2d: input must be [N, C, H, W], got \(shape)")
        let n = shape[0], c = shape[1], hw = shape[2] * shape[3]
        try require(hw > 0, "globalAvgPool2d: empty spatial size in \(shape)")
        let planes = n * c
        let out = try Tensor(uninitializedShape: [n, c])
        let inv = 1 / Float(hw)
        let x = data, y = out.data
        Tensor.forPlanes(planes, work: count) { r in
            for p in r { y[p] = ReduceKernels.sum(x + p &* hw, hw) * inv }
        }
        let inShape = shape
        return out.recordOp("globalAvgPool2d", [self]) { g in
            try requireShape(g.count == planes, "globalAvgPool2d backward: gradient \(g.shape)")
            let gx = try Tensor(uninitializedShape: inShape)
            let gp = g.data, gxp = gx.data
            Tensor.forPlanes(planes, work: planes &* hw) { r in
                for p in r {
                    let v = gp[p] * inv, dst = gxp + p &* hw
                    for i in 0..<hw { dst[i] = v }
                }
            }
            return [gx]
        }
    }
}
