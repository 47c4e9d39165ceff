import SAMix

// One training step on a caller-provided float batch (custom loops in notebooks).

/// Runs one step of the trainer's objective on x (N×C×H×W float32, used as given: no normalisation
/// or augmentation) and labels[N]. `total_steps` > 0 drives the learning-rate schedule (the step
/// index is the trainer's step count); 0 keeps the optimizer's current rate. The loss goes to *loss.
/// x is not modified (mixing objectives work on a copy).
@_cdecl("samix_trainer_train_step")
public func samix_trainer_train_step(_ handle: UInt64, _ x: UnsafePointer<Float>?, _ shape: UnsafePointer<Int64>?,
                                     _ labels: UnsafePointer<Int64>?, _ totalSteps: Int64,
                                     _ loss: UnsafeMutablePointer<Double>?) -> Int32 {
    guarded("samix_trainer_train_step") {
        guard totalSteps >= 0, totalSteps <= 1 << 40 else {
            throw CAPIError(.invalidArgument, "total_steps must be ≥ 0, got \(totalSteps)")
        }
        try Registry.shared.with(handle, .trainer, as: TrainerBox.self) { b in
            let t = b.trainer
            let (xp, dims) = try readImageBatch(x, shape, channels: t.model.inChannels)
            let lp = try nonNull(labels, "labels")
            var y = [Int](repeating: 0, count: dims[0])
            for i in 0..<dims[0] {
                guard lp[i] >= 0, lp[i] < Int64(t.model.numClasses) else {
                    throw CAPIError(.invalidArgument, "label \(lp[i]) at index \(i) is outside 0..<\(t.model.numClasses)")
                }
                y[i] = Int(lp[i])
            }
            if totalSteps > 0, Int(totalSteps) <= t.stepsDone {
                throw CAPIError(.invalidState, "the trainer is at step \(t.stepsDone), past total_steps = \(totalSteps)")
            }
            let images = try Tensor(uninitializedShape: dims)
            images.data.update(from: xp, count: images.count)
            let batch = Batch(images: images, labels: y, indices: Array(0..<dims[0]), epoch: t.epochsDone, index: t.stepsDone)
            let r = try t.trainStep(batch, totalSteps: totalSteps > 0 ? Int(totalSteps) : nil)
            loss?.pointee = r.loss
        }
    }
}
