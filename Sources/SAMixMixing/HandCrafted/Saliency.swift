import SAMixCore
import SAMixOps
import SAMixNN
import SAMixData

/// Static image saliency used by SaliencyMix.
///
/// OpenMixup calls OpenCV's `StaticSaliencyFineGrained` (Montabone & Soto 2010: centre–surround
/// differences of intensity over several scales, computed with integral images). samix implements a
/// simplified version of that idea in Swift:
///  1. intensity = mean over channels;
///  2. for each scale r ∈ {1, 2, 4, 8, …} with r < max(2, min(H, W)/2): surround = mean intensity of the
///     (2r + 1)² window around the pixel, clipped at the borders (integral image, O(1) per pixel);
///  3. saliency = Σ_r (on-centre + off-centre) = Σ_r |centre − surround|.
/// The map is scaled to [0, 255] and truncated to integers before the arg-max, as OpenMixup converts the
/// saliency map to uint8; the arg-max takes the first maximum in row-major order (NumPy `argmax`), so a
/// constant image gives (0, 0).
public enum Saliency {
    /// Fine-grained centre–surround saliency of one image (intensity map H×W in, saliency H×W out).
    public static func fineGrained(intensity: [Float], height H: Int, width W: Int) throws -> [Float] {
        try requireShape(H >= 1 && W >= 1 && intensity.count == H * W, "saliency: intensity must have H·W values")
        // Integral image (H+1)×(W+1) in Double.
        let W1 = W + 1
        var integ = [Double](repeating: 0, count: (H + 1) * W1)
        for y in 0..<H {
            var row = 0.0
            for x in 0..<W {
                row += Double(intensity[y * W + x])
                integ[(y + 1) * W1 + x + 1] = integ[y * W1 + x + 1] + row
            }
        }
        var scales: [Int] = []
        var r = 1
        let limit = max(2, min(H, W) / 2)
        while r < limit { scales.append(r); r *= 2 }
        if scales.isEmpty { scales = [1] }
        var sal = [Float](repeating: 0, count: H * W)
        for y in 0..<H {
            for x in 0..<W {
                let c = Double(intensity[y * W + x])
                var acc = 0.0
                for r in scales {
                    let y0 = max(y - r, 0), y1 = min(y + r + 1, H)
                    let x0 = max(x - r, 0), x1 = min(x + r + 1, W)
                    let sum = integ[y1 * W1 + x1] - integ[y0 * W1 + x1] - integ[y1 * W1 + x0] + integ[y0 * W1 + x0]
                    let mean = sum / Double((y1 - y0) * (x1 - x0))
                    acc += abs(c - mean)
                }
                sal[y * W + x] = Float(acc)
            }
        }
        return sal
    }

    /// Intensity (channel mean) of image `index` of a batch.
    static func intensity<T: MixElement>(_ images: UnsafePointer<T>, shape: ImageBatchShape, index: Int) -> [Float] {
        let H = shape.height, W = shape.width, C = shape.channels, hw = H * W
        let img = images + index * shape.imageElements
        var out = [Float](repeating: 0, count: hw)
        let inv = 1 / Float(C)
        switch shape.layout {
        case .nchw:
            for c in 0..<C { for k in 0..<hw { out[k] += img[c * hw + k].mixFloatValue } }
        case .nhwc:
            for k in 0..<hw { var s: Float = 0; for c in 0..<C { s += img[k * C + c].mixFloatValue }; out[k] = s }
        }
        for k in 0..<hw { out[k] *= inv }
        return out
    }

    /// Row and column of the most salient pixel of image `index` (after uint8 quantisation of the map).
    public static func peak<T: MixElement>(_ images: UnsafePointer<T>, shape: ImageBatchShape, index: Int) throws -> (y: Int, x: Int) {
        try require(index >= 0 && index < shape.batch, "saliency: image index \(index) out of range")
        let sal = try fineGrained(intensity: intensity(images, shape: shape, index: index), height: shape.height, width: shape.width)
        let mx = sal.max() ?? 0
        guard mx > 0, mx.isFinite else { return (0, 0) }
        var best = -1, bestK = 0
        for (k, v) in sal.enumerated() {
            let q = Int(min(max(v / mx, 0), 1) * 255)
            if q > best { best = q; bestK = k }
        }
        return (bestK / shape.width, bestK % shape.width)
    }
}

/// SaliencyMix (Uddin et al., ICLR 2021), as in OpenMixup `augments/saliencymix.py`.
///
/// λ ~ Beta(α, α); box sides as CutMix (`int(H·√(1−λ))` × `int(W·√(1−λ))`); the box is centred on the
/// most salient pixel (`Saliency.peak`) of the partner image x[π(0)] — one box for the whole batch, as in
/// OpenMixup — with CutMix's corner rule (clipped); the partner's pixels are pasted at the same location.
/// λ (realised and label) = 1 − clipped box area/(H·W).
///
/// `perSample = true` draws λ per sample and centres each sample's box on the peak of its own partner
/// x[π(i)]. Defaults: α = 0.2 (OpenMixup CIFAR), random permutation, one box per batch.
public struct SaliencyMix: MixPolicy, Sendable {
    public var alpha: Double
    public var partner: PartnerMode
    public var perSample: Bool

    public init(alpha: Double = 0.2, partner: PartnerMode = .permutation, perSample: Bool = false) throws {
        try checkAlpha(alpha, "SaliencyMix")
        self.alpha = alpha
        self.partner = partner
        self.perSample = perSample
    }

    /// The saliency map is computed from the pixels.
    public var readsPixels: Bool { true }

    public func plan<T: MixElement>(images: UnsafePointer<T>, shape: ImageBatchShape, lambda: Double?,
                                    rng: inout SplitMix64) throws -> MixResult {
        try checkAlpha(alpha, "SaliencyMix")
        try checkLambda(lambda)
        let B = shape.batch, H = shape.height, W = shape.width
        var lams = [Double]()
        for _ in 0..<(perSample ? B : 1) { lams.append(lambda ?? rng.beta(alpha, alpha)) }
        let p = try partner.draw(batch: B, rng: &rng)
        var ops = [SampleMix](repeating: .keep, count: B)
        for i in 0..<(perSample ? B : 1) {
            let ratio = max(0, 1 - lams[i]).squareRoot()
            let cutH = Int(Double(H) * ratio), cutW = Int(Double(W) * ratio)
            let (cy, cx) = try Saliency.peak(images, shape: shape, index: p[i])
            ops[i] = .box(MixBox.centered(cy: cy, cx: cx, cutH: cutH, cutW: cutW, height: H, width: W))
        }
        if !perSample { for i in 1..<max(B, 1) { ops[i] = ops[0] } }
        return try makeMixResult(shape: shape, partner: p, ops: ops)
    }
}
