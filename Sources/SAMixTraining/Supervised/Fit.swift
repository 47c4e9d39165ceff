import SAMixCore
import SAMixOps
import SAMixNN
import SAMixData
import SAMixMixing

// The supervised fit loop every front end runs (C ABI `samix_trainer_fit`, hence Python's
// `Trainer.fit`, and `samix-bench train`): epochs, per-epoch evaluation of every network on named
// data sets, one typed record per epoch (and per step when asked), and a clean stop at the next step.

/// A data set `Trainer.fit` evaluates after epochs, with every network of the trainer (`evaluateAll`).
public struct FitEvaluation {
    public var name: String
    public var source: BatchSource
    public init(_ name: String, _ source: BatchSource) {
        self.name = name
        self.source = source
    }
}

/// One training step of `Trainer.fit`.
public struct StepRecord: Equatable, Sendable {
    /// The epoch the step belongs to (1-based) and its index in the epoch (0-based) of `steps`.
    public var epoch: Int
    public var step: Int
    public var steps: Int
    public var loss: Double
    public var learningRate: Double
}

extension Trainer {
    /// Trains until `epochs` epochs are done (continuing an epoch an earlier call stopped in).
    ///
    /// After each epoch `e` (1-based) for which `evaluateAt(e)` is true (default: every epoch) every
    /// set of `evaluations` is evaluated with every network; then `onEpoch` sees the epoch's record
    /// (it is also appended to `history`). `onStep` sees every step.
    ///
    /// Stopping: `onStep` returning false stops the run after that step. Before the epoch's last
    /// step the epoch is left unfinished (`partialEpoch`; not counted in `epochsDone`, not in
    /// `history`; the next `fit` continues it at its next batch so the run equals an uninterrupted
    /// one); at its last step the epoch finishes and is recorded without evaluation. `onEpoch`
    /// returning false stops after that epoch. A requested stop returns normally (the records
    /// made so far are in `history`); errors, including those `onEpoch` throws, propagate.
    @discardableResult
    public func fit(_ train: BatchSource, epochs: Int, evaluations: [FitEvaluation],
                    evaluateAt: ((Int) -> Bool)? = nil,
                    onStep: ((StepRecord) -> Bool)? = nil,
                    onEpoch: ((EpochRecord) throws -> Bool)? = nil) throws -> [EpochRecord] {
        try require(epochs >= 1, "epochs must be ≥ 1, got \(epochs)")
        var stop = false
        while epochsDone < epochs, !stop {
            let epoch = epochsDone
            let steps = train.batchesPerEpoch
            let carried = partialEpoch.map { $0.epoch == epoch && $0.batches == steps ? $0.seconds : 0 } ?? 0
            let t0 = Clock.now()
            let r: (loss: Double, lr: Double, metrics: [String: Double])
            do {
                r = try trainEpoch(train, totalEpochs: epochs, onStep: { b, loss in
                    guard let onStep, !stop else { return }
                    let record = StepRecord(epoch: epoch + 1, step: b, steps: steps, loss: loss,
                                            learningRate: Double(self.optimizer.learningRate))
                    if !onStep(record) { stop = true }
                }, shouldStop: { stop })
            } catch is TrainingInterrupted {
                partialEpoch?.seconds = carried + (Clock.now() - t0)
                return history
            }
            let seconds = carried + (Clock.now() - t0)
            try dataParallel?.synchronizeAndVerify(self, when: "after epoch \(epochsDone)")
            var evals: [String: [String: Evaluation]] = [:]
            if !stop, evaluateAt?(epochsDone) ?? true {
                for set in evaluations { evals[set.name] = try evaluateAll(on: set.source) }
            }
            let record = EpochRecord(epoch: epochsDone, trainLoss: r.loss, learningRate: r.lr, evaluations: evals,
                                     seconds: seconds, metrics: r.metrics, stepsDone: stepsDone)
            appendHistory(record)
            if let onEpoch, try !onEpoch(record) { stop = true }
        }
        return history
    }
}

// MARK: - JSON records (the C ABI's record callback)

/// JSON text of fit records: one object per record, keys in a fixed order, numbers as JSON numbers
/// (a non-finite value, e.g. the loss of a diverged network's evaluation, as `null`).
public enum FitRecordJSON {
    static func number(_ v: Double) -> JSONValue { v.isFinite ? .number("\(v)") : .null }

    /// `{"type": "step", "epoch", "step", "steps", "loss", "lr"}`.
    public static func encode(_ r: StepRecord) -> String {
        JSONValue.object([("type", .string("step")), ("epoch", .number(String(r.epoch))), ("step", .number(String(r.step))),
                          ("steps", .number(String(r.steps))), ("loss", number(r.loss)),
                          ("lr", number(r.learningRate))]).serialized
    }

    /// `{"type": "epoch", "epoch", "loss", "lr", "seconds", "steps_done", "metrics": {name: mean},
    /// "evaluations": {set: {network: {"loss", "accuracy", "count"}}}}` (names sorted).
    public static func encode(_ r: EpochRecord) -> String {
        let metrics = JSONValue.object(r.metrics.sorted { $0.key < $1.key }.map { ($0.key, number($0.value)) })
        let evals = JSONValue.object(r.evaluations.sorted { $0.key < $1.key }.map { set in
            (set.key, .object(set.value.sorted { $0.key < $1.key }.map { head in
                (head.key, .object([("loss", number(head.value.loss)), ("accuracy", number(head.value.accuracy)),
                                    ("count", .number(String(head.value.count)))]))
            }))
        })
        return JSONValue.object([("type", .string("epoch")), ("epoch", .number(String(r.epoch))),
                                 ("loss", number(r.trainLoss)), ("lr", number(r.learningRate)),
                                 ("seconds", number(r.seconds)), ("steps_done", .number(String(r.stepsDone))),
                                 ("metrics", metrics), ("evaluations", evals)]).serialized
    }
}
