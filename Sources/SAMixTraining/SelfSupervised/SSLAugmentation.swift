import Glibc
import SAMixCore
import SAMixOps
import SAMixNN
import SAMixData
import SAMixMixing

/// The MoCo v2 view augmentation (docs/method.md §5.1; torchvision semantics), applied per image with its own
/// generator `rng.fork(index: i)` so a batch is identical for any thread count:
///
/// 1. `RandomResizedCrop(scale = (0.2, 1), ratio = (3/4, 4/3))`: up to 10 draws of an area fraction
///    and a log-uniform aspect ratio, else a centre crop clamped to the ratio range; the crop is
///    resized to the output size with bilinear interpolation on half-pixel centres (PyTorch
///    `align_corners=False`). No antialiasing: on CIFAR the crop is never larger than the output.
/// 2. `ColorJitter(0.4, 0.4, 0.4, 0.1)` with probability 0.8, the four adjustments in a random
///    order: brightness `x·b`, contrast `c·x + (1 − c)·mean(gray(x))`, saturation
///    `s·x + (1 − s)·gray(x)`, hue shift in HSV by h ∈ [−0.1, 0.1]; each result clamped to [0, 1];
///    gray = 0.299 R + 0.587 G + 0.114 B.
/// 3. `RandomGrayscale(p = 0.2)` (3-channel gray).
/// 4. Gaussian blur, σ ~ U(0.1, 2), separable kernel of radius ⌈3σ⌉ with reflected borders, with
///    probability `blurProbability`. MoCo v2 uses p = 0.5 at 224 px; the CIFAR MoCo configs drop
///    it (a σ = 2 blur wipes out a 32-px image), so `mocoV2(height:width:)` turns it off below 64 px.
/// 5. Horizontal flip with probability 0.5.
/// 6. Normalisation with the dataset mean/std.
///
/// Colour steps are skipped for 1-channel images (gray data has no saturation or hue).
public struct SSLAugmentation: Equatable, Sendable {
    public var outputHeight: Int
    public var outputWidth: Int
    public var cropScale: (min: Double, max: Double)
    public var cropRatio: (min: Double, max: Double)
    public var flipProbability: Double
    public var jitterProbability: Double
    public var brightness: Double, contrast: Double, saturation: Double, hue: Double
    public var grayscaleProbability: Double
    public var blurProbability: Double
    public var blurSigma: (min: Double, max: Double)

    public init(outputHeight: Int, outputWidth: Int, cropScale: (min: Double, max: Double) = (0.2, 1),
                cropRatio: (min: Double, max: Double) = (3.0 / 4, 4.0 / 3), flipProbability: Double = 0.5,
                jitterProbability: Double = 0.8, brightness: Double = 0.4, contrast: Double = 0.4,
                saturation: Double = 0.4, hue: Double = 0.1, grayscaleProbability: Double = 0.2,
                blurProbability: Double = 0, blurSigma: (min: Double, max: Double) = (0.1, 2)) throws {
        try require(outputHeight > 0 && outputWidth > 0, "augmentation output size must be positive")
        try require(cropScale.min > 0 && cropScale.min <= cropScale.max && cropScale.max <= 1,
                    "crop scale must satisfy 0 < min ≤ max ≤ 1, got \(cropScale)")
        try require(cropRatio.min > 0 && cropRatio.min <= cropRatio.max, "crop ratio must satisfy 0 < min ≤ max")
        for (name, p) in [("flip", flipProbability), ("jitter", jitterProbability),
                          ("grayscale", grayscaleProbability), ("blur", blurProbability)] {
            try require(p >= 0 && p <= 1, "\(name) probability must be in [0, 1], got \(p)")
        }
        try require(brightness >= 0 && contrast >= 0 && saturation >= 0 && hue >= 0 && hue <= 0.5,
                    "jitter strengths must be ≥ 0 (hue ≤ 0.5)")
        try require(blurSigma.min > 0 && blurSigma.min <= blurSigma.max, "blur σ range must be positive")
        self.outputHeight = outputHeight; self.outputWidth = outputWidth
        self.cropScale = cropScale; self.cropRatio = cropRatio
        self.flipProbability = flipProbability; self.jitterProbability = jitterProbability
        self.brightness = brightness; self.contrast = contrast; self.saturation = saturation; self.hue = hue
        self.grayscaleProbability = grayscaleProbability
        self.blurProbability = blurProbability; self.blurSigma = blurSigma
    }

    /// MoCo v2's recipe at this resolution: blur (p = 0.5) only from 64 px on.
    public static func mocoV2(height: Int, width: Int) throws -> SSLAugmentation {
        try SSLAugmentation(outputHeight: height, outputWidth: width,
                            blurProbability: Swift.min(height, width) >= 64 ? 0.5 : 0)
    }

    public static func == (a: SSLAugmentation, b: SSLAugmentation) -> Bool {
        a.outputHeight == b.outputHeight && a.outputWidth == b.outputWidth
            && a.cropScale == b.cropScale && a.cropRatio == b.cropRatio
            && a.flipProbability == b.flipProbability && a.jitterProbability == b.jitterProbability
            && a.brightness == b.brightness && a.contrast == b.contrast && a.saturation == b.saturation
            && a.hue == b.hue && a.grayscaleProbability == b.grayscaleProbability
            && a.blurProbability == b.blurProbability && a.blurSigma == b.blurSigma
    }

    /// The random choices for one image.
    public struct Params: Equatable, Sendable {
        /// Crop box in source pixels.
        public var top: Int, left: Int, height: Int, width: Int
        public var flip: Bool
        /// Jitter factors (nil: no jitter) and the order of the four adjustments
        /// (0 brightness, 1 contrast, 2 saturation, 3 hue).
        public var jitter: (brightness: Double, contrast: Double, saturation: Double, hue: Double)?
        public var jitterOrder: [Int]
        public var grayscale: Bool
        /// Blur σ (nil: no blur).
        public var blurSigma: Double?

        public static func == (a: Params, b: Params) -> Bool {
            a.top == b.top && a.left == b.left && a.height == b.height && a.width == b.width && a.flip == b.flip
                && a.jitter?.brightness == b.jitter?.brightness && a.jitter?.contrast == b.jitter?.contrast
                && a.jitter?.saturation == b.jitter?.saturation && a.jitter?.hue == b.jitter?.hue
                && a.jitterOrder == b.jitterOrder && a.grayscale == b.grayscale && a.blurSigma == b.blurSigma
        }
    }

    private static func uniform(_ lo: Double, _ hi: Double, _ rng: inout SplitMix64) -> Double {
        lo + (hi - lo) * rng.uniformDouble()
    }

    /// Draws the parameters for a source image of `sourceHeight × sourceWidth` pixels.
    public func draw(sourceHeight h: Int, sourceWidth w: Int, rng: inout SplitMix64) -> Params {
        // torchvision RandomResizedCrop.get_params
        var box: (Int, Int, Int, Int)? = nil
        let area = Double(h * w)
        let logR = (log(cropRatio.min), log(cropRatio.max))
        for _ in 0..<10 {
            let target = area * Self.uniform(cropScale.min, cropScale.max, &rng)
            let aspect = exp(Self.uniform(logR.0, logR.1, &rng))
            let cw = Int((target * aspect).squareRoot().rounded())
            let ch = Int((target / aspect).squareRoot().rounded())
            if cw > 0 && cw <= w && ch > 0 && ch <= h {
                let top = rng.int(below: h - ch + 1), left = rng.int(below: w - cw + 1)
                box = (top, left, ch, cw)
                break
            }
        }
        if box == nil {
            let inRatio = Double(w) / Double(h)
            var cw = w, ch = h
            if inRatio < cropRatio.min { ch = Int((Double(w) / cropRatio.min).rounded()) }
            else if inRatio > cropRatio.max { cw = Int((Double(h) * cropRatio.max).rounded()) }
            ch = Swift.max(1, Swift.min(ch, h)); cw = Swift.max(1, Swift.min(cw, w))
            box = ((h - ch) / 2, (w - cw) / 2, ch, cw)
        }
        let b = box!
        var jitter: (Double, Double, Double, Double)? = nil
        var order = [0, 1, 2, 3]
        if rng.uniformDouble() < jitterProbability {
            order = rng.permutation(4)
            jitter = (Self.uniform(Swift.max(0, 1 - brightness), 1 + brightness, &rng),
                      Self.uniform(Swift.max(0, 1 - contrast), 1 + contrast, &rng),
                      Self.uniform(Swift.max(0, 1 - saturation), 1 + saturation, &rng),
                      Self.uniform(-hue, hue, &rng))
        }
        let gray = rng.uniformDouble() < grayscaleProbability
        var sigma: Double? = nil
        if rng.uniformDouble() < blurProbability { sigma = Self.uniform(blurSigma.min, blurSigma.max, &rng) }
        let flip = rng.uniformDouble() < flipProbability
        return Params(top: b.0, left: b.1, height: b.2, width: b.3, flip: flip,
                      jitter: jitter.map { (brightness: $0.0, contrast: $0.1, saturation: $0.2, hue: $0.3) },
                      jitterOrder: order, grayscale: gray, blurSigma: sigma)
    }

    // MARK: batch entry points

    /// One augmented view of `dataset[indices]`, normalised: [n, C, outH, outW]. Image i of the batch
    /// uses `rng.fork(index: i)`.
    public func view(of dataset: ImageDataset, indices: [Int], normalization: Normalization,
                     rng: SplitMix64) throws -> Tensor {
        let c = dataset.channels, h = dataset.height, w = dataset.width
        try require(indices.allSatisfy { $0 >= 0 && $0 < dataset.count }, "augmentation: index out of range")
        let out = try Tensor(uninitializedShape: [indices.count, c, outputHeight, outputWidth])
        let (mean, invStd) = try Self.normalizationConstants(normalization, channels: c)
        let size = dataset.imageSize
        try dataset.pixels.withUnsafeBufferPointer { px in
            let base = px.baseAddress!
            try parallelForThrowing(indices.count) { i in
                let src = UnsafeMutablePointer<Float>.allocate(capacity: size)
                defer { src.deallocate() }
                let p = base + indices[i] * size
                for k in 0..<size { src[k] = Float(p[k]) * (1 / 255) }
                var r = rng.fork(index: UInt64(i))
                try self.augment(src, channels: c, height: h, width: w, rng: &r,
                                 into: out.data + i * c * self.outputHeight * self.outputWidth,
                                 mean: mean, invStd: invStd)
            }
        }
        return out
    }

    /// One augmented view of float images [n, C, H, W] with values in [0, 1], normalised.
    public func view(of images: Tensor, normalization: Normalization, rng: SplitMix64) throws -> Tensor {
        try requireShape(images.rank == 4 && images.shape[0] > 0, "augmentation expects [N, C, H, W] images, got \(images.shape)")
        let n = images.shape[0], c = images.shape[1], h = images.shape[2], w = images.shape[3]
        let out = try Tensor(uninitializedShape: [n, c, outputHeight, outputWidth])
        let (mean, invStd) = try Self.normalizationConstants(normalization, channels: c)
        let size = c * h * w
        let x = images.data
        try parallelForThrowing(n) { i in
            let src = UnsafeMutablePointer<Float>.allocate(capacity: size)
            defer { src.deallocate() }
            for k in 0..<size { src[k] = Swift.min(Swift.max(x[i * size + k], 0), 1) }
            var r = rng.fork(index: UInt64(i))
            try self.augment(src, channels: c, height: h, width: w, rng: &r,
                             into: out.data + i * c * self.outputHeight * self.outputWidth,
                             mean: mean, invStd: invStd)
        }
        return out
    }

    /// The two views of MoCo: view v ∈ {0, 1} uses `rng.fork(index: v)` as its batch generator.
    public func twoViews(of dataset: ImageDataset, indices: [Int], normalization: Normalization,
                         rng: SplitMix64) throws -> (Tensor, Tensor) {
        (try view(of: dataset, indices: indices, normalization: normalization, rng: rng.fork(index: 0)),
         try view(of: dataset, indices: indices, normalization: normalization, rng: rng.fork(index: 1)))
    }

    static func normalizationConstants(_ n: Normalization, channels c: Int) throws -> ([Float], [Float]) {
        try require(n.mean.count == c || n.mean.count == 1, "normalisation has \(n.mean.count) channels, images have \(c)")
        let mean = (0..<c).map { n.mean.count == 1 ? n.mean[0] : n.mean[$0] }
        let inv = (0..<c).map { 1 / (n.std.count == 1 ? n.std[0] : n.std[$0]) }
        return (mean, inv)
    }

    // MARK: one image

    /// Augments one image `src` [C, H, W] in [0, 1] (overwritten as scratch) into `dst` [C, outH, outW],
    /// then normalises `dst`.
    func augment(_ src: UnsafeMutablePointer<Float>, channels c: Int, height h: Int, width w: Int,
                 rng: inout SplitMix64, into dst: UnsafeMutablePointer<Float>, mean: [Float], invStd: [Float]) throws {
        let p = draw(sourceHeight: h, sourceWidth: w, rng: &rng)
        let oh = outputHeight, ow = outputWidth, plane = oh * ow
        Self.resizedCrop(src, channels: c, height: h, width: w, params: p, into: dst, outHeight: oh, outWidth: ow)
        if c == 3 {
            if let j = p.jitter {
                for step in p.jitterOrder {
                    switch step {
                    case 0: Self.scale(dst, count: 3 * plane, by: Float(j.brightness))
                    case 1: Self.adjustContrast(dst, plane: plane, factor: Float(j.contrast))
                    case 2: Self.adjustSaturation(dst, plane: plane, factor: Float(j.saturation))
                    default: Self.shiftHue(dst, plane: plane, by: Float(j.hue))
                    }
                }
            }
            if p.grayscale { Self.toGray(dst, plane: plane) }
        } else if let j = p.jitter {
            // Brightness and contrast still apply to gray images.
            for step in p.jitterOrder where step < 2 {
                if step == 0 { Self.scale(dst, count: c * plane, by: Float(j.brightness)) }
                else {
                    for ch in 0..<c {
                        let q = dst + ch * plane
                        var s: Float = 0
                        for k in 0..<plane { s += q[k] }
                        let m = s / Float(plane), f = Float(j.contrast)
                        for k in 0..<plane { q[k] = Self.clamp01(f * q[k] + (1 - f) * m) }
                    }
                }
            }
        }
        if let sigma = p.blurSigma { Self.gaussianBlur(dst, channels: c, height: oh, width: ow, sigma: sigma) }
        if p.flip {
            for ch in 0..<c {
                for y in 0..<oh {
                    let row = dst + ch * plane + y * ow
                    var a = 0, b = ow - 1
                    while a < b { let t = row[a]; row[a] = row[b]; row[b] = t; a += 1; b -= 1 }
                }
            }
        }
        for ch in 0..<c {
            let q = dst + ch * plane, m = mean[ch], s = invStd[ch]
            for k in 0..<plane { q[k] = (q[k] - m) * s }
        }
    }

    @inline(__always) static func clamp01(_ x: Float) -> Float { Swift.min(Swift.max(x, 0), 1) }

    /// Bilinear resize of the crop box with half-pixel centres (coordinates below 0 clamp to 0).
    static func resizedCrop(_ src: UnsafePointer<Float>, channels c: Int, height h: Int, width w: Int, params p: Params,
                            into dst: UnsafeMutablePointer<Float>, outHeight oh: Int, outWidth ow: Int) {
        let sy = Double(p.height) / Double(oh), sx = Double(p.width) / Double(ow)
        var x0 = [Int](repeating: 0, count: ow), x1 = x0, wx = [Float](repeating: 0, count: ow)
        for x in 0..<ow {
            let fx = Swift.max((Double(x) + 0.5) * sx - 0.5, 0)
            let i0 = Swift.min(Int(fx), p.width - 1)
            x0[x] = p.left + i0
            x1[x] = p.left + Swift.min(i0 + 1, p.width - 1)
            wx[x] = Float(fx - Double(i0))
        }
        for y in 0..<oh {
            let fy = Swift.max((Double(y) + 0.5) * sy - 0.5, 0)
            let j0 = Swift.min(Int(fy), p.height - 1)
            let r0 = p.top + j0, r1 = p.top + Swift.min(j0 + 1, p.height - 1)
            let wy = Float(fy - Double(j0))
            for ch in 0..<c {
                let a = src + ch * h * w + r0 * w, b = src + ch * h * w + r1 * w
                let o = dst + ch * oh * ow + y * ow
                for x in 0..<ow {
                    let top = a[x0[x]] + (a[x1[x]] - a[x0[x]]) * wx[x]
                    let bot = b[x0[x]] + (b[x1[x]] - b[x0[x]]) * wx[x]
                    o[x] = top + (bot - top) * wy
                }
            }
        }
    }

    static func scale(_ x: UnsafeMutablePointer<Float>, count: Int, by f: Float) {
        for k in 0..<count { x[k] = clamp01(x[k] * f) }
    }

    @inline(__always) static func gray(_ r: Float, _ g: Float, _ b: Float) -> Float {
        0.299 * r + 0.587 * g + 0.114 * b
    }

    static func adjustContrast(_ x: UnsafeMutablePointer<Float>, plane: Int, factor f: Float) {
        var s: Double = 0
        for k in 0..<plane { s += Double(gray(x[k], x[plane + k], x[2 * plane + k])) }
        let m = Float(s / Double(plane))
        for k in 0..<(3 * plane) { x[k] = clamp01(f * x[k] + (1 - f) * m) }
    }

    static func adjustSaturation(_ x: UnsafeMutablePointer<Float>, plane: Int, factor f: Float) {
        for k in 0..<plane {
            let g = gray(x[k], x[plane + k], x[2 * plane + k])
            for ch in 0..<3 { x[ch * plane + k] = clamp01(f * x[ch * plane + k] + (1 - f) * g) }
        }
    }

    static func toGray(_ x: UnsafeMutablePointer<Float>, plane: Int) {
        for k in 0..<plane {
            let g = gray(x[k], x[plane + k], x[2 * plane + k])
            x[k] = g; x[plane + k] = g; x[2 * plane + k] = g
        }
    }

    /// torchvision `adjust_hue`: RGB → HSV, h ← (h + shift) mod 1, HSV → RGB.
    static func shiftHue(_ x: UnsafeMutablePointer<Float>, plane: Int, by shift: Float) {
        for k in 0..<plane {
            let r = x[k], g = x[plane + k], b = x[2 * plane + k]
            let maxc = Swift.max(r, g, b), minc = Swift.min(r, g, b)
            let cr = maxc - minc
            let eq = cr == 0
            let s = eq ? 0 : cr / maxc
            var hue: Float = 0
            if !eq {
                let rc = (maxc - r) / cr, gc = (maxc - g) / cr, bc = (maxc - b) / cr
                if maxc == r { hue = bc - gc } else if maxc == g { hue = 2 + rc - bc } else { hue = 4 + gc - rc }
                hue = hue / 6 + 1
                hue -= hue.rounded(.down)
            }
            var h = hue + shift
            h -= h.rounded(.down)
            let v = maxc
            let h6 = h * 6
            let i = Int(h6.rounded(.down)) % 6
            let f = h6 - h6.rounded(.down)
            let p = clamp01(v * (1 - s)), q = clamp01(v * (1 - s * f)), t = clamp01(v * (1 - s * (1 - f)))
            let rgb: (Float, Float, Float)
            switch i {
            case 0: rgb = (v, t, p)
            case 1: rgb = (q, v, p)
            case 2: rgb = (p, v, t)
            case 3: rgb = (p, q, v)
            case 4: rgb = (t, p, v)
            default: rgb = (v, p, q)
            }
            x[k] = rgb.0; x[plane + k] = rgb.1; x[2 * plane + k] = rgb.2
        }
    }

    /// Separable Gaussian blur, radius ⌈3σ⌉ (capped by the image size), reflected borders.
    static func gaussianBlur(_ x: UnsafeMutablePointer<Float>, channels c: Int, height h: Int, width w: Int, sigma: Double) {
        let radius = Swift.max(1, Swift.min(Int((3 * sigma).rounded(.up)), Swift.min(h, w) - 1))
        guard radius >= 1, h > 1, w > 1 else { return }
        var kernel = (-radius...radius).map { Float(exp(-Double($0 * $0) / (2 * sigma * sigma))) }
        let total = kernel.reduce(0, +)
        kernel = kernel.map { $0 / total }
        @inline(__always) func reflect(_ i: Int, _ n: Int) -> Int {
            var i = i
            while i < 0 || i >= n { i = i < 0 ? -i : 2 * (n - 1) - i }
            return i
        }
        let tmp = UnsafeMutablePointer<Float>.allocate(capacity: h * w)
        defer { tmp.deallocate() }
        for ch in 0..<c {
            let p = x + ch * h * w
            for y in 0..<h {
                for xx in 0..<w {
                    var s: Float = 0
                    for t in -radius...radius { s += kernel[t + radius] * p[y * w + reflect(xx + t, w)] }
                    tmp[y * w + xx] = s
                }
            }
            for y in 0..<h {
                for xx in 0..<w {
                    var s: Float = 0
                    for t in -radius...radius { s += kernel[t + radius] * tmp[reflect(y + t, h) * w + xx] }
                    p[y * w + xx] = s
                }
            }
        }
    }
}

