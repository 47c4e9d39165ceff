import SAMixCore
import SAMixOps
import SAMixNN
import SAMixData
import SAMixMixing

/// What one training step optimises. The trainer owns the loop (schedule, optimizer, EMA hooks);
/// an objective turns a batch into a scalar loss and may own extra trainable modules (the Mixer of
/// AutoMix/SAMix) and per-step state.
public protocol TrainingObjective: AnyObject {
    /// Short name for logs ("vanilla", "mixup", "samix", …).
    var name: String { get }
    /// Builds whatever depends on the model (Mixer, momentum copies, extra heads). Called once
    /// before the optimizer is created (by `Trainer.parameters`); must be idempotent.
    func prepare(model: ImageClassifier) throws
    /// Trainable modules besides the classifier, with name prefixes for optimizer/checkpoint state.
    var extraModules: [(String, Module)] { get }
    /// The loss of one batch (the classifier is in training mode). `context.rng` is this step's generator.
    func loss(model: ImageClassifier, batch: Batch, context: inout StepContext) throws -> Tensor
    /// Called after each optimizer step (EMA updates and the like).
    func afterStep(model: ImageClassifier, context: StepContext) throws
    /// The network whose accuracy is reported (the momentum network for AutoMix/SAMix), besides
    /// the online model.
    var evaluationModels: [(String, ImageClassifier)] { get }
}

extension TrainingObjective {
    public func prepare(model: ImageClassifier) throws {}
    public var extraModules: [(String, Module)] { [] }
    public func afterStep(model: ImageClassifier, context: StepContext) throws {}
    public var evaluationModels: [(String, ImageClassifier)] { [] }
}

/// An objective that can start a data-parallel step from the whole global batch (which every rank
/// holds): it mixes the global batch with the same draws one process would make and returns the
/// loss of this rank's `rows` only, so N ranks with synchronized BatchNorm compute what one process
/// computes on the global batch. Objectives without it get the rank's shard and pair inside it.
public protocol GlobalBatchObjective: TrainingObjective {
    func loss(model: ImageClassifier, globalBatch: Batch, rows: Range<Int>, context: inout StepContext) throws -> Tensor
}

/// Per-step information handed to objectives.
public struct StepContext {
    /// Global step index t (0-based) and total steps T of the run.
    public var step: Int, totalSteps: Int
    public var epoch: Int
    /// The step's own generator (derived from the run seed and t; independent of thread count).
    public var rng: SplitMix64
    /// Scalars the objective wants logged for this step (e.g. "loss_mask").
    public var metrics: [(String, Double)] = []
    /// Objectives that pair samples inside a data-parallel rank's shard (AutoMix/SAMix) pair inside
    /// each of this many equal contiguous groups of the batch (`Trainer.pairingGroups`; 1 = whole batch).
    public var pairingGroups = 1

    public init(step: Int, totalSteps: Int, epoch: Int, rng: SplitMix64) {
        self.step = step; self.totalSteps = totalSteps; self.epoch = epoch; self.rng = rng
    }
}

/// Plain (vanilla) training: cross-entropy on clean images, optional label smoothing.
public final class CrossEntropyObjective: TrainingObjective {
    public let labelSmoothing: Float
    public var name: String { "vanilla" }

    public init(labelSmoothing: Float = 0) throws {
        try require(labelSmoothing >= 0 && labelSmoothing < 1, "label smoothing must be in [0, 1), got \(labelSmoothing)")
        self.labelSmoothing = labelSmoothing
    }

    public func loss(model: ImageClassifier, batch: Batch, context: inout StepContext) throws -> Tensor {
        try model(batch.images).crossEntropy(labels: batch.labels, labelSmoothing: labelSmoothing)
    }
}
