import SAMixCore
import SAMixOps

/// Batch normalisation layer over channels: γ = 1, β = 0, running mean 0, running variance 1.
public final class BatchNorm2d: Module {
    public let weight: Tensor, bias: Tensor
    public let runningMean: Tensor, runningVar: Tensor
    public var momentum: Float, epsilon: Float
    /// Synchronized batch normalisation: in training, statistics over the global batch of every rank
    /// of this group (see `batchNorm2d`); nil (default) = this process's batch only, as PyTorch DDP.
    public var synchronizedOver: ProcessGroup?

    public init(_ channels: Int, momentum: Float = 0.1, epsilon: Float = 1e-5) throws {
        try require(channels > 0, "BatchNorm2d needs a positive channel count, got \(channels)")
        weight = try makeParameter([channels])
        weight.fill(1)
        bias = try makeParameter([channels])
        runningMean = try Tensor(zeros: [channels])
        runningVar = try Tensor(repeating: 1, shape: [channels])
        self.momentum = momentum
        self.epsilon = epsilon
        super.init()
    }

    public override var localParameters: [(String, Tensor)] { [("weight", weight), ("bias", bias)] }
    public override var localBuffers: [(String, Tensor)] { [("running_mean", runningMean), ("running_var", runningVar)] }

    /// `relu`: BatchNorm followed by ReLU in one fused op (the same numbers as `bn(x).relu()`).
    public func callAsFunction(_ x: Tensor, relu: Bool = false) throws -> Tensor {
        try batchNorm2d(x, gamma: weight, beta: bias, runningMean: runningMean, runningVar: runningVar,
                        training: isTraining, momentum: momentum, epsilon: epsilon, synchronizedOver: synchronizedOver,
                        relu: relu)
    }
}

extension Module {
    /// Makes every `BatchNorm2d` in this module tree synchronized over `group` (nil: per process).
    /// - Returns: the number of layers changed.
    @discardableResult
    public func synchronizeBatchNorm(over group: ProcessGroup?) -> Int {
        var n = 0
        for case let bn as BatchNorm2d in allModules() {
            bn.synchronizedOver = group
            n += 1
        }
        return n
    }
}
