import Glibc
import SAMixCore
import SAMixOps
import SAMixNN
import SAMixData

/// FMix (Harris et al., 2020), as in OpenMixup `augments/fmix.py` (from ecs-vlc/FMix).
///
/// λ ~ Beta(α, α) (`reformulate`: Beta(α + 1, α)). A low-frequency image is sampled in Fourier space:
/// complex Gaussian coefficients on the rfft grid (H × (W/2 + 1)) scaled by `1 / max(f, 1/max(H, W))^d`
/// (f = √(fx² + fy²) with NumPy's `fftfreq` bins, d = `decayPower` = 3), then an inverse real 2-D DFT
/// (inverse complex DFT along H, then Hermitian real inverse along W; DC and Nyquist imaginary parts are
/// ignored as in `numpy.fft.irfftn`). The top `⌈λ·HW⌉` or `⌊λ·HW⌋` pixels (fair coin) become 1 in the
/// mask of the ORIGINAL; with `maxSoft > 0` a linear ramp of `int(HW·soft)` pixels either side of the
/// threshold smooths the edge. `x̃ = mask·x + (1 − mask)·x[π]`; samix stores the partner weight
/// `M = 1 − mask` in `MixResult.masks`.
///
/// The inverse DFT is computed directly from twiddle tables, O(H·W·(H + W)/2): ≈ 35k complex
/// multiply-adds for a 32×32 mask (tens of µs), ≈ 11M for 224×224 (tens of ms).
///
/// Label λ: `.realised` (default) uses the mask mean (differs from the draw by < 1/(HW) without soft
/// edges); `.sampled` uses the Beta draw as OpenMixup does. A fixed `lambda` binarises at exactly that λ.
/// Defaults: α = 0.2 (OpenMixup CIFAR), decay 3, `maxSoft = 0`, derangement partners (OpenMixup's
/// no-repeat shuffle), one mask per batch (`perSample = true`: one λ and mask per sample).
public struct FMix: MixPolicy, Sendable {
    public enum LabelLambda: Sendable { case realised, sampled }

    public var alpha: Double
    public var decayPower: Double
    public var maxSoft: Double
    public var reformulate: Bool
    public var labelLambda: LabelLambda
    public var partner: PartnerMode
    public var perSample: Bool

    public init(alpha: Double = 0.2, decayPower: Double = 3, maxSoft: Double = 0, reformulate: Bool = false,
                labelLambda: LabelLambda = .realised, partner: PartnerMode = .derangement, perSample: Bool = false) throws {
        try checkAlpha(alpha, "FMix")
        try require(decayPower >= 0 && decayPower.isFinite, "FMix: decay power must be finite and ≥ 0")
        try require(maxSoft >= 0 && maxSoft <= 0.5, "FMix: max_soft must be in [0, 0.5]")
        self.alpha = alpha
        self.decayPower = decayPower
        self.maxSoft = maxSoft
        self.reformulate = reformulate
        self.labelLambda = labelLambda
        self.partner = partner
        self.perSample = perSample
    }

    /// A low-frequency real image H×W (row-major), unnormalised (binarisation only uses its ranking).
    public static func lowFrequencyImage(height H: Int, width W: Int, decayPower: Double,
                                         rng: inout SplitMix64) -> [Float] {
        let WF = W / 2 + 1
        // Spectrum, drawn in NumPy's order: for each (row, col): real part, imaginary part.
        var sr = [Double](repeating: 0, count: H * WF), si = sr
        let floorF = 1.0 / Double(max(H, W))
        for i in 0..<H {
            let fy = Double(i < (H + 1) / 2 ? i : i - H) / Double(H)
            for k in 0..<WF {
                let fx = Double(k) / Double(W)
                let f = max((fx * fx + fy * fy).squareRoot(), floorF)
                let scale = 1.0 / pow(f, decayPower)
                sr[i * WF + k] = rng.normal() * scale
                si[i * WF + k] = rng.normal() * scale
            }
        }
        // Inverse complex DFT along H: Y[n,k] = Σ_i X[i,k]·e^{+2πi·i·n/H}.
        var ch = [Double](repeating: 0, count: H), sh = ch
        for j in 0..<H { let a = 2 * Double.pi * Double(j) / Double(H); ch[j] = cos(a); sh[j] = sin(a) }
        var yr = [Double](repeating: 0, count: H * WF), yi = yr
        for n in 0..<H {
            for i in 0..<H {
                let t = (i * n) % H
                let c = ch[t], s = sh[t]
                let xo = i * WF, yo = n * WF
                for k in 0..<WF {
                    let ar = sr[xo + k], ai = si[xo + k]
                    yr[yo + k] += ar * c - ai * s
                    yi[yo + k] += ar * s + ai * c
                }
            }
        }
        // Hermitian real inverse along W: x[n,m] = Σ_k w_k·Re(Y[n,k]·e^{2πi·k·m/W}), w = 1 for DC and
        // (even W) Nyquist, 2 otherwise; Re(·) drops their imaginary parts as irfft does.
        var cw = [Double](repeating: 0, count: W), sw = cw
        for j in 0..<W { let a = 2 * Double.pi * Double(j) / Double(W); cw[j] = cos(a); sw[j] = sin(a) }
        var out = [Float](repeating: 0, count: H * W)
        for n in 0..<H {
            for m in 0..<W {
                var acc = 0.0
                var t = 0   // (k·m) mod W, updated incrementally (no division in the inner loop)
                for k in 0..<WF {
                    let wgt: Double = (k == 0 || (W % 2 == 0 && k == W / 2)) ? 1 : 2
                    acc += wgt * (yr[n * WF + k] * cw[t] - yi[n * WF + k] * sw[t])
                    t += m
                    if t >= W { t -= W }
                }
                out[n * W + m] = Float(acc / Double(H * W))
            }
        }
        return out
    }

    /// Binarises a low-frequency image: the top `num` pixels (num = ⌈λ·N⌉ or ⌊λ·N⌋ by a coin flip drawn
    /// from `rng`) get 1, with an optional soft ramp (FMix `binarise_mask`). Returns the ORIGINAL's mask.
    public static func binarise(_ image: [Float], lambda: Double, maxSoft: Double, rng: inout SplitMix64) -> [Float] {
        let N = image.count
        // Descending by value; ties broken by index so the order is deterministic.
        let idx = (0..<N).sorted { image[$0] != image[$1] ? image[$0] > image[$1] : $0 < $1 }
        let x = lambda * Double(N)
        let num = rng.uniformDouble() > 0.5 ? Int(x.rounded(.up)) : Int(x.rounded(.down))
        var effSoft = maxSoft
        if maxSoft > lambda || maxSoft > 1 - lambda { effSoft = min(lambda, 1 - lambda) }
        let soft = Int(Double(N) * effSoft)
        let lo = min(max(num - soft, 0), N), hi = min(max(num + soft, 0), N)
        var mask = [Float](repeating: 0, count: N)
        for r in 0..<lo { mask[idx[r]] = 1 }
        let span = hi - lo
        if span > 0 {
            // np.linspace(1, 0, span)
            for r in 0..<span {
                let v = span == 1 ? 1.0 : 1.0 - Double(r) / Double(span - 1)
                mask[idx[lo + r]] = Float(v)
            }
        }
        return mask
    }

    public func plan<T: MixElement>(images: UnsafePointer<T>, shape: ImageBatchShape, lambda: Double?,
                                    rng: inout SplitMix64) throws -> MixResult {
        try checkAlpha(alpha, "FMix")
        try checkLambda(lambda)
        let B = shape.batch, H = shape.height, W = shape.width
        let count = perSample ? B : 1
        var masks = [Float]()
        masks.reserveCapacity(count * H * W)
        var sampled = [Float]()
        for _ in 0..<count {
            let l = lambda ?? (reformulate ? rng.beta(alpha + 1, alpha) : rng.beta(alpha, alpha))
            let low = FMix.lowFrequencyImage(height: H, width: W, decayPower: decayPower, rng: &rng)
            let keep = FMix.binarise(low, lambda: l, maxSoft: maxSoft, rng: &rng)
            masks.append(contentsOf: keep.map { 1 - $0 })
            sampled.append(Float(l))
        }
        let p = try partner.draw(batch: B, rng: &rng)
        let ops = (0..<B).map { SampleMix.mask(perSample ? $0 : 0) }
        let label: [Float]? = labelLambda == .sampled ? (0..<B).map { sampled[perSample ? $0 : 0] } : nil
        return try makeMixResult(shape: shape, partner: p, ops: ops, masks: masks, labelLambda: label)
    }
}
