import Glibc
import SAMix

// Trainers: the engine's `Trainer` (objective + optimizer + schedule) over a model handle. A trainer
// shares its model's lock, so training and direct model calls from other threads never interleave.

/// A trainer plus the input normalisation fixed by its first training data.
final class TrainerBox {
    let trainer: Trainer
    var normalization: Normalization?
    /// The creation arguments (saved in checkpoints as `config.*` metadata); they are also the
    /// trainer's front-end run settings, compared when a checkpoint is resumed.
    var config: TrainerConfig? { didSet { trainer.runSettings = config?.metadata ?? [:] } }
    init(_ trainer: Trainer) { self.trainer = trainer }
}

/// A non-shuffling, non-augmenting loader over a dataset for evaluating a trainer's networks,
/// normalised like its training data; checks the batch size and that the data fits the model.
func evaluationLoader(_ b: TrainerBox, _ ds: ImageDataset, batchSize: Int64) throws -> DataLoader {
    guard batchSize >= 1, batchSize <= 1 << 20 else {
        throw CAPIError(.invalidArgument, "batch_size must be in 1...\(1 << 20), got \(batchSize)")
    }
    try checkDataset(ds, fits: b.trainer.model)
    let norm = b.normalization ?? Normalization.standard(for: ds)
    return try DataLoader(dataset: ds, batchSize: Int(batchSize), shuffle: false, normalization: norm, training: false)
}

/// Checks that a dataset's images and labels fit a model's input channels and class count.
func checkDataset(_ ds: ImageDataset, fits model: ImageClassifier) throws {
    guard ds.channels == model.inChannels else {
        throw CAPIError(.shape, "images have \(ds.channels) channels, the model expects \(model.inChannels)")
    }
    guard ds.classCount <= model.numClasses else {
        throw CAPIError(.invalidArgument, "data has \(ds.classCount) classes, the model only \(model.numClasses)")
    }
}

@_cdecl("samix_trainer_create")
public func samix_trainer_create(_ model: UInt64, _ mix: UnsafePointer<CChar>?, _ alpha: Double,
                                 _ labelSmoothing: Double, _ optimizer: UnsafePointer<CChar>?, _ lr: Double,
                                 _ momentum: Double, _ weightDecay: Double, _ nesterov: Int32,
                                 _ schedule: UnsafePointer<CChar>?, _ warmupSteps: Int64, _ seed: UInt64,
                                 _ out: UnsafeMutablePointer<UInt64>?) -> Int32 {
    guarded("samix_trainer_create") {
        let out = try nonNull(out, "out")
        let mixName = try mix == nil ? "vanilla" : readString(mix, "mix", maxBytes: 64)
        let optName = try optimizer == nil ? "sgd" : readString(optimizer, "optimizer", maxBytes: 64).lowercased()
        let schedName = try schedule == nil ? "cosine" : readString(schedule, "schedule", maxBytes: 64).lowercased()
        for (v, n) in [(lr, "lr"), (momentum, "momentum"), (weightDecay, "weight_decay"),
                       (labelSmoothing, "label_smoothing")] where !v.isFinite {
            throw CAPIError(.invalidArgument, "\(n) must be finite, got \(v)")
        }
        guard labelSmoothing >= 0, labelSmoothing < 1 else {
            throw CAPIError(.invalidArgument, "label_smoothing must be in [0, 1), got \(labelSmoothing)")
        }
        guard warmupSteps >= 0, warmupSteps <= 1 << 40 else {
            throw CAPIError(.invalidArgument, "warmup_steps must be ≥ 0, got \(warmupSteps)")
        }
        let entry = try Registry.shared.entry(model, .model)
        guard let net = entry.object as? ImageClassifier else { throw CAPIError(.wrongHandleKind, "not a model") }
        let id: UInt64 = try entry.lock.lockedForCall {
            let objective = try ObjectiveRegistry.make(mixName, alpha: try optionalAlpha(alpha),
                                                       labelSmoothing: Float(labelSmoothing))
            let params = try Trainer.parameters(model: net, objective: objective)
            let opt = try OptimizerFactory.make(optName, parameters: params, lr: Float(lr), momentum: Float(momentum),
                                                weightDecay: Float(weightDecay), nesterov: nesterov != 0)
            let sched = try LearningRateSchedule.named(schedName, baseLR: Float(lr), warmupSteps: Int(warmupSteps))
            let t = Trainer(model: net, objective: objective, optimizer: opt, schedule: sched, seed: seed)
            let box = TrainerBox(t)
            box.config = TrainerConfig(mix: mixName, alpha: try optionalAlpha(alpha), labelSmoothing: labelSmoothing,
                                       optimizer: optName, learningRate: lr, momentum: momentum, weightDecay: weightDecay,
                                       nesterov: nesterov != 0, schedule: schedName, warmupSteps: Int(warmupSteps))
            return Registry.shared.insert(box, kind: .trainer, sharing: entry)
        }
        out.pointee = id
    }
}

@_cdecl("samix_trainer_free")
public func samix_trainer_free(_ handle: UInt64) -> Int32 {
    freeHandle("samix_trainer_free", handle, .trainer)
}

/// The dataset behind a dataset handle (a value copy; pixels are copy-on-write, not duplicated).
func datasetValue(_ handle: UInt64) throws -> ImageDataset {
    try Registry.shared.with(handle, .dataset, as: Box<ImageDataset>.self) { $0.value }
}

/// One data set argument of `samix_trainer_fit`: a uint8 dataset handle (`dataset` ≠ 0) or a float32
/// NCHW array with int64 labels (`x` ≠ NULL), never both; nil when neither is given.
func fitDataArgument(_ b: TrainerBox, _ name: String, _ dataset: UInt64, _ x: UnsafePointer<Float>?,
                     _ shape: UnsafePointer<Int64>?, _ labels: UnsafePointer<Int64>?) throws -> FitData? {
    if dataset != 0 {
        guard x == nil, shape == nil, labels == nil else {
            throw CAPIError(.invalidArgument, "\(name): give a dataset handle or an array (x, shape, labels), not both")
        }
        let ds = try datasetValue(dataset)
        try checkDataset(ds, fits: b.trainer.model)
        return .dataset(ds)
    }
    guard x != nil else {
        guard shape == nil, labels == nil else {
            throw CAPIError(.invalidArgument, "\(name): shape or labels given without x")
        }
        return nil
    }
    let (images, y) = try readArrayData(b.trainer, x, shape, labels)
    return .array(images, y)
}

/// A validated data set of `samix_trainer_fit`.
enum FitData {
    case dataset(ImageDataset)
    case array(Tensor, [Int])

    /// Channels and spatial size.
    var imageShape: [Int] {
        switch self {
        case .dataset(let d): return [d.channels, d.height, d.width]
        case .array(let t, _): return Array(t.shape.dropFirst())
        }
    }
}

/// The training loop in the engine (`Trainer.fit`), with its records sent to `callback` as JSON text.
@_cdecl("samix_trainer_fit")
public func samix_trainer_fit(_ handle: UInt64,
                              _ trainData: UInt64, _ trainX: UnsafePointer<Float>?, _ trainShape: UnsafePointer<Int64>?,
                              _ trainLabels: UnsafePointer<Int64>?,
                              _ valData: UInt64, _ valX: UnsafePointer<Float>?, _ valShape: UnsafePointer<Int64>?,
                              _ valLabels: UnsafePointer<Int64>?,
                              _ epochs: Int64, _ batchSize: Int64, _ augment: Int32, _ evalBatchSize: Int64,
                              _ stepRecords: Int32, _ callback: RecordCallback?, _ user: UnsafeMutableRawPointer?) -> Int32 {
    guarded("samix_trainer_fit") {
        guard batchSize >= 1, batchSize <= 1 << 20 else {
            throw CAPIError(.invalidArgument, "batch_size must be in 1...\(1 << 20), got \(batchSize)")
        }
        guard evalBatchSize >= 1, evalBatchSize <= 1 << 20 else {
            throw CAPIError(.invalidArgument, "eval_batch_size must be in 1...\(1 << 20), got \(evalBatchSize)")
        }
        guard epochs >= 1, epochs <= 1 << 30 else {
            throw CAPIError(.invalidArgument, "epochs must be ≥ 1, got \(epochs)")
        }
        guard augment == 0 || augment == 1 else { throw CAPIError(.invalidArgument, "augment must be 0 or 1, got \(augment)") }
        guard stepRecords == 0 || stepRecords == 1 else {
            throw CAPIError(.invalidArgument, "step_records must be 0 or 1, got \(stepRecords)")
        }
        try Registry.shared.with(handle, .trainer, as: TrainerBox.self) { b in
            let t = b.trainer
            guard let train = try fitDataArgument(b, "train", trainData, trainX, trainShape, trainLabels) else {
                throw CAPIError(.invalidArgument, "train: a dataset handle or an array x is required")
            }
            let val = try fitDataArgument(b, "val", valData, valX, valShape, valLabels)
            if let val, Array(val.imageShape.dropFirst()) != Array(train.imageShape.dropFirst()) {
                throw CAPIError(.shape, "validation images are \(val.imageShape), training images \(train.imageShape)")
            }
            guard t.epochsDone < Int(epochs) else { return }  // already trained that far: nothing to do
            let channels = train.imageShape[0]
            let aug: Augmentation = augment == 0 ? .none
                : (channels == 3 ? .cifar : try Augmentation(padding: 2, horizontalFlip: true))
            let source: BatchSource
            switch train {
            case .dataset(let ds):
                let norm = b.normalization ?? Normalization.standard(for: ds)
                b.normalization = norm
                source = try DataLoader(dataset: ds, batchSize: Int(batchSize), shuffle: true, dropLast: ds.count > Int(batchSize),
                                        seed: t.seed, normalization: norm, augmentation: aug)
            case .array(let images, let y):
                source = try ArrayBatchSource(images: images, labels: y, batchSize: Int(batchSize), shuffle: true,
                                              dropLast: y.count > Int(batchSize), seed: t.seed, augmentation: aug)
            }
            var evaluations: [FitEvaluation] = []
            switch val {
            case .dataset(let ds)?:
                evaluations.append(FitEvaluation("val", try evaluationLoader(b, ds, batchSize: evalBatchSize)))
            case .array(let images, let y)?:
                evaluations.append(FitEvaluation("val", try ArrayBatchSource(images: images, labels: y,
                    batchSize: Int(evalBatchSize), shuffle: false, training: false)))
            case nil: break
            }
            func send(_ text: String) -> Bool {
                guard let callback else { return true }
                return text.withCString { callback(user, $0) } == 0
            }
            try t.fit(source, epochs: Int(epochs), evaluations: evaluations,
                      onStep: stepRecords != 0 && callback != nil ? { send(FitRecordJSON.encode($0)) } : nil,
                      onEpoch: { send(FitRecordJSON.encode($0)) })
        }
    }
}

/// Mean cross-entropy and top-1 accuracy of the trainer's model (evaluation mode) on a dataset.
@_cdecl("samix_trainer_evaluate")
public func samix_trainer_evaluate(_ handle: UInt64, _ data: UInt64, _ batchSize: Int64,
                                   _ outLoss: UnsafeMutablePointer<Double>?, _ outAccuracy: UnsafeMutablePointer<Double>?) -> Int32 {
    guarded("samix_trainer_evaluate") {
        let ds = try datasetValue(data)
        try Registry.shared.with(handle, .trainer, as: TrainerBox.self) { b in
            let t = b.trainer
            let loader = try evaluationLoader(b, ds, batchSize: batchSize)
            try t.synchronizeForEvaluation()
            let e = try Trainer.evaluate(t.model, on: loader, dataParallel: t.dataParallel)
            outLoss?.pointee = e.loss
            outAccuracy?.pointee = e.accuracy
        }
    }
}

/// out[2] = {epochs done, steps done}.
@_cdecl("samix_trainer_progress")
public func samix_trainer_progress(_ handle: UInt64, _ out: UnsafeMutablePointer<Int64>?) -> Int32 {
    guarded("samix_trainer_progress") {
        let out = try nonNull(out, "out")
        try Registry.shared.with(handle, .trainer, as: TrainerBox.self) { b in
            out[0] = Int64(b.trainer.epochsDone)
            out[1] = Int64(b.trainer.stepsDone)
        }
    }
}

/// Makes the trainer data-parallel when the process was started by mpirun with more than one rank
/// (`Trainer.distributeIfLaunched`); out_active = 1 if it now is. Every rank must call it.
@_cdecl("samix_trainer_distribute")
public func samix_trainer_distribute(_ handle: UInt64, _ syncBatchNorm: Int32, _ bucketCapMB: Double,
                                     _ outActive: UnsafeMutablePointer<Int32>?) -> Int32 {
    guarded("samix_trainer_distribute") {
        guard !bucketCapMB.isNaN, bucketCapMB.isFinite || bucketCapMB < 0, bucketCapMB <= 1_048_576 else {
            throw CAPIError(.invalidArgument, "bucket_cap_mb must be a finite number of MiB (< 0 = the default), got \(bucketCapMB)")
        }
        let cap = bucketCapMB < 0 ? DataParallel.defaultBucketCapMB : bucketCapMB
        try Registry.shared.with(handle, .trainer, as: TrainerBox.self) { b in
            let active = try b.trainer.distributeIfLaunched(syncBatchNorm: syncBatchNorm != 0, bucketCapMB: cap)
            outActive?.pointee = active ? 1 : 0
        }
    }
}
