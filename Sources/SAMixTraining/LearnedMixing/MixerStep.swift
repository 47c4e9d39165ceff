import SAMixCore
import SAMixOps
import SAMixNN
import SAMixData
import SAMixMixing

/// The Mixer's share of one AutoMix / SAMix step — the same in supervised training
/// (`LearnedMixObjective`) and self-supervised training (`MoCo`, docs/method.md §2.2 and §5.2):
///
/// - two independent draws: λ_mb, λ_bb ~ Beta(α, α), then π_mb, π_bb (`_mb` trains the Mixer, `_bb`
///   the backbone);
/// - the Mixer-branch partner mask M_mb = `masks(λ_mb, π_mb)`, recorded for autodiff (the Mixer
///   learns through it);
/// - the backbone-branch partner mask M_bb = `masks(λ_bb, π_bb)` without a graph (callers adjust it
///   in place: mask_adjust / λ margin for supervised training, §2.4; `SSLMixing.adjust` for SSL, §5.3);
/// - the mask regulariser `weight · maskLoss(M_mb, λ_mb)` (§3.7).
///
/// Masks are partner masks [N, 1, H, W] (weight of x[π]); what the images are and how they mix (one
/// view, or two cross-view halves) stays with the caller.
struct MixerStep {
    let lamMB: Float, lamBB: Float
    let permMB: [Int], permBB: [Int]
    /// M_mb [N, 1, H, W], differentiable in the Mixer's parameters.
    let maskMB: Tensor
    /// M_bb [N, 1, H, W], a constant its owner may change in place.
    let maskBB: Tensor
    /// `maskLossWeight · maskLoss(M_mb, λ_mb)`.
    let lossMask: Tensor

    /// `derange`: partners by `PartnerMode.derangement` (π(i) ≠ i); `masks(λ, π, rng)` runs the Mixer
    /// on the step's features. `groups` > 1: pairs stay inside G equal contiguous groups of the batch,
    /// every group with the same permutation of n/G, and the mask loss is the mean over groups — what
    /// G data-parallel ranks do with their shards (`Trainer.pairingGroups`).
    init(batch n: Int, alpha: Double, derange: Bool, maskLoss: MaskLoss, maskLossWeight: Float, groups: Int = 1,
         rng: inout SplitMix64, masks: (Float, [Int], inout SplitMix64) throws -> Tensor) throws {
        try require(groups >= 1 && n % groups == 0, "\(groups) pairing groups do not divide a batch of \(n)")
        lamMB = Float(rng.beta(alpha, alpha))
        lamBB = Float(rng.beta(alpha, alpha))
        permMB = LearnedMixing.permutation(n, groups: groups, withoutFixedPoints: derange, rng: &rng)
        permBB = LearnedMixing.permutation(n, groups: groups, withoutFixedPoints: derange, rng: &rng)
        maskMB = try masks(lamMB, permMB, &rng)
        let (lam, perm) = (lamBB, permBB)
        maskBB = try GradMode.withDisabled { try masks(lam, perm, &rng) }
        lossMask = try maskLoss(partnerMask: maskMB, lam: lamMB, batchGroups: groups) * maskLossWeight
    }

    /// λ of both branches and M_mb's statistics: the own-image share (1 − mean M_mb) and the mean
    /// per-sample spatial std (0 for a constant Mixup-like mask, 0.5 for a binary half/half mask).
    var metrics: [(String, Double)] {
        let own = 1 - Double(ReduceKernels.parallelSum(maskMB.data, maskMB.count)) / Double(maskMB.count)
        return [("lambda_mb", Double(lamMB)), ("lambda_bb", Double(lamBB)),
                ("mask_mean_mb", own), ("mask_std_mb", LearnedMixing.meanSpatialStd(maskMB))]
    }
}
