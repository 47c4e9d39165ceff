import SAMixCore
import SAMixOps
import SAMixNN
import SAMixData

/// CutMix (Yun et al., ICCV 2019).
///
/// Box rule (identical in OpenMixup `augments/cutmix.py` and timm `rand_bbox`): λ ~ Beta(α, α); the cut
/// side is `int(H·√(1−λ))` × `int(W·√(1−λ))`; the centre (cy, cx) is uniform over the pixel grid; corners
/// are `c ∓ ⌊cut/2⌋` clipped to the image, so a box near a border is smaller than asked. The partner's
/// pixels replace the original inside the box.
///
/// timm's `cutmix_minmax = (lo, hi)` (`minMax`) instead draws the box sides uniformly from
/// `[int(lo·H), int(hi·H))` × `[int(lo·W), int(hi·W))` and a top-left corner such that the box lies
/// inside the image; λ is then always the box fraction.
///
/// Label λ: with `correctLambda = true` (OpenMixup always, timm's default `correct_lam`) the label weight
/// is the realised `1 − area/(H·W)` after clipping; with `false` it is the sampled λ while the reported
/// realised λ (`MixResult.lambda`) is still the area fraction.
///
/// Defaults: α = 0.2 (OpenMixup's CIFAR-10/100 value), one box per batch (`perSample = true`: one
/// λ and box per sample), and partners by `PartnerMode.derangement`: OpenMixup's `cutmix` draws
/// `_no_repeat_shuffle_idx` (a randperm re-drawn up to 10 times while it pairs a sample with itself),
/// so a sample is (almost) never pasted onto itself — a self-pair would be a no-op mix labelled as one.
public struct CutMix: MixPolicy, Sendable {
    public var alpha: Double
    /// timm `cutmix_minmax` (fractions of the image side, 0 ≤ lo < hi ≤ 1), or nil for the λ rule.
    public var minMax: (Double, Double)?
    public var correctLambda: Bool
    public var partner: PartnerMode
    public var perSample: Bool

    public init(alpha: Double = 0.2, minMax: (Double, Double)? = nil, correctLambda: Bool = true,
                partner: PartnerMode = .derangement, perSample: Bool = false) throws {
        try checkAlpha(alpha, "CutMix")
        if let mm = minMax { try CutMix.checkMinMax(mm) }
        self.alpha = alpha
        self.minMax = minMax
        self.correctLambda = correctLambda
        self.partner = partner
        self.perSample = perSample
    }

    static func checkMinMax(_ mm: (Double, Double)) throws {
        try require(mm.0 >= 0 && mm.1 <= 1 && mm.0 < mm.1, "cutmix minmax must satisfy 0 ≤ lo < hi ≤ 1, got \(mm)")
    }

    /// Draws one CutMix box for λ (ignored when `minMax` is set), with the rule described on the type.
    public static func sampleBox(lambda: Double, height H: Int, width W: Int, minMax: (Double, Double)?,
                                 rng: inout SplitMix64) -> MixBox {
        if let (lo, hi) = minMax {
            let cutH = min(randint(Int(Double(H) * lo), Int(Double(H) * hi), &rng), H)
            let cutW = min(randint(Int(Double(W) * lo), Int(Double(W) * hi), &rng), W)
            let y0 = randint(0, H - cutH, &rng)
            let x0 = randint(0, W - cutW, &rng)
            return MixBox(y0: y0, y1: y0 + cutH, x0: x0, x1: x0 + cutW)
        }
        let ratio = max(0, 1 - lambda).squareRoot()
        let cutH = Int(Double(H) * ratio), cutW = Int(Double(W) * ratio)
        let cy = rng.int(below: H)
        let cx = rng.int(below: W)
        return MixBox.centered(cy: cy, cx: cx, cutH: cutH, cutW: cutW, height: H, width: W)
    }

    public func plan<T: MixElement>(images: UnsafePointer<T>, shape: ImageBatchShape, lambda: Double?,
                                    rng: inout SplitMix64) throws -> MixResult {
        try checkAlpha(alpha, "CutMix")
        try checkLambda(lambda)
        if let mm = minMax { try CutMix.checkMinMax(mm) }
        let B = shape.batch, H = shape.height, W = shape.width
        var ops = [SampleMix](repeating: .keep, count: B)
        var sampled = [Float](repeating: 1, count: B)
        let draws = perSample ? B : 1
        for i in 0..<draws {
            let l = lambda ?? rng.beta(alpha, alpha)
            let box = CutMix.sampleBox(lambda: l, height: H, width: W, minMax: minMax, rng: &rng)
            ops[i] = .box(box)
            sampled[i] = Float(l)
        }
        if !perSample { for i in 1..<max(B, 1) { ops[i] = ops[0]; sampled[i] = sampled[0] } }
        let p = try partner.draw(batch: B, rng: &rng)
        let label: [Float]? = (correctLambda || minMax != nil) ? nil : sampled
        return try makeMixResult(shape: shape, partner: p, ops: ops, labelLambda: label)
    }
}
