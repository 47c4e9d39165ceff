import SAMixCore
import SAMixOps
import SAMixNN
import SAMixData
import SAMixMixing

/// Training with AttentiveMix: the attention comes from `attentionModel` if given (a frozen classifier
/// with the same input channels; never trained here) or from the model being trained (eval mode, no
/// gradients); the loss is `loss` with λᵢ = mean(maskᵢ). OpenMixup CIFAR defaults: α = 2, top_k = nil.
public final class AttentiveMixObjective: TrainingObjective {
    public let policy: AttentiveMix
    public let attentionModel: ImageClassifier?
    public let mixLoss: MixupLoss
    public var name: String { "attentivemix" }

    public init(policy: AttentiveMix, attentionModel: ImageClassifier? = nil, loss: MixupLoss = .mixupCE) throws {
        try loss.validate()
        self.policy = policy
        self.attentionModel = attentionModel
        self.mixLoss = loss
    }

    public func loss(model: ImageClassifier, batch: Batch, context: inout StepContext) throws -> Tensor {
        let (_, c, _, _) = try ModelMixing.checkBatch(batch, name)
        let source = attentionModel ?? model
        try requireShape(source.inChannels == c, "AttentiveMix: attention model expects \(source.inChannels) channels, images have \(c)")
        let (mixed, r) = try policy.mix(images: batch.images, model: source, rng: &context.rng)
        context.metrics.append(("lambda", Double(r.lambda.reduce(0, +)) / Double(r.batch)))
        return try mixLoss(logits: try model(mixed), labelsA: batch.labels,
                           labelsB: r.partner.map { batch.labels[$0] }, lam: r.labelLambda)
    }
}
