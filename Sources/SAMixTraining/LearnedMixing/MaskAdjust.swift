import SAMixCore
import SAMixOps
import SAMixNN
import SAMixData
import SAMixMixing

/// Post-processing of the online-branch mask M_bb (docs/method.md §2.4), applied in place to a partner mask
/// M₁ [N, 1, H, W] that carries no gradient (M_bb is detached).
public enum MaskAdjust {
    /// OpenMixup's `mask_adjust`: rescales each sample's mask so that the mean of its own-image
    /// mask M₀ = 1 − M₁ equals λ exactly. With m₀ = clamp(M₀, ε, 1 − ε), μᵢ = mean(m₀ of sample i):
    /// - μᵢ > λ + ε: M₀ = m₀·λ/μᵢ (shrink the own image), M₁ = 1 − M₀;
    /// - μᵢ < λ − ε: M₁ = (1 − m₀)·(1 − λ)/(1 − μᵢ) (shrink the partner), M₀ = 1 − M₁;
    /// - otherwise unchanged. ε = 1e-8 as in the reference.
    ///
    /// λ must be the ratio M_bb was generated with and labelled with (λ_bb). The reference passes
    /// λ_mb here (docs/method.md §9 quirk 1, `lam[0]`); that bug is not reproduced.
    public static func adjustMean(partnerMask m: Tensor, lam: Float, epsilon: Double = 1e-8) throws {
        try requireShape(m.rank >= 1 && m.count > 0 && m.count % m.shape[0] == 0, "mask_adjust: bad mask shape \(m.shape)")
        try require(!m.hasGradFn, "mask_adjust works in place on a detached mask")
        let n = m.shape[0], size = m.count / n, lamD = Double(lam)
        let p = m.data
        for i in 0..<n {
            let row = p + i * size
            var s = 0.0
            for k in 0..<size { s += Swift.min(Swift.max(1 - Double(row[k]), epsilon), 1 - epsilon) }
            let mu = s / Double(size)
            if mu > lamD + epsilon {
                let f = lamD / mu
                for k in 0..<size {
                    let m0 = Swift.min(Swift.max(1 - Double(row[k]), epsilon), 1 - epsilon)
                    row[k] = Float(1 - m0 * f)
                }
            } else if mu < lamD - epsilon {
                let f = (1 - lamD) / (1 - mu)
                for k in 0..<size {
                    let m0 = Swift.min(Swift.max(1 - Double(row[k]), epsilon), 1 - epsilon)
                    row[k] = Float((1 - m0) * f)
                }
            }
        }
    }

    /// OpenMixup's `lam_margin`: when λ ≤ margin or 1 − λ ≤ margin the mask is replaced by the
    /// constant Mixup mask M₁ ≡ 1 − λ ("degenerate to mixup"). Returns whether it did.
    @discardableResult
    public static func applyLambdaMargin(partnerMask m: Tensor, lam: Float, margin: Float) -> Bool {
        guard margin > 0, lam <= margin || 1 - lam <= margin else { return false }
        m.fill(1 - lam)
        return true
    }
}
