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
            try t.synchronizeForEvaluation()
            let e = try Trainer.evaluate(t.model, on: source, dataParallel: t.dataParallel)
            outLoss?.pointee = e.loss
            outAccuracy?.pointee = e.accuracy
        }
    }
}
