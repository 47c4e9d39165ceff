import SAMixCore

/// 2-D convolution (cross-correlation, as in PyTorch) on NCHW tensors.
///
/// Shapes: x [N, Cin, H, W], weight [Cout, Cin, kH, kW], bias [Cout] (optional) →
/// y [N, Cout, Ho, Wo] with Ho = (H + 2·padding − kH) / stride + 1.
/// Implementation: im2col per image into a per-worker buffer and one SGEMM per image
/// (y_n = W·col_n); 1×1 stride-1 unpadded convolutions use the image directly. Backward
/// recomputes the columns instead of storing them (memory ∝ one image per worker):
/// dW = Σ_n dy_n·col_nᵀ (per-worker partial sums, reduced in a fixed order), dcol = Wᵀ·dy_n, col2im → dx.
public struct Conv2DGeometry: Equatable, Sendable {
    public let n, cin, h, w, cout, kh, kw, stride, padding, ho, wo: Int
    /// Rows of the column matrix: Cin·kH·kW.
    public var colRows: Int { cin * kh * kw }
    /// Whether the image itself is the column matrix.
    public var isPointwise: Bool { kh == 1 && kw == 1 && stride == 1 && padding == 0 }

    public init(input: [Int], weight: [Int], stride: Int, padding: Int) throws {
        try requireShape(input.count == 4, "conv2d input must be [N, C, H, W], got \(input)")
        try requireShape(weight.count == 4, "conv2d weight must be [Cout, Cin, kH, kW], got \(weight)")
        try require(stride >= 1 && stride <= 64, "conv2d stride must be in 1...64, got \(stride)")
        try require(padding >= 0 && padding <= 64, "conv2d padding must be in 0...64, got \(padding)")
        try requireShape(input[1] == weight[1],
                         "conv2d input has \(input[1]) channels but weight expects \(weight[1])")
        n = input[0]; cin = input[1]; h = input[2]; w = input[3]
        cout = weight[0]; kh = weight[2]; kw = weight[3]
        self.stride = stride; self.padding = padding
        try require(kh >= 1 && kw >= 1, "conv2d kernel must be at least 1×1")
        try requireShape(h + 2 * padding >= kh && w + 2 * padding >= kw,
                         "conv2d kernel \(kh)×\(kw) larger than padded input \(h)×\(w)")
        ho = (h + 2 * padding - kh) / stride + 1
        wo = (w + 2 * padding - kw) / stride + 1
    }
}

enum Im2Col {
    /// col[(c·kH + i)·kW + j, oh·Wo + ow] = x[c, oh·s − p + i, ow·s − p + j] (0 outside).
    static func im2col(_ x: UnsafePointer<Float>, _ g: Conv2DGeometry, _ col: UnsafeMutablePointer<Float>) {
        let hw = g.ho &* g.wo
        var row = 0
        for c in 0..<g.cin {
            let xc = x + c &* g.h &* g.w
            for i in 0..<g.kh {
                for j in 0..<g.kw {
                    let dst = col + row &* hw
                    for oh in 0..<g.ho {
                        let ih = oh &* g.stride &- g.padding &+ i
                        let d = dst + oh &* g.wo
                        if ih < 0 || ih >= g.h {
                            d.update(repeating: 0, count: g.wo)
                            continue
                        }
                        let src = xc + ih &* g.w
                        if g.stride == 1 {
                            // iw = ow − p + j: valid ow range is [p − j, W + p − j)
                            let lo = max(0, g.padding &- j), hi = min(g.wo, g.w &+ g.padding &- j)
                            if lo > 0 { d.update(repeating: 0, count: min(lo, g.wo)) }
                            if hi > lo { (d + lo).update(from: src + (lo &- g.padding &+ j), count: hi &- lo) }
                            if hi < g.wo { (d + max(hi, 0)).update(repeating: 0, count: g.wo &- max(hi, 0)) }
                        } else {
                            for ow in 0..<g.wo {
                                let iw = ow &* g.stride &- g.padding &+ j
                                d[ow] = (iw >= 0 && iw < g.w) ? src[iw] : 0
                            }
                        }
                    }
                    row &+= 1
                }
            }
        }
    }

    /// Adjoint of im2col: dx[c, ih, iw] += col[...] for every column entry that came from it.
    /// `dx` must be zeroed (or hold values to accumulate onto).
    static func col2im(_ col: UnsafePointer<Float>, _ g: Conv2DGeometry, _ dx: UnsafeMutablePointer<Float>) {
        let hw = g.ho &* g.wo
        var row = 0
        for c in 0..<g.cin {
            let xc = dx + c &* g.h &* g.w
            for i in 0..<g.kh {
                for j in 0..<g.kw {
                    let src = col + row &* hw
                    for oh in 0..<g.ho {
                        let ih = oh &* g.stride &- g.padding &+ i
                        if ih < 0 || ih >= g.h { continue }
                        let s = src + oh &* g.wo
                        let d = xc + ih &* g.w
                        if g.stride == 1 {
                            let lo = max(0, g.padding &- j), hi = min(g.wo, g.w &+ g.padding &- j)
                            if hi > lo {
                                let dd = d + (lo &- g.padding &+ j), ss = s + lo
                                for t in 0..<(hi &- lo) { dd[t] += ss[t] }
                            }
                        } else {
                            for ow in 0..<g.wo {
                                let iw = ow &* g.stride &- g.padding &+ j
                                if iw >= 0 && iw < g.w { d[iw] += s[ow] }
                            }
                        }
                    }
                    row &+= 1
                }
            }
        }
    }
}

/// Convolution forward and backward.
public func conv2d(_ x: Tensor, weight: Tensor, bias: Tensor? = nil, stride: Int = 1, padding: Int = 0) throws -> Tensor {
    let g = try Conv2DGeometry(input: x.shape, weight: weight.shape, stride: stride, padding: padding)
    if let b = bias { try requireShape(b.shape == [g.cout], "conv2d bias must be [\(g.cout)], got \(b.shape)") }
    let y = try Tensor(uninitializedShape: [g.n, g.cout, g.ho, g.wo])
    ConvTrace.report(g)
    let hw = g.ho * g.wo, inSize = g.cin * g.h * g.w, outSize = g.cout * hw
    let xp = x.data, wp = weight.data, yp = y.data
    let bp = bias?.data
    // oneDNN where available (DNNLConvolution.swift), else im2col + SGEMM.
    if try !DNNLConvolution.forward(x: xp, weight: wp, bias: bp, y: yp, geometry: g) {
    let colCount = g.isPointwise ? 0 : g.colRows * hw
    let workers = parallelChunkCount(g.n)
    let cols = try (0..<workers).map { _ in try TensorStorage(count: colCount) }
    parallelChunks(g.n) { worker, range in
        let col = cols[worker].pointer
        for img in range {
            let xi = xp + img &* inSize, yi = yp + img &* outSize
            let colPtr: UnsafePointer<Float>
            if g.isPointwise { colPtr = UnsafePointer(xi) } else {
                Im2Col.im2col(xi, g, col)
                colPtr = UnsafePointer(col)
            }
            if let bp {
                for c in 0..<g.cout { (yi + c &* hw).update(repeating: bp[c], count: hw) }
            }
            sgemm(m: g.cout, n: hw, k: g.colRows, a: wp, lda: g.colRows, b: colPtr, ldb: hw,
                  beta: bp == nil ? 0 : 1, c: yi, ldc: hw)
        }
    }
    }
    let xd = x.detached(), wd = weight.detached()
    var inputs = [x, weight]
    if let b = bias { inputs.append(b) }
    let hasBias = bias != nil
    return y.recordOp("conv2d", inputs) { dy in
        try conv2dBackward(x: xd, weight: wd, dy: dy, geometry: g,
                           needInput: x.requiresGrad, needWeight: weight.requiresGrad,
                           needBias: hasBias && (bias?.requiresGrad ?? false), hasBias: hasBias)
    }
}

func conv2dBackward(x: Tensor, weight: Tensor, dy: Tensor, geometry g: Conv2DGeometry,
                    needInput: Bool, needWeight: Bool, needBias: Bool, hasBias: Bool) throws -> [Tensor?] {
    if DNNLConvolution.backend == .dnnl && (needInput || needWeight || needBias) {
        let dx = needInput ? try Tensor(uninitializedShape: x.shape) : nil
        let dW = needWeight ? try Tensor(uninitializedShape: weight.shape) : nil
        let dB = needBias ? try Tensor(uninitializedShape: [g.cout]) : nil
        if try DNNLConvolution.backward(x: x.data, weight: weight.data, dy: dy.data, dx: dx?.data, dW: dW?.data,
                                        db: dB?.data, hasBias: hasBias, geometry: g) {
            return hasBias ? [dx, dW, dB] : [dx, dW]
        }
    }
    let hw = g.ho * g.wo, inSize = g.cin * g.h * g.w, outSize = g.cout * hw
    let wCount = g.cout * g.colRows
    let workers = parallelChunkCount(g.n)
    let colCount = g.isPointwise ? 0 : g.colRows * hw
    let cols = try (0..<workers).map { _ in try TensorStorage(count: colCount) }
    // Per-worker partial weight/bias gradients, reduced in worker order (deterministic).
    let dWParts = needWeight ? try (0..<workers).map { _ in try Tensor(zeros: [wCount]) } : []
    let dBParts = needBias ? try (0..<workers).map { _ in try Tensor(zeros: [g.cout]) } : []
    let dx = needInput ? try Tensor(uninitializedShape: x.shape) : nil
    let xp = x.data, wp = weight.data, dyp = dy.data
    let dxp = dx?.data
    parallelChunks(g.n) { worker, range in
        let col = cols[worker].pointer
        for img in range {
            let xi = xp + img &* inSize, dyi = dyp + img &* outSize
            if needWeight {
                let colPtr: UnsafePointer<Float>
                if g.isPointwise { colPtr = UnsafePointer(xi) } else {
                    Im2Col.im2col(xi, g, col)
                    colPtr = UnsafePointer(col)
                }
                // dW[Cout, CKK] += dy_n[Cout, HW] · col[CKK, HW]ᵀ
                sgemm(transB: true, m: g.cout, n: g.colRows, k: hw, a: dyi, lda: hw, b: colPtr, ldb: hw,
                      beta: 1, c: dWParts[worker].data, ldc: g.colRows)
            }
            if needBias {
                let db = dBParts[worker].data
                for c in 0..<g.cout { db[c] += sumFloats(dyi + c &* hw, hw) }
            }
            if let dxp {
                let dxi = dxp + img &* inSize
                if g.isPointwise {
                    // dx_n[Cin, HW] = Wᵀ[Cin, Cout] · dy_n[Cout, HW]
                    sgemm(transA: true, m: g.cin, n: hw, k: g.cout, a: wp, lda: g.colRows, b: dyi, ldb: hw,
                          beta: 0, c: dxi, ldc: hw)
                } else {
                    sgemm(transA: true, m: g.colRows, n: hw, k: g.cout, a: wp, lda: g.colRows, b: dyi, ldb: hw,
                          beta: 0, c: col, ldc: hw)
                    dxi.update(repeating: 0, count: inSize)
                    Im2Col.col2im(col, g, dxi)
                }
            }
        }
    }
    var dW: Tensor? = nil
    if needWeight {
        let t = dWParts[0]
        for p in dWParts.dropFirst() { try t.addInPlace(p) }
        dW = try t.reshaped(weight.shape)
    }
    var dB: Tensor? = nil
    if needBias {
        let t = dBParts[0]
        for p in dBParts.dropFirst() { try t.addInPlace(p) }
        dB = t
    }
    var result: [Tensor?] = [dx, dW]
    if hasBias { result.append(dB) }
    return result
}
