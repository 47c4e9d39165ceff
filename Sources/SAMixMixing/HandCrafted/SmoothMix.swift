import Glibc
import SAMixCore
import SAMixOps
import SAMixNN
import SAMixData

/// SmoothMix (Lee et al., CVPRW 2020), as in OpenMixup `augments/smoothmix.py`.
///
/// A Gaussian partner-weight mask `M(y, x) = exp(−((y − cy)² + (x − cx)²) / (2σ²))` with
/// σ = U(0.25, 0.5)·H and centre `c = (size − 1)/2 + r`, `r = trunc(randint(0, size) − size/2)` per axis
/// (OpenMixup's rolled 2H×2H grid, centre-cropped, reduces to exactly this for square images; here the
/// formula is used directly, which also covers H ≠ W); `x̃ = (1 − M)·x + M·x[π]`.
///
/// λ: the realised weight of the original, `λ = 1 − mean(M)`, is used for the labels by default — the
/// correct assignment. OpenMixup returns `mean(M)` — the PARTNER's share — as the weight of y_a, i.e. the
/// labels are swapped relative to the pixels (docs/method.md §9 quirk 5); `legacyLabelSwap = true` reproduces that
/// (the OpenMixup docs numbers were produced with it). SmoothMix has no λ parameter: OpenMixup draws
/// λ ~ Beta(α, α) and ignores it, so this type has no α, and a fixed `lambda` passed to `plan`/`mix` is
/// an error (it could not be honoured: the mask's size comes from σ, not from λ).
///
/// Defaults: random permutation, one mask per batch (`perSample = true`: one mask per sample).
public struct SmoothMix: MixPolicy, Sendable {
    public var partner: PartnerMode
    public var perSample: Bool
    /// Reproduce OpenMixup's label inversion (label weight of y_i = mean(M) instead of 1 − mean(M)).
    public var legacyLabelSwap: Bool
    /// σ is drawn uniformly from `sigmaRange × H`; OpenMixup uses [0.25, 0.5).
    public var sigmaRange: (Double, Double)

    public init(partner: PartnerMode = .permutation, perSample: Bool = false, legacyLabelSwap: Bool = false,
                sigmaRange: (Double, Double) = (0.25, 0.5)) throws {
        try require(sigmaRange.0 > 0 && sigmaRange.0 <= sigmaRange.1 && sigmaRange.1.isFinite,
                    "SmoothMix: σ range must satisfy 0 < lo ≤ hi, got \(sigmaRange)")
        self.partner = partner
        self.perSample = perSample
        self.legacyLabelSwap = legacyLabelSwap
        self.sigmaRange = sigmaRange
    }

    /// Writes one Gaussian mask (H×W) into `out` using three draws from `rng`.
    static func gaussianMask(height H: Int, width W: Int, sigmaRange: (Double, Double), rng: inout SplitMix64,
                             into out: UnsafeMutablePointer<Float>) {
        let rw = Int(Double(rng.int(below: W)) - Double(W) / 2)   // trunc toward 0, as Python int()
        let rh = Int(Double(rng.int(below: H)) - Double(H) / 2)
        let sigma = uniform(sigmaRange.0, sigmaRange.1, &rng) * Double(H)
        let cy = Double(H - 1) / 2 + Double(rh), cx = Double(W - 1) / 2 + Double(rw)
        let inv = 1.0 / (2 * sigma * sigma)
        var gx = [Double](repeating: 0, count: W)
        for x in 0..<W { let d = Double(x) - cx; gx[x] = exp(-d * d * inv) }
        for y in 0..<H {
            let d = Double(y) - cy
            let gy = exp(-d * d * inv)
            for x in 0..<W { out[y * W + x] = Float(gy * gx[x]) }
        }
    }

    public func plan<T: MixElement>(images: UnsafePointer<T>, shape: ImageBatchShape, lambda: Double?,
                                    rng: inout SplitMix64) throws -> MixResult {
        if let lambda {
            throw SAMixError.invalidArgument("SmoothMix cannot use a fixed λ (\(lambda)): its mask is a Gaussian blob whose "
                + "width is drawn from sigma_range, and λ is the realised mask fraction; leave λ unset")
        }
        let B = shape.batch, H = shape.height, W = shape.width, hw = H * W
        let count = perSample ? B : 1
        var masks = [Float](repeating: 0, count: count * hw)
        masks.withUnsafeMutableBufferPointer { mb in
            guard let base = mb.baseAddress else { return }
            for k in 0..<count {
                SmoothMix.gaussianMask(height: H, width: W, sigmaRange: sigmaRange, rng: &rng, into: base + k * hw)
            }
        }
        let p = try partner.draw(batch: B, rng: &rng)
        let ops = (0..<B).map { SampleMix.mask(perSample ? $0 : 0) }
        var r = try makeMixResult(shape: shape, partner: p, ops: ops, masks: masks)
        if legacyLabelSwap { r.labelLambda = r.lambda.map { 1 - $0 } }
        return r
    }
}
