import SAMix

// Gradients of a model's cross-entropy, for research code that wants PyTorch-style `backward()`.

/// Mean cross-entropy of (x, labels) and its gradient w.r.t. every parameter, concatenated in
/// state-dict parameter order into `grads` (exactly parameter-count floats). Runs in the model's
/// current mode (training mode updates BN running statistics).
@_cdecl("samix_model_loss_grad")
public func samix_model_loss_grad(_ handle: UInt64, _ x: UnsafePointer<Float>?, _ shape: UnsafePointer<Int64>?,
                                  _ labels: UnsafePointer<Int64>?, _ labelSmoothing: Double,
                                  _ loss: UnsafeMutablePointer<Double>?, _ grads: UnsafeMutablePointer<Float>?,
                                  _ gradsCount: Int64) -> Int32 {
    guarded("samix_model_loss_grad") {
        try Registry.shared.with(handle, .model, as: ImageClassifier.self) { m in
            let (xp, dims) = try readImageBatch(x, shape, channels: m.inChannels)
            let lp = try nonNull(labels, "labels")
            let n = dims[0]
            var y = [Int](repeating: 0, count: n)
            for i in 0..<n {
                guard lp[i] >= 0, lp[i] < Int64(m.numClasses) else {
                    throw CAPIError(.invalidArgument, "label \(lp[i]) at index \(i) is outside 0..<\(m.numClasses)")
                }
                y[i] = Int(lp[i])
            }
            guard labelSmoothing >= 0, labelSmoothing < 1 else {
                throw CAPIError(.invalidArgument, "label_smoothing must be in [0, 1), got \(labelSmoothing)")
            }
            guard gradsCount == Int64(m.parameterCount) else {
                throw CAPIError(.shape, "grads buffer holds \(gradsCount) floats, the model has \(m.parameterCount) parameters")
            }
            let gp = try nonNull(grads, "grads")
            let lossOut = try nonNull(loss, "loss")
            let input = try Tensor(borrowing: UnsafeMutablePointer(mutating: xp), shape: dims)
            let (value, gradients) = try m.lossAndGradients(input, labels: y, labelSmoothing: Float(labelSmoothing))
            m.zeroGrad()
            var offset = 0
            for (_, g) in gradients {
                (gp + offset).update(from: g.data, count: g.count)
                offset += g.count
            }
            lossOut.pointee = Double(value)
        }
    }
}
