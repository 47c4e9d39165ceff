import Glibc
import SAMixCore
import SAMixOps
import SAMixNN
import SAMixData
import SAMixMixing

/// Training with PuzzleMix: saliency from an eval-mode forward/backward of the model being trained,
/// then `PuzzleMix.mix`, then `loss` on the mixed batch (train mode) with per-sample λᵢ = mask mean.
/// OpenMixup CIFAR defaults: α = 1, block_num = 5, β = 1.2, γ = 0.5, η = 0.2, neigh_size = 4,
/// n_labels = 3, t_eps = 0.8, t_size = 4.
public final class PuzzleMixObjective: TrainingObjective {
    public let policy: PuzzleMix
    public let mixLoss: MixupLoss
    public var name: String { "puzzlemix" }

    public init(config: PuzzleMixConfig = PuzzleMixConfig(), loss: MixupLoss = .mixupCE) throws {
        try loss.validate()
        policy = try PuzzleMix(config: config)
        mixLoss = loss
    }

    public func loss(model: ImageClassifier, batch: Batch, context: inout StepContext) throws -> Tensor {
        _ = try ModelMixing.checkBatch(batch, name)
        let s = try PuzzleMix.saliency(model: model, images: batch.images, labels: batch.labels)
        let r = try policy.mix(images: batch.images, saliency: s, rng: &context.rng)
        context.metrics += [("lambda", Double(r.lambda.reduce(0, +)) / Double(r.lambda.count)),
                            ("blocks", Double(r.blockNum))]
        return try mixLoss(logits: try model(r.mixed), labelsA: batch.labels,
                           labelsB: r.partner.map { batch.labels[$0] }, lam: r.lambda)
    }
}
