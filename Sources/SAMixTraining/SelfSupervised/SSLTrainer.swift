import Glibc
import SAMixCore
import SAMixOps
import SAMixNN
import SAMixData
import SAMixMixing

/// Optimisation and monitoring settings of SSL pre-training.
public struct SSLTrainingConfig: Equatable, Sendable {
    public var epochs: Int
    public var batchSize: Int
    /// SGD (momentum 0.9) over the query encoder, the Mixer and the cluster head in one group, as the
    /// reference; cosine to `minLearningRate` by iteration.
    public var learningRate: Float
    public var minLearningRate: Float
    public var momentum: Float
    public var weightDecay: Float
    /// kNN monitor every this many epochs (and after the last); 0 = never.
    public var knnEvery: Int
    public var knnK: Int
    public var knnTemperature: Float
    public var seed: UInt64

    public init(epochs: Int, batchSize: Int = 128, learningRate: Float = 0.06, minLearningRate: Float = 0,
                momentum: Float = 0.9, weightDecay: Float = 5e-4, knnEvery: Int = 5, knnK: Int = 200,
                knnTemperature: Float = 0.1, seed: UInt64 = 0) throws {
        try require(epochs >= 1 && batchSize >= 2, "SSL training needs ≥ 1 epoch and batch size ≥ 2")
        try require(learningRate > 0 && minLearningRate >= 0 && minLearningRate <= learningRate, "bad learning rates")
        try require(knnEvery >= 0 && knnK >= 1 && knnTemperature > 0, "bad kNN monitor settings")
        self.epochs = epochs; self.batchSize = batchSize; self.learningRate = learningRate
        self.minLearningRate = minLearningRate; self.momentum = momentum; self.weightDecay = weightDecay
        self.knnEvery = knnEvery; self.knnK = knnK; self.knnTemperature = knnTemperature; self.seed = seed
    }
}

/// What one epoch of SSL pre-training did.
public struct SSLEpochRecord {
    public let epoch: Int
    /// Mean total loss over the epoch's steps.
    public let loss: Double
    /// Means of every step metric (`SSLStepOutput.metrics`).
    public let metrics: [(String, Double)]
    /// kNN top-1 (0–1) on the test set with the training set as memory bank, when monitored.
    public let knnTop1: Double?
    /// SAMix-C: k-means inertia of the pseudo-labels used in this epoch.
    public let clusterInertia: Double?
    /// SAMix-C: share of training images whose pseudo-label is the same as in the previous epoch
    /// (≈ 1/k when the clusters are renumbered at random; nil in the first epoch).
    public let pseudoLabelsKept: Double?
    public let learningRate: Float
    public let seconds: Double
    public let steps: Int
}

/// The SSL pre-training loop: two MoCo v2 views per image, one `MoCo.step` per batch, SGD, the
/// queue update, per-epoch k-means pseudo-labels for SAMix-C and the kNN monitor.
///
/// Determinism: epoch e shuffles with `seed.fork(e)`, step t augments with `seed.fork(1000 + t)`
/// and draws λ, π, … with another fork of it; k-means of epoch e is seeded by (seed, e).
public final class SSLTrainer {
    public let model: MoCo
    public let config: SSLTrainingConfig
    public let augmentation: SSLAugmentation
    public let normalization: Normalization
    public let optimizer: SGD
    public let schedule: LearningRateSchedule
    /// Optimizer steps and epochs done (restored by `SSLCheckpoint.load`; `fit` continues from them).
    public internal(set) var step = 0
    public internal(set) var epochsDone = 0
    /// Data-parallel pre-training (`distribute(over:)`); nil = one process.
    public private(set) var dataParallel: DataParallel?
    /// Number of ranks that trained the checkpoint this trainer resumed from (nil: not resumed).
    public internal(set) var checkpointRanks: Int?
    /// A note when the run resumed a checkpoint written by another number of ranks: it continues
    /// correctly but not bit-identically (shards, shuffle-BN chunks and reduction order differ).
    public var resumeNote: String? { DataParallel.resumeNote(saved: checkpointRanks, now: dataParallel?.group.size ?? 1) }
    var group: ProcessGroup { dataParallel?.group ?? .single }

    public init(model: MoCo, config: SSLTrainingConfig, augmentation: SSLAugmentation, normalization: Normalization) throws {
        self.model = model
        self.config = config
        self.augmentation = augmentation
        self.normalization = normalization
        optimizer = try SGD(model.trainableParameters, lr: config.learningRate, momentum: config.momentum,
                            weightDecay: config.weightDecay)
        schedule = try LearningRateSchedule(.cosine(minLR: config.minLearningRate), baseLR: config.learningRate)
    }

    /// SAMix-C with `kmeansWarmStart`: the centroids of the last clustering [k, d] (saved in checkpoints).
    public internal(set) var clusterCentroids: Tensor?

    /// k-means pseudo-labels of `dataset` (SAMix-C; the reference's DeepCluster hook): GAP features
    /// of the encoder `clusterFeatures` names (the query encoder by default), PCA-whitened to
    /// `clusterPCADimensions` and L2-normalised (`PCAWhitening`; without PCA: L2-normalised only),
    /// warm-started from `clusterCentroids` when the config asks for it. Returns the inertia and the share of images whose pseudo-label did not
    /// change (nil for the first clustering).
    @discardableResult
    public func refreshPseudoLabels(_ dataset: ImageDataset, epoch: Int) throws -> (inertia: Double, kept: Double?) {
        guard case .samix(let s) = model.mix, s.variant == .cluster else { return (.nan, nil) }
        let encoder = s.clusterFeatures == .query ? model.query.backbone : model.key.backbone
        var f = try SSLFeatures.extract(encoder, dataset: dataset, normalization: normalization,
                                        l2Normalize: s.clusterPCADimensions == nil, group: group)
        if let p = s.clusterPCADimensions { f = try PCAWhitening.apply(f, dimensions: p) }
        let k = Swift.min(s.clusters, dataset.count)
        let start = s.kmeansWarmStart ? clusterCentroids.flatMap { $0.shape == [k, f.shape[1]] ? $0 : nil } : nil
        let r = try KMeans.fit(f, clusters: k, iterations: s.kmeansIterations,
                               seed: SplitMix64(seed: config.seed).fork(index: 77_000 + UInt64(epoch)).state,
                               initialCentroids: start)
        let previous = model.pseudoLabels
        try model.setPseudoLabels(r.assignments)
        if s.kmeansWarmStart { clusterCentroids = try Tensor(r.centroids.flatMap { $0 }, shape: [k, f.shape[1]]) }
        var kept: Double? = nil
        if let previous, previous.count == r.assignments.count {
            kept = Double(zip(previous, r.assignments).filter { $0 == $1 }.count) / Double(previous.count)
        }
        return (r.inertia, kept)
    }

    /// Whether a `fit` on `train` that was stopped early can be continued by calling `fit` again:
    /// epochs are left and the trainer stands at an epoch boundary (not mid-epoch).
    public func canContinue(on train: ImageDataset) -> Bool {
        epochsDone < config.epochs && step == epochsDone * (train.count / config.batchSize)
    }

    /// kNN top-1 of the query backbone: memory bank = `bank`, queries = `test`.
    public func knnAccuracy(bank: ImageDataset, test: ImageDataset) throws -> Double {
        let fb = try SSLFeatures.extract(model.backbone, dataset: bank, normalization: normalization, group: group)
        let ft = try SSLFeatures.extract(model.backbone, dataset: test, normalization: normalization, group: group)
        return try KNNClassifier.accuracy(trainFeatures: fb, trainLabels: bank.labels.map { Int($0) }, testFeatures: ft,
                                          testLabels: test.labels.map { Int($0) }, classes: Swift.max(bank.classCount, test.classCount),
                                          k: config.knnK, temperature: config.knnTemperature)
    }

    /// Trains until `config.epochs` epochs are done on `train` (labels unused except by the kNN
    /// monitor), continuing after `epochsDone` (a resumed checkpoint). `onEpoch` returns false to stop
    /// after that epoch. `onStep` sees every step (1-based epoch, step in the epoch, steps per epoch,
    /// loss) and returns false to stop after it: before the epoch's last step the epoch is left
    /// unfinished (not counted in `epochsDone`, no record; the trainer is then mid-epoch, so
    /// continue from a checkpoint of the last finished epoch); at its last step the epoch finishes
    /// and is recorded without the kNN monitor. Returns whether the run was stopped early.
    @discardableResult
    public func fit(train: ImageDataset, test: ImageDataset? = nil,
                    onEpoch: (SSLEpochRecord) throws -> Bool = { _ in true },
                    onStep: ((_ epoch: Int, _ step: Int, _ steps: Int, _ loss: Double) -> Bool)? = nil) throws -> Bool {
        let b = config.batchSize
        try require(train.count >= b, "training set (\(train.count)) is smaller than one batch (\(b))")
        let stepsPerEpoch = train.count / b    // drop the last partial batch (constant batch for BN and the queue)
        let totalSteps = stepsPerEpoch * config.epochs
        let root = SplitMix64(seed: config.seed)
        try require(step == epochsDone * stepsPerEpoch,
                    "trainer at step \(step) is not at an epoch boundary of \(stepsPerEpoch) steps (different dataset or batch size?)")
        var stopped = false
        while epochsDone < config.epochs {
            let epoch = epochsDone
            let start = Clock.now()
            var inertia: Double? = nil, kept: Double? = nil
            if case .samix(let s) = model.mix, s.variant == .cluster {
                (inertia, kept) = try refreshPseudoLabels(train, epoch: epoch)
            }
            var order = Array(0..<train.count)
            var orng = root.fork(index: UInt64(epoch))
            order.shuffle(using: &orng)
            var lossSum = 0.0
            var metricSums: [String: Double] = [:]
            var metricOrder: [String] = []
            for s in 0..<stepsPerEpoch {
                let idx = Array(order[(s * b)..<((s + 1) * b)])
                let srng = root.fork(index: 1000 + UInt64(step))
                let (xq, xk) = try augmentation.twoViews(of: train, indices: idx, normalization: normalization,
                                                         rng: srng.fork(index: 0))
                var mrng = srng.fork(index: 1)
                optimizer.learningRate = schedule.value(step: step, total: totalSteps)
                let out = try model.step(viewQ: xq, viewK: xk, indices: idx, rng: &mrng, group: group)
                var l = Double(out.loss.data[0])
                if let dp = dataParallel {   // every rank reaches the all-reduce, also with a non-finite loss
                    l = try dp.backwardAndAverage(out.loss, lossValue: l, parameters: optimizer.namedParameters,
                                                  rows: b / dp.group.size)
                } else {
                    try out.loss.backward()
                }
                guard l.isFinite else { throw SAMixError.numerical("SSL loss is \(l) at epoch \(epoch) step \(s)") }
                try optimizer.step()
                optimizer.zeroGrad()
                try model.afterStep(out)
                lossSum += l
                for (k, v) in out.metrics {
                    if metricSums[k] == nil { metricOrder.append(k) }
                    metricSums[k, default: 0] += v
                }
                step += 1
                if let onStep, !onStep(epoch + 1, s, stepsPerEpoch, l) {
                    if s + 1 < stepsPerEpoch { return true }
                    stopped = true
                }
            }
            if let dp = dataParallel {
                try synchronizeAndVerify(after: epoch + 1)
                if !metricOrder.isEmpty {   // step metrics: mean over ranks
                    try dp.group.requireSame(metricOrder, what: "the names of the SSL step metrics")
                    var values = metricOrder.map { (metricSums[$0] ?? 0) / Double(dp.group.size) }
                    try dp.group.allreduceSum(&values)
                    for (k, v) in zip(metricOrder, values) { metricSums[k] = v }
                }
            }
            var knn: Double? = nil
            let last = epoch == config.epochs - 1
            if !stopped, let test, config.knnEvery > 0, (epoch + 1) % config.knnEvery == 0 || last {
                knn = try knnAccuracy(bank: train, test: test)
            }
            let record = SSLEpochRecord(epoch: epoch + 1, loss: lossSum / Double(stepsPerEpoch),
                                        metrics: metricOrder.map { ($0, metricSums[$0]! / Double(stepsPerEpoch)) },
                                        knnTop1: knn, clusterInertia: inertia, pseudoLabelsKept: kept,
                                        learningRate: optimizer.learningRate, seconds: Clock.now() - start,
                                        steps: stepsPerEpoch)
            epochsDone += 1
            if try !onEpoch(record) { return true }
            if stopped { return true }
        }
        return false
    }
}

extension SSLTrainer {
    /// Makes pre-training data-parallel over `group` (call on every rank with the same settings,
    /// before training): every rank builds the same global batch of views and trains its shard
    /// (`MoCo.step`: cross-rank shuffle-BN, all-gathered keys into one queue, pairs inside the
    /// shard); gradients of the query encoder, Mixer and cluster head are averaged over ranks; after
    /// every epoch the ranks take rank 0's BatchNorm statistics and prove they hold identical state;
    /// SAMix-C's clustering and the kNN monitor all-gather features extracted in shares. Checks that
    /// every rank agrees on the settings and copies rank 0's state to every rank. One process: nothing.
    public func distribute(over group: ProcessGroup, bucketCapMB: Double = DataParallel.defaultBucketCapMB) throws {
        guard group.isDistributed else { return }
        try require(dataParallel == nil, "the SSL trainer is already data-parallel")
        try require(config.batchSize % group.size == 0 && config.batchSize / group.size >= 2,
                    "the SSL batch size \(config.batchSize) must be a multiple of the \(group.size) ranks (≥ 2 images each)")
        var lines = SSLCheckpoint.identity(self).sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
        lines += ["epochs_done=\(epochsDone)", "step=\(step)", "bucket_cap_mb=\(bucketCapMB)"]
        lines += stateTensors.map { "tensor \($0.0) \($0.1.shape)" }
        try group.requireSame(lines, what: "the SSL model and settings")
        try group.broadcast(stateTensors.map { $0.1 })
        dataParallel = try DataParallel(group: group, syncBatchNorm: false, bucketCapMB: bucketCapMB)
    }

    /// Every module's parameters and buffers and the queue (what must be identical on every rank).
    var stateTensors: [(String, Tensor)] {
        var out: [(String, Tensor)] = []
        for (prefix, m) in SSLCheckpoint.modules(model) { out += m.stateDict().map { (prefix + $0.0, $0.1) } }
        out.append(("queue.keys", model.queue.keys))
        return out
    }

    /// Rank 0's BatchNorm statistics to every rank, then a check that all state is bit-identical.
    func synchronizeAndVerify(after epoch: Int) throws {
        guard let dp = dataParallel else { return }
        var buffers: [Tensor] = []
        for (_, m) in SSLCheckpoint.modules(model) { buffers += m.namedBuffers().map { $0.1 } }
        try dp.group.broadcast(buffers)
        try dp.group.requireIdentical(stateTensors, what: "the SSL parameters, buffers and queue after epoch \(epoch)")
    }
}

/// Linear probe of a frozen backbone on a labelled dataset (docs/method.md §5.7): GAP features once, then
/// `LinearProbe.fit`.
public enum SSLEvaluation {
    public static func linearProbe(backbone: Backbone, train: ImageDataset, test: ImageDataset,
                                   normalization: Normalization, probe: LinearProbe) throws -> LinearProbe.Result {
        let ftr = try SSLFeatures.extract(backbone, dataset: train, normalization: normalization)
        let fte = try SSLFeatures.extract(backbone, dataset: test, normalization: normalization)
        return try probe.fit(trainFeatures: ftr, trainLabels: train.labels.map { Int($0) }, testFeatures: fte,
                             testLabels: test.labels.map { Int($0) }, classes: Swift.max(train.classCount, test.classCount))
    }
}
