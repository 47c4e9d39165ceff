import SAMixCore
import SAMixOps
import SAMixNN
import SAMixData
import SAMixMixing

/// An objective that trains or uses a Mixer (AutoMix, SAMix, SAMix^P). Front ends ask for masks and
/// the Mixer file through this protocol rather than by knowing the concrete objective.
public protocol MixerProviding: TrainingObjective {
    /// Partner masks M₁ [N, 1, H, W] the Mixer makes for `images` [N, C, H, W] with ratio λ and
    /// partners π; no gradients, no change to any running statistics; `seed` drives the Mixer's own
    /// randomness (dropout).
    func mixerMasks(model: ImageClassifier, images: Tensor, lam: Float, permutation: [Int], seed: UInt64) throws -> Tensor
    /// The Mixer with the encoder that feeds it, for SAMix^P (`MixerCheckpoint.save(to:)`).
    func mixerCheckpoint(model: ImageClassifier) throws -> MixerCheckpoint
}

extension LearnedMixObjective: MixerProviding {
    public func mixerMasks(model: ImageClassifier, images: Tensor, lam: Float, permutation: [Int], seed: UInt64) throws -> Tensor {
        try masks(model: model, images: images, lam: lam, permutation: permutation, seed: seed)
    }
    public func mixerCheckpoint(model: ImageClassifier) throws -> MixerCheckpoint { try checkpoint(model: model) }
}

extension PretrainedMixerObjective: MixerProviding {
    public func mixerMasks(model: ImageClassifier, images: Tensor, lam: Float, permutation: [Int], seed: UInt64) throws -> Tensor {
        var rng = SplitMix64(seed: seed)
        return try masks(images: images, lam: lam, permutation: permutation, rng: &rng)
    }
    public func mixerCheckpoint(model: ImageClassifier) throws -> MixerCheckpoint { checkpoint }
}
