import SAMixCore
import SAMixOps
import SAMixNN
import SAMixData
import SAMixMixing

extension ImageClassifier {
    /// Mean cross-entropy of a batch and its gradient with respect to every parameter, in the
    /// model's current mode (training mode uses batch statistics and updates BN running averages,
    /// like a PyTorch training step). Existing `.grad`s are cleared first and left holding the result.
    /// - Returns: the loss and (name, gradient) pairs in `namedParameters()` order; a frozen
    ///   parameter gets a zero gradient.
    public func lossAndGradients(_ x: Tensor, labels: [Int], labelSmoothing: Float = 0) throws -> (loss: Float, gradients: [(String, Tensor)]) {
        zeroGrad()
        let loss = try GradMode.withEnabled { try self(x).crossEntropy(labels: labels, labelSmoothing: labelSmoothing) }
        try loss.backward()
        var out: [(String, Tensor)] = []
        for (name, p) in namedParameters() {
            out.append((name, try p.grad ?? Tensor(zeros: p.shape)))
        }
        return (loss.data[0], out)
    }
}
