import SAMixCore
import SAMixOps
import SAMixNN
import SAMixData
import SAMixMixing

/// Training with an image-space mixing policy (Mixup, CutMix, FMix, …): each step mixes the batch
/// in place with the policy and minimises the mixup cross-entropy
/// (1/N) Σᵢ λᵢ·CE(zᵢ, yᵢ) + (1 − λᵢ)·CE(zᵢ, y_π(i)), with λᵢ the policy's label weight of sample i.
public final class MixPolicyObjective: GlobalBatchObjective {
    public let name: String
    public let policy: MixPolicy
    /// Probability of mixing a batch (else the batch trains as vanilla CE).
    public let probability: Double
    public let labelSmoothing: Float

    public init(name: String, policy: MixPolicy, probability: Double = 1, labelSmoothing: Float = 0) throws {
        try require(probability >= 0 && probability <= 1, "mixing probability must be in [0, 1], got \(probability)")
        try require(labelSmoothing >= 0 && labelSmoothing < 1, "label smoothing must be in [0, 1)")
        self.name = name
        self.policy = policy
        self.probability = probability
        self.labelSmoothing = labelSmoothing
    }

    public func loss(model: ImageClassifier, batch: Batch, context: inout StepContext) throws -> Tensor {
        try loss(model: model, globalBatch: batch, rows: nil, context: &context)
    }

    /// Mixes the whole batch (in place), then trains on `rows` of it (data-parallel shard).
    public func loss(model: ImageClassifier, globalBatch: Batch, rows: Range<Int>, context: inout StepContext) throws -> Tensor {
        try loss(model: model, globalBatch: globalBatch, rows: Optional(rows), context: &context)
    }

    private func loss(model: ImageClassifier, globalBatch batch: Batch, rows: Range<Int>?, context: inout StepContext) throws -> Tensor {
        if probability < 1 && context.rng.uniformDouble() >= probability {
            let local = try rows.map { try batch.rows($0) } ?? batch
            return try model(local.images).crossEntropy(labels: local.labels, labelSmoothing: labelSmoothing)
        }
        let s = batch.images.shape
        let shape = try ImageBatchShape(batch: s[0], channels: s[1], height: s[2], width: s[3])
        let result = try policy.mix(batch.images.data, shape: shape, rng: &context.rng)
        context.metrics.append(("lambda", Double(result.labelLambda.reduce(0, +)) / Double(max(result.batch, 1))))
        let r = rows ?? 0..<batch.size
        let local = try rows.map { try batch.rows($0) } ?? batch
        return try model(local.images).mixupCrossEntropy(labelsA: local.labels, labelsB: r.map { batch.labels[result.partner[$0]] },
                                                         lam: Array(result.labelLambda[r]), labelSmoothing: labelSmoothing)
    }
}

/// ManifoldMix (Verma et al. 2019): mixes hidden representations at a stage drawn uniformly from
/// `stages` (0 = the input image, k = output of backbone stage k): h̃ = λ·h + (1 − λ)·h[π],
/// λ ~ Beta(α, α), labels as Mixup. OpenMixup's CIFAR setting is stages {0, 1, 2}, α = 2.
public final class ManifoldMixObjective: TrainingObjective {
    public let alpha: Double
    public let stages: [Int]
    public var name: String { "manifoldmix" }

    public init(alpha: Double = 2, stages: [Int] = [0, 1, 2]) throws {
        try require(alpha > 0 && alpha.isFinite, "ManifoldMix α must be > 0, got \(alpha)")
        try require(!stages.isEmpty && stages.allSatisfy { $0 >= 0 }, "ManifoldMix needs stage indices ≥ 0")
        self.alpha = alpha
        self.stages = stages
    }

    public func loss(model: ImageClassifier, batch: Batch, context: inout StepContext) throws -> Tensor {
        let stageCount = model.backbone.stageCount
        let valid = stages.filter { $0 < stageCount }
        try require(!valid.isEmpty, "ManifoldMix stages \(stages) do not exist in a \(stageCount)-stage backbone")
        let layer = valid[context.rng.int(below: valid.count)]
        let lam = Float(context.rng.beta(alpha, alpha))
        let perm = context.rng.permutation(batch.size)
        let (logits, _) = try model.forwardWithFeatures(batch.images) { k, h in
            guard k == layer else { return h }
            return try mixRows(h, lam: lam, permutation: perm)
        }
        context.metrics.append(("lambda", Double(lam)))
        return try logits.mixupCrossEntropy(labelsA: batch.labels, labelsB: perm.map { batch.labels[$0] }, lam: lam)
    }
}

/// λ·h + (1 − λ)·h[π] along the batch dimension, differentiable in h.
public func mixRows(_ h: Tensor, lam: Float, permutation perm: [Int]) throws -> Tensor {
    try requireShape(h.rank >= 1 && h.shape[0] == perm.count, "mixRows: \(perm.count) indices for batch \(h.shape)")
    return try h * lam + (try h.gatherRows(perm)) * (1 - lam)
}
