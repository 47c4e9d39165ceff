import SAMixCore
import SAMixOps
import SAMixNN
import SAMixData

/// GridMix (Baek et al., Pattern Recognition 2021), as in OpenMixup `augments/gridmix.py`.
///
/// λ ~ Beta(α, α); per batch draw `n_holes ∈ nHoles` (inclusive), hole aspect, cut-area ratio and cut
/// aspect uniformly from their ranges. A cut rectangle of `int(H·W·area)` pixels (`cut_w =
/// int(√(area/aspect))`, `cut_h = int(cut_w·aspect)`) is placed at a uniform position; it is tiled into
/// `n_holes` columns of width `pw = ⌈cut_w/n_holes⌉` and rows of height `ph = int(pw·hole_aspect)`; each
/// tile gets a hole of `clamp(int(p·√(1−λ)), 1, p − 1)` pixels per side at its top-left corner; the holes
/// take the partner's pixels. λ (realised and label) = 1 − hole fraction, so λ only roughly follows the
/// Beta draw (holes are at least one pixel, even for λ = 1).
///
/// Deviations from OpenMixup, which fails on such inputs: the cut rectangle is clamped to the image
/// (aspect 2 at area ratio 1 would exceed it), and `n_holes` is clamped to `[1, max(1, cut_w/2)]` instead
/// of asserting. Defaults: α = 0.2 and the CIFAR config `n_holes ∈ [2, 6]`, `cut_area_ratio ∈ U(0.5, 1)`,
/// `cut_aspect_ratio ∈ U(0.5, 2)`, `hole_aspect_ratio = 1`; random permutation; one mask per batch
/// (`perSample = true`: one per sample).
public struct GridMix: MixPolicy, Sendable {
    public var alpha: Double
    public var nHoles: ClosedRange<Int>
    public var holeAspectRatio: ClosedRange<Double>
    public var cutAreaRatio: ClosedRange<Double>
    public var cutAspectRatio: ClosedRange<Double>
    public var partner: PartnerMode
    public var perSample: Bool

    public init(alpha: Double = 0.2, nHoles: ClosedRange<Int> = 2...6, holeAspectRatio: ClosedRange<Double> = 1...1,
                cutAreaRatio: ClosedRange<Double> = 0.5...1, cutAspectRatio: ClosedRange<Double> = 0.5...2,
                partner: PartnerMode = .permutation, perSample: Bool = false) throws {
        try checkAlpha(alpha, "GridMix")
        try require(nHoles.lowerBound >= 1, "GridMix: n_holes must be ≥ 1")
        try require(holeAspectRatio.lowerBound > 0 && holeAspectRatio.upperBound.isFinite, "GridMix: hole aspect ratio must be > 0")
        try require(cutAreaRatio.lowerBound > 0 && cutAreaRatio.upperBound <= 1, "GridMix: cut area ratio must be in (0, 1]")
        try require(cutAspectRatio.lowerBound > 0 && cutAspectRatio.upperBound.isFinite, "GridMix: cut aspect ratio must be > 0")
        self.alpha = alpha
        self.nHoles = nHoles
        self.holeAspectRatio = holeAspectRatio
        self.cutAreaRatio = cutAreaRatio
        self.cutAspectRatio = cutAspectRatio
        self.partner = partner
        self.perSample = perSample
    }

    /// Draws one grid mask (partner weight, 0/1) into `out` (H×W, zero-initialised).
    func gridMask(lambda: Double, height H: Int, width W: Int, rng: inout SplitMix64, into out: UnsafeMutablePointer<Float>) {
        var holes = nHoles.lowerBound + rng.int(below: nHoles.upperBound - nHoles.lowerBound + 1)
        let holeAspect = uniform(holeAspectRatio.lowerBound, holeAspectRatio.upperBound, &rng)
        let areaRatio = uniform(cutAreaRatio.lowerBound, cutAreaRatio.upperBound, &rng)
        let cutAspect = uniform(cutAspectRatio.lowerBound, cutAspectRatio.upperBound, &rng)
        let cutArea = Int(Double(H * W) * areaRatio)
        let cutW = min(max(Int((Double(cutArea) / cutAspect).squareRoot()), 1), W)
        let cutH = min(max(Int(Double(cutW) * cutAspect), 1), H)
        let xc1 = Int(Double(W - cutW) * rng.uniformDouble())
        let yc1 = Int(Double(H - cutH) * rng.uniformDouble())
        holes = min(max(holes, 1), max(1, cutW / 2))
        let pw = (cutW + holes - 1) / holes
        let ph = max(1, Int(Double(pw) * holeAspect))
        let ny = (cutH + ph - 1) / ph
        let ratio = max(0, 1 - lambda).squareRoot()
        let hw = min(max(Int(Double(pw) * ratio), 1), pw - 1)
        let hh = min(max(Int(Double(ph) * ratio), 1), ph - 1)
        if hw <= 0 || hh <= 0 { return }
        for i in 0...holes {
            for j in 0...ny {
                let x1 = min(pw * i, cutW), y1 = min(ph * j, cutH)
                let x2 = min(x1 + hw, cutW), y2 = min(y1 + hh, cutH)
                if x2 <= x1 || y2 <= y1 { continue }
                for y in (yc1 + y1)..<(yc1 + y2) {
                    for x in (xc1 + x1)..<(xc1 + x2) { out[y * W + x] = 1 }
                }
            }
        }
    }

    public func plan<T: MixElement>(images: UnsafePointer<T>, shape: ImageBatchShape, lambda: Double?,
                                    rng: inout SplitMix64) throws -> MixResult {
        try checkAlpha(alpha, "GridMix")
        try checkLambda(lambda)
        let B = shape.batch, H = shape.height, W = shape.width, hw = H * W
        let count = perSample ? B : 1
        var masks = [Float](repeating: 0, count: count * hw)
        masks.withUnsafeMutableBufferPointer { mb in
            guard let base = mb.baseAddress else { return }
            for k in 0..<count {
                let l = lambda ?? rng.beta(alpha, alpha)
                gridMask(lambda: l, height: H, width: W, rng: &rng, into: base + k * hw)
            }
        }
        let p = try partner.draw(batch: B, rng: &rng)
        return try makeMixResult(shape: shape, partner: p, ops: (0..<B).map { SampleMix.mask(perSample ? $0 : 0) },
                                 masks: masks)
    }
}
