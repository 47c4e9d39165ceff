import SAMixCore
import SAMixOps
import SAMixNN
import SAMixData

/// Mixup (Zhang et al., ICLR 2018), as in OpenMixup `augments/mixup.py`:
/// λ ~ Beta(α, α), `x̃ = λ·x + (1 − λ)·x[π]`, targets `λ·y + (1 − λ)·y[π]`.
///
/// Defaults: α = 1 (the value in OpenMixup's CIFAR-10/100 benchmark tables), partner = random
/// permutation, one λ per batch. `perSample = true` draws one λ per sample (timm's `elem` mode).
public struct Mixup: MixPolicy, Sendable {
    /// Beta(α, α) parameter, > 0.
    public var alpha: Double
    /// How partners are chosen.
    public var partner: PartnerMode
    /// One λ per sample instead of one per batch.
    public var perSample: Bool

    public init(alpha: Double = 1.0, partner: PartnerMode = .permutation, perSample: Bool = false) throws {
        try checkAlpha(alpha, "Mixup")
        self.alpha = alpha
        self.partner = partner
        self.perSample = perSample
    }

    public func plan<T: MixElement>(images: UnsafePointer<T>, shape: ImageBatchShape, lambda: Double?,
                                    rng: inout SplitMix64) throws -> MixResult {
        try checkAlpha(alpha, "Mixup")
        try checkLambda(lambda)
        let B = shape.batch
        var lams = [Float](repeating: 0, count: B)
        if perSample {
            for i in 0..<B { lams[i] = Float(lambda ?? rng.beta(alpha, alpha)) }
        } else {
            let l = Float(lambda ?? rng.beta(alpha, alpha))
            for i in 0..<B { lams[i] = l }
        }
        let p = try partner.draw(batch: B, rng: &rng)
        return try makeMixResult(shape: shape, partner: p, ops: lams.map { SampleMix.blend($0) })
    }
}
