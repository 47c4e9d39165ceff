import SAMixCore
import SAMixOps

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
