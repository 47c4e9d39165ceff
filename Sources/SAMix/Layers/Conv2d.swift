/// Convolution layer. weight [Cout, Cin, k, k] (Kaiming normal, fan-out), optional bias [Cout] (zeros).
public final class Conv2d: Module {
    public let weight: Tensor
    public let bias: Tensor?
    public let stride: Int, padding: Int

    public init(_ inChannels: Int, _ outChannels: Int, kernelSize: Int, stride: Int = 1, padding: Int = 0,
                bias: Bool = false, rng: inout SplitMix64) throws {
        try require(inChannels > 0 && outChannels > 0 && kernelSize > 0,
                    "Conv2d needs positive channels and kernel size, got \(inChannels)→\(outChannels) k=\(kernelSize)")
        weight = try makeParameter([outChannels, inChannels, kernelSize, kernelSize])
        Init.kaimingNormalFanOut(weight, rng: &rng)
        self.bias = bias ? try makeParameter([outChannels]) : nil
        self.stride = stride
        self.padding = padding
        super.init()
    }

    public override var localParameters: [(String, Tensor)] {
        var p = [("weight", weight)]
        if let bias { p.append(("bias", bias)) }
        return p
    }

    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        try conv2d(x, weight: weight, bias: bias, stride: stride, padding: padding)
    }
}

/// Batch normalisation layer over channels: γ = 1, β = 0, running mean 0, running variance 1.
public final class BatchNorm2d: Module {
    public let weight: Tensor, bias: Tensor
    public let runningMean: Tensor, runningVar: Tensor
    public var momentum: Float, epsilon: Float

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

    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        try batchNorm2d(x, gamma: weight, beta: bias, runningMean: runningMean, runningVar: runningVar,
                        training: isTraining, momentum: momentum, epsilon: epsilon)
    }
}

/// Fully connected layer: weight [out, in], bias [out], PyTorch's default init U(±1/√in).
public final class Linear: Module {
    public let weight: Tensor
    public let bias: Tensor?

    public init(_ inFeatures: Int, _ outFeatures: Int, bias: Bool = true, rng: inout SplitMix64) throws {
        try require(inFeatures > 0 && outFeatures > 0, "Linear needs positive sizes, got \(inFeatures)→\(outFeatures)")
        weight = try makeParameter([outFeatures, inFeatures])
        let bound = 1 / Float(inFeatures).squareRoot()
        Init.uniform(weight, bound: bound, rng: &rng)
        if bias {
            let b = try makeParameter([outFeatures])
            Init.uniform(b, bound: bound, rng: &rng)
            self.bias = b
        } else { self.bias = nil }
        super.init()
    }

    public var inFeatures: Int { weight.shape[1] }
    public var outFeatures: Int { weight.shape[0] }

    public override var localParameters: [(String, Tensor)] {
        var p = [("weight", weight)]
        if let bias { p.append(("bias", bias)) }
        return p
    }

    public func callAsFunction(_ x: Tensor) throws -> Tensor { try linear(x, weight: weight, bias: bias) }
}
