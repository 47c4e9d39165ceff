import SAMixCore
import SAMixOps
import SAMixNN
import SAMixData
import SAMixMixing

/// One finished epoch of `Trainer.fit`: training loss, evaluation results and time.
public struct EpochRecord: Equatable, Sendable {
    /// The epoch (1-based).
    public var epoch: Int
    public var trainLoss: Double
    public var learningRate: Double
    /// Evaluations after the epoch by data set name (e.g. "test", "val"), then by network (e.g.
    /// "online", "momentum"): (loss, top-1 accuracy in [0, 1], count). Empty for a set at epochs
    /// `evaluateAt` skips, and for every set when the run was asked to stop during the epoch.
    public var evaluations: [String: [String: Evaluation]]
    /// Training seconds of the epoch (evaluation excluded; includes earlier interrupted parts).
    public var seconds: Double
    /// Mean of objective-specific step metrics over the epoch.
    public var metrics: [String: Double]
    /// Steps done by the trainer at the end of the epoch.
    public var stepsDone: Int

    public init(epoch: Int, trainLoss: Double, learningRate: Double, evaluations: [String: [String: Evaluation]] = [:],
                seconds: Double, metrics: [String: Double] = [:], stepsDone: Int = 0) {
        self.epoch = epoch
        self.trainLoss = trainLoss
        self.learningRate = learningRate
        self.evaluations = evaluations
        self.seconds = seconds
        self.metrics = metrics
        self.stepsDone = stepsDone
    }

    /// The evaluations of the data set named "test" (empty when not evaluated).
    public var evaluation: [String: Evaluation] { evaluations["test"] ?? [:] }
}

/// Progress of an epoch stopped early (see `Trainer.partialEpoch`).
public struct PartialEpoch: Equatable, Sendable {
    /// The epoch (0-based, = `epochsDone` when it stopped), the batch to continue at, and the number
    /// of batches per epoch of the source it ran on.
    public var epoch: Int
    public var nextBatch: Int
    public var batches: Int
    /// Sums over the finished batches of the loss and of each step metric.
    public var lossSum: Double
    public var metricSums: [String: Double]
    /// Training seconds already spent in the epoch (kept by `fit` across interruptions).
    public var seconds: Double = 0
}

/// Thrown by `Trainer.trainEpoch` when `shouldStop` asked it to stop before the epoch's end.
public struct TrainingInterrupted: Error, CustomStringConvertible {
    public let epoch: Int
    public let nextBatch: Int
    public var description: String { "training interrupted in epoch \(epoch + 1) before batch \(nextBatch)" }
}

/// Loss and top-1 accuracy of a classifier on a data source.
public struct Evaluation: Equatable, Sendable {
    public var loss: Double
    public var accuracy: Double
    public var count: Int
}

/// The supervised training loop: per-step learning-rate schedule, objective (vanilla, a mixing
/// policy, AutoMix/SAMix), optimizer step over the classifier and the objective's extra modules,
/// objective hooks after each step, evaluation after each epoch. Deterministic given `seed`.
public final class Trainer {
    public let model: ImageClassifier
    public let objective: TrainingObjective
    public let optimizer: Optimizer
    public var schedule: LearningRateSchedule?
    public let seed: UInt64
    /// Completed epochs and steps (restored from checkpoints for exact resume).
    public var epochsDone = 0
    public var stepsDone = 0
    /// The records of the epochs `fit` finished in this process.
    public private(set) var history: [EpochRecord] = []
    func appendHistory(_ r: EpochRecord) { history.append(r) }
    /// Settings that define the run which only the front end knows (data set, subset, model name,
    /// creation options); saved in checkpoints and compared on resume (see `RunSettings`).
    public var runSettings: [String: String] = [:]
    /// Length and data of the epoch loop of the last `trainEpoch` call: epochs, samples and batches
    /// per epoch (see `RunSettings`).
    public internal(set) var fitSettings: [String: String] = [:]
    /// Fit settings a resumed checkpoint requires of the next `trainEpoch` (nil: none pending).
    var expectedFitSettings: [String: String]?
    /// Path of the checkpoint `expectedFitSettings` came from (for the error message).
    var expectedFitSettingsSource = ""
    /// An epoch stopped before its end by `trainEpoch(_:totalEpochs:onStep:shouldStop:)`: the next
    /// `trainEpoch` continues it at batch `nextBatch` (same data order, same per-step randomness), so
    /// an interrupted-then-continued run takes exactly the steps of an uninterrupted one. Not saved in
    /// checkpoints: a checkpoint written now restarts the interrupted epoch from its first batch.
    public var partialEpoch: PartialEpoch?
    /// One process reproducing the pairing of an N-rank data-parallel run: objectives that pair inside
    /// each rank's shard (AutoMix/SAMix; see `DataParallel`) pair inside N equal contiguous groups of
    /// every batch, with the mask loss averaged over groups. With synchronized BatchNorm on the ranks,
    /// a 1-process run with `pairingGroups = N` computes what N ranks compute. Default 1.
    public var pairingGroups = 1
    /// Data-parallel training across processes (`distribute(over:syncBatchNorm:)`); nil = one process.
    public internal(set) var dataParallel: DataParallel?
    /// Number of ranks that trained the checkpoint this trainer resumed from (nil: not resumed).
    public internal(set) var checkpointRanks: Int?
    /// A note when the run resumed a checkpoint written by another number of ranks: it continues
    /// correctly but not bit-identically (shards, BatchNorm statistics and reduction order differ).
    public var resumeNote: String? { DataParallel.resumeNote(saved: checkpointRanks, now: dataParallel?.group.size ?? 1) }

    /// - Parameters: `optimizer` must have been created over `Trainer.parameters(model:objective:)`.
    public init(model: ImageClassifier, objective: TrainingObjective, optimizer: Optimizer,
                schedule: LearningRateSchedule? = nil, seed: UInt64 = 0) {
        self.model = model
        self.objective = objective
        self.optimizer = optimizer
        self.schedule = schedule
        self.seed = seed
    }

    /// Every trainable parameter of a model plus an objective's extra modules, named.
    public static func parameters(model: ImageClassifier, objective: TrainingObjective) throws -> [(String, Tensor)] {
        try objective.prepare(model: model)
        var p = model.namedParameters()
        for (prefix, m) in objective.extraModules { p += m.namedParameters(prefix: prefix + ".") }
        return p
    }

    /// SGD over the model and the objective's extra modules; defaults from `OptionSchema.optimizer` ("sgd").
    public static func sgd(model: ImageClassifier, objective: TrainingObjective, lr: Float,
                           momentum: Float = Float(OptionSchema.optimizer.real("momentum", method: "sgd")),
                           weightDecay: Float = Float(OptionSchema.optimizer.real("weight_decay", method: "sgd")),
                           nesterov: Bool = OptionSchema.optimizer.bool("nesterov", method: "sgd")) throws -> SGD {
        try SGD(try parameters(model: model, objective: objective), lr: lr, momentum: momentum,
                weightDecay: weightDecay, nesterov: nesterov)
    }

    /// Trains one epoch over `source`; `totalEpochs` sizes the schedules. Returns the mean loss,
    /// the last learning rate and averaged step metrics.
    ///
    /// `shouldStop` is asked after every step but the epoch's last; when it returns true the epoch
    /// stops there: `partialEpoch` records the progress (next batch, loss and metric sums), the epoch
    /// is not counted in `epochsDone`, and `TrainingInterrupted` is thrown. The next call continues
    /// the epoch at that batch when the source has the same number of batches (otherwise it restarts
    /// the epoch from batch 0).
    public func trainEpoch(_ source: BatchSource, totalEpochs: Int,
                           onStep: ((Int, Double) -> Void)? = nil,
                           shouldStop: (() -> Bool)? = nil) throws -> (loss: Double, lr: Double, metrics: [String: Double]) {
        try require(totalEpochs > epochsDone, "training is already at epoch \(epochsDone) of \(totalEpochs)")
        let steps = source.batchesPerEpoch
        try require(steps > 0, "the training data yields no batches")
        let total = steps * totalEpochs
        let fit = ["epochs": String(totalEpochs), "samples_per_epoch": String(source.sampleCount),
                   "batches_per_epoch": String(steps)]
        if let expected = expectedFitSettings {
            try RunSettings.requireSame(saved: expected, current: fit, path: expectedFitSettingsSource)
            expectedFitSettings = nil
        }
        fitSettings = fit
        source.training = true
        model.train()
        for (_, m) in objective.extraModules { m.train() }
        var lossSum = 0.0, lr = Double(optimizer.learningRate)
        var metricSums: [String: Double] = [:]
        var first = 0
        if let p = partialEpoch, p.epoch == epochsDone, p.batches == steps {
            (first, lossSum, metricSums) = (p.nextBatch, p.lossSum, p.metricSums)
        }
        partialEpoch = nil
        for b in first..<steps {
            let global = try source.batch(b, epoch: epochsDone)
            let (value, metrics): (Double, [(String, Double)])
            if let dp = dataParallel, b == first {   // the ranks must be reading the same data
                try dp.group.requireSame(["samples per epoch \(source.sampleCount)", "batches per epoch \(steps)",
                                          "batch \(b) of epoch \(epochsDone): images \(global.images.shape) hash "
                                          + "\(FNV1a.hash(global.images.data, count: global.images.count)), labels hash \(FNV1a.hash("\(global.labels)"))"],
                                         what: "the training data (every rank passes the same data and seed)")
            }
            if let dp = dataParallel {
                // The same test on every rank, so all of them stop together.
                try require(global.size >= dp.group.size, "batch \(b) has \(global.size) images, fewer than the "
                            + "\(dp.group.size) ranks: use a batch size of at least the number of ranks (or drop the last batch)")
                if objective is GlobalBatchObjective {
                    (value, metrics) = try trainStep(global, totalSteps: total, rows: dp.rows(of: global.size))
                } else {
                    (value, metrics) = try trainStep(dp.shard(global), totalSteps: total)
                }
            } else {
                (value, metrics) = try trainStep(global, totalSteps: total)
            }
            lr = Double(optimizer.learningRate)
            lossSum += value
            for (k, v) in metrics { metricSums[k, default: 0] += v }
            onStep?(b, value)
            if b + 1 < steps, let shouldStop, shouldStop() {
                partialEpoch = PartialEpoch(epoch: epochsDone, nextBatch: b + 1, batches: steps, lossSum: lossSum,
                                            metricSums: metricSums)
                throw TrainingInterrupted(epoch: epochsDone, nextBatch: b + 1)
            }
        }
        if let dp = dataParallel, !metricSums.isEmpty {  // step metrics (λ, mask statistics, …): mean over ranks
            let keys = metricSums.keys.sorted()
            try dp.group.requireSame(keys, what: "the names of the step metrics")
            var values = keys.map { (metricSums[$0] ?? 0) / Double(dp.group.size) }
            try dp.group.allreduceSum(&values)
            for (k, v) in zip(keys, values) { metricSums[k] = v }
        }
        epochsDone += 1
        return (lossSum / Double(steps), lr, metricSums.mapValues { $0 / Double(steps) })
    }

    /// One optimisation step on `batch` (the model in training mode): sets the learning rate from the
    /// schedule at step `stepsDone` of `totalSteps` (no schedule, or `totalSteps` nil: the optimizer's
    /// current rate), computes the objective's loss, back-propagates, steps the optimizer and runs the
    /// objective's after-step hook. The batch's images may be modified (mixing works in place).
    /// Data-parallel, `batch` is this rank's shard: gradients are averaged over ranks before the
    /// optimizer step, and the returned loss is the global batch's mean.
    /// - Returns: the loss and the objective's step metrics.
    public func trainStep(_ batch: Batch, totalSteps: Int?) throws -> (loss: Double, metrics: [(String, Double)]) {
        try trainStep(batch, totalSteps: totalSteps, rows: nil)
    }

    /// `rows`: data-parallel with a `GlobalBatchObjective`, `batch` is the global batch and this rank
    /// trains on these rows of it.
    func trainStep(_ batch: Batch, totalSteps: Int?, rows: Range<Int>?) throws -> (loss: Double, metrics: [(String, Double)]) {
        let t = stepsDone
        let shape = batch.images.shape
        if shape.count == 4 {  // a lower bound of the step's need: fail before allocating when even that cannot fit
            try model.requireMemory(batch: rows?.count ?? shape[0], height: shape[2], width: shape[3], training: true)
        }
        if let schedule, let total = totalSteps {
            try require(total > t, "step \(t) is past the schedule's \(total) steps")
            optimizer.learningRate = schedule.value(step: t, total: total)
        }
        model.train()
        var ctx = StepContext(step: t, totalSteps: totalSteps ?? max(t + 1, 1), epoch: epochsDone,
                              rng: SplitMix64(seed: seed).fork(index: UInt64(t)).fork(index: 7))
        ctx.pairingGroups = pairingGroups
        optimizer.zeroGrad()
        let loss: Tensor
        if let rows, let global = objective as? GlobalBatchObjective {
            loss = try global.loss(model: model, globalBatch: batch, rows: rows, context: &ctx)
        } else {
            loss = try objective.loss(model: model, batch: batch, context: &ctx)
        }
        var value = Double(loss.data[0])
        if let dp = dataParallel {   // every rank reaches the all-reduce, so a non-finite loss stops all of them
            value = try dp.backwardAndAverage(loss, lossValue: value, parameters: optimizer.namedParameters,
                                              rows: rows?.count ?? batch.size)
        } else {
            try loss.backward()
        }
        guard value.isFinite else {
            throw SAMixError.numerical("loss became \(value) at epoch \(epochsDone), step \(t) (learning rate \(optimizer.learningRate))")
        }
        try optimizer.step()
        try objective.afterStep(model: model, context: ctx)
        stepsDone += 1
        return (value, ctx.metrics)
    }

    /// Loss and top-1 accuracy of `model` (in evaluation mode, no gradients) on `source`; with
    /// `dataParallel`, every rank evaluates its shard of each batch and the figures are reduced.
    public static func evaluate(_ model: ImageClassifier, on source: BatchSource,
                                dataParallel: DataParallel? = nil) throws -> Evaluation {
        let wasTraining = model.isTraining
        let sourceTraining = source.training
        model.eval()
        source.training = false
        defer { model.train(wasTraining); source.training = sourceTraining }
        var lossSum = 0.0, correct = 0, count = 0
        try GradMode.withDisabled {
            for b in 0..<source.batchesPerEpoch {
                try Interruption.checkpoint("the evaluation")
                let full = try source.batch(b, epoch: 0)
                let rows = dataParallel?.rows(of: full.size) ?? 0..<full.size
                if rows.isEmpty { continue }
                let batch = rows.count == full.size ? full : try full.rows(rows)
                let logits = try model(batch.images)
                let loss = try logits.crossEntropy(labels: batch.labels)
                lossSum += Double(loss.data[0]) * Double(batch.size)
                correct += try Metrics.correctTop1(logits: logits, labels: batch.labels)
                count += batch.size
            }
        }
        if let dp = dataParallel {   // every rank evaluated its shard of each batch: sum over ranks
            var sums = [lossSum, Double(correct), Double(count)]
            try dp.group.allreduceSum(&sums)
            (lossSum, correct, count) = (sums[0], Int(sums[1]), Int(sums[2]))
        }
        return Evaluation(loss: lossSum / Double(max(count, 1)), accuracy: Double(correct) / Double(max(count, 1)), count: count)
    }

    /// Evaluates the online model and the objective's evaluation models (data-parallel: each rank
    /// evaluates a shard of every batch and the figures are reduced over ranks).
    public func evaluateAll(on source: BatchSource) throws -> [String: Evaluation] {
        func evaluate(_ m: ImageClassifier) throws -> Evaluation {
            try Trainer.evaluate(m, on: source, dataParallel: dataParallel)
        }
        var out = ["online": try evaluate(model)]
        for (name, m) in objective.evaluationModels { out[name] = try evaluate(m) }
        return out
    }

    /// `fit` with one evaluation set named "test" (see `fit(_:epochs:evaluations:evaluateAt:onStep:onEpoch:)`).
    @discardableResult
    public func fit(_ train: BatchSource, epochs: Int, test: BatchSource? = nil,
                    evaluateAt: ((Int) -> Bool)? = nil,
                    onEpoch: ((EpochRecord) throws -> Bool)? = nil) throws -> [EpochRecord] {
        try fit(train, epochs: epochs, evaluations: test.map { [FitEvaluation("test", $0)] } ?? [],
                evaluateAt: evaluateAt, onEpoch: onEpoch)
    }
}

/// Classification metrics.
public enum Metrics {
    /// Number of rows whose arg-max equals the label (first maximum wins ties).
    public static func correctTop1(logits: Tensor, labels: [Int]) throws -> Int {
        try requireShape(logits.rank == 2 && logits.shape[0] == labels.count,
                         "logits \(logits.shape) do not match \(labels.count) labels")
        let k = logits.shape[1]
        var correct = 0
        for i in 0..<labels.count {
            let row = logits.data + i * k
            var best = 0
            for j in 1..<max(k, 1) where row[j] > row[best] { best = j }
            if best == labels[i] { correct += 1 }
        }
        return correct
    }

    /// Median of a list (mean of the two middle values for even counts); nil when empty.
    public static func median(_ values: [Double]) -> Double? {
        guard !values.isEmpty else { return nil }
        let s = values.sorted()
        return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
    }
}
