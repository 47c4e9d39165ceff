import SAMixCore
import SAMixOps

/// He et al. (2016) CIFAR ResNets (ResNet-20/32/56/110): 3×3 conv stem with 16 channels, three
/// stages of n basic blocks with 16/32/64 channels (strides 1, 2, 2), depth = 6n + 2, and the
/// parameter-free option-A shortcut. ResNet-20 has 0.27 M parameters and 40.6 MMAC per 32×32 image.
public final class ResNetCIFAR: Backbone {
    /// conv3×3 → BN → ReLU → conv3×3 → BN, plus the identity or option-A shortcut, → ReLU.
    public final class Block: Module, ResidualBlock {
        public let conv1: Conv2d, bn1: BatchNorm2d, conv2: Conv2d, bn2: BatchNorm2d
        public let inChannels: Int, outChannels: Int, stride: Int

        init(_ cin: Int, _ cout: Int, stride: Int, rng: inout SplitMix64) throws {
            conv1 = try Conv2d(cin, cout, kernelSize: 3, stride: stride, padding: 1, rng: &rng)
            bn1 = try BatchNorm2d(cout)
            conv2 = try Conv2d(cout, cout, kernelSize: 3, stride: 1, padding: 1, rng: &rng)
            bn2 = try BatchNorm2d(cout)
            inChannels = cin; outChannels = cout; self.stride = stride
            super.init()
        }

        public override var children: [(String, Module)] {
            [("conv1", conv1), ("bn1", bn1), ("conv2", conv2), ("bn2", bn2)]
        }

        public func callAsFunction(_ x: Tensor) throws -> Tensor {
            let out = try bn2(try conv2(try bn1(try conv1(x), relu: true)))
            let short = (stride == 1 && inChannels == outChannels)
                ? x : try shortcutA(x, outChannels: outChannels, stride: stride)
            return try (out + short).relu()
        }
    }

    public let conv1: Conv2d, bn1: BatchNorm2d
    public let stages: [[Block]]
    public let depth: Int, inChannels: Int

    /// - Parameters: depth 6n + 2 (20, 32, 44, 56, 110); `width` multiplies the 16/32/64 channels.
    public init(depth: Int, inChannels: Int = 3, width: Int = 1, rng: inout SplitMix64) throws {
        try require(depth >= 8 && (depth - 2) % 6 == 0, "CIFAR ResNet depth must be 6n+2 (20, 32, 56, …), got \(depth)")
        try require(inChannels >= 1 && width >= 1, "ResNet needs positive input channels and width")
        let n = (depth - 2) / 6
        let widths = [16 * width, 32 * width, 64 * width]
        conv1 = try Conv2d(inChannels, widths[0], kernelSize: 3, padding: 1, rng: &rng)
        bn1 = try BatchNorm2d(widths[0])
        stages = try Backbone.buildStages(inChannels: widths[0], widths: widths, counts: [n, n, n]) { cin, cout, stride in
            try Block(cin, cout, stride: stride, rng: &rng)
        }
        self.depth = depth
        self.inChannels = inChannels
        super.init()
    }

    public override var stageChannels: [Int] { Backbone.channels(stages) }
    public override var stageStrides: [Int] { [1, 2, 4] }

    public override var children: [(String, Module)] {
        [("conv1", conv1), ("bn1", bn1)] + Backbone.stageChildren(stages)
    }

    public override func forwardStages(_ x: Tensor, hook: ((Int, Tensor) throws -> Tensor)? = nil) throws -> [Tensor] {
        try checkInput(x, channels: inChannels)
        return try runStages(x, hook: hook, stem: { try self.bn1(try self.conv1($0), relu: true) }, stages: stages)
    }
}
