import Glibc
import SAMix

// Training and evaluation on caller-owned float32 NCHW arrays (already normalised), read in place
// through the engine's `ArrayBatchSource` for the duration of the call.

/// Validates a float image batch for the trainer's model and its labels; returns the borrowed
/// tensor and the labels.
func readArrayData(_ t: Trainer, _ x: UnsafePointer<Float>?, _ shape: UnsafePointer<Int64>?,
                   _ labels: UnsafePointer<Int64>?) throws -> (Tensor, [Int]) {
    let (xp, dims) = try readImageBatch(x, shape, channels: t.model.inChannels)
    let n = dims[0]
    let lp = try nonNull(labels, "labels")
    var y = [Int](repeating: 0, count: n)
    let k = Int64(t.model.numClasses)
    for i in 0..<n {
        let v = lp[i]
        guard v >= 0, v < k else {
            throw CAPIError(.invalidArgument, "labels[\(i)] = \(v) is outside 0..<\(k)")
        }
        y[i] = Int(v)
    }
    return (try Tensor(borrowing: UnsafeMutablePointer(mutating: xp), shape: dims), y)
}

@_cdecl("samix_trainer_train_epoch_array")
public func samix_trainer_train_epoch_array(_ handle: UInt64, _ x: UnsafePointer<Float>?, _ shape: UnsafePointer<Int64>?,
                                            _ labels: UnsafePointer<Int64>?, _ batchSize: Int64, _ augment: Int32,
                                            _ totalEpochs: Int64, _ callback: StepCallback?,
                                            _ user: UnsafeMutableRawPointer?, _ outLoss: UnsafeMutablePointer<Double>?,
                                            _ outLR: UnsafeMutablePointer<Double>?) -> Int32 {
    guarded("samix_trainer_train_epoch_array") {
        guard batchSize >= 1, batchSize <= 1 << 20 else {
            throw CAPIError(.invalidArgument, "batch_size must be in 1...\(1 << 20), got \(batchSize)")
        }
        guard totalEpochs >= 1, totalEpochs <= 1 << 30 else {
            throw CAPIError(.invalidArgument, "epochs must be ≥ 1, got \(totalEpochs)")
        }
        try Registry.shared.with(handle, .trainer, as: TrainerBox.self) { b in
            let t = b.trainer
            guard Int(totalEpochs) > t.epochsDone else {
                throw CAPIError(.invalidState, "training is already at epoch \(t.epochsDone) of \(totalEpochs)")
            }
            let (images, y) = try readArrayData(t, x, shape, labels)
            let aug: Augmentation = augment == 0 ? .none
                : (images.shape[1] == 3 ? .cifar : try Augmentation(padding: 2, horizontalFlip: true))
            let source = try ArrayBatchSource(images: images, labels: y, batchSize: Int(batchSize), shuffle: true,
                                              dropLast: y.count > Int(batchSize), seed: t.seed, augmentation: aug)
            var stop = false
            let r: (loss: Double, lr: Double, metrics: [String: Double])
            do {
                r = try t.trainEpoch(source, totalEpochs: Int(totalEpochs), onStep: { step, loss in
                    if let callback, !stop, callback(user, Int64(step), loss) != 0 { stop = true }
                }, shouldStop: { stop })
            } catch let e as TrainingInterrupted {
                throw CAPIError(.invalidState, "interrupted by the step callback (\(e); the next call continues it)")
            }
            b.epochMetrics = r.metrics.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
            outLoss?.pointee = r.loss
            outLR?.pointee = r.lr
        }
    }
}

@_cdecl("samix_trainer_evaluate_array")
public func samix_trainer_evaluate_array(_ handle: UInt64, _ x: UnsafePointer<Float>?, _ shape: UnsafePointer<Int64>?,
                                         _ labels: UnsafePointer<Int64>?, _ batchSize: Int64,
                                         _ outLoss: UnsafeMutablePointer<Double>?,
                                         _ outAccuracy: UnsafeMutablePointer<Double>?) -> Int32 {
    guarded("samix_trainer_evaluate_array") {
        guard batchSize >= 1, batchSize <= 1 << 20 else {
            throw CAPIError(.invalidArgument, "batch_size must be in 1...\(1 << 20), got \(batchSize)")
        }
        try Registry.shared.with(handle, .trainer, as: TrainerBox.self) { b in
            let t = b.trainer
            let (images, y) = try readArrayData(t, x, shape, labels)
            let source = try ArrayBatchSource(images: images, labels: y, batchSize: Int(batchSize), shuffle: false,
                                              training: false)
            let e = try Trainer.evaluate(t.model, on: source)
            outLoss?.pointee = e.loss
            outAccuracy?.pointee = e.accuracy
        }
    }
}
