import SAMixCore
import SAMixOps

/// ResNet-18/34 for small images (the "CIFAR stem" variant used by OpenMixup and kuangliu's
/// pytorch-cifar): 3×3 stride-1 stem conv with 64 channels, no max-pool, four stages of basic
/// blocks with 64/128/256/512 channels (strides 1, 2, 2, 2) and option-B shortcuts (1×1 conv + BN)
/// where the shape changes. ResNet-18: 11.17 M parameters, 555 MMAC per 32×32 image.
public final class ResNet: Backbone {
    /// conv3×3 → BN → ReLU → conv3×3 → BN, plus identity or (1×1 conv + BN) shortcut, → ReLU.
    public final class BasicBlock: Module, ResidualBlock {
        public let conv1: Conv2d, bn1: BatchNorm2d, conv2: Conv2d, bn2: BatchNorm2d
        public let downsample: (Conv2d, BatchNorm2d)?
        public let outChannels: Int

        init(_ cin: Int, _ cout: Int, stride: Int, rng: inout SplitMix64) throws {
            conv1 = try Conv2d(cin, cout, kernelSize: 3, stride: stride, padding: 1, rng: &rng)
            bn1 = try BatchNorm2d(cout)
            conv2 = try Conv2d(cout, cout, kernelSize: 3, padding: 1, rng: &rng)
            bn2 = try BatchNorm2d(cout)
            if stride != 1 || cin != cout {
                downsample = (try Conv2d(cin, cout, kernelSize: 1, stride: stride, rng: &rng), try BatchNorm2d(cout))
            } else { downsample = nil }
            outChannels = cout
            super.init()
        }

        public override var children: [(String, Module)] {
            var c: [(String, Module)] = [("conv1", conv1), ("bn1", bn1), ("conv2", conv2), ("bn2", bn2)]
            if let (dc, db) = downsample { c += [("downsample.0", dc), ("downsample.1", db)] }
            return c
        }

        public func callAsFunction(_ x: Tensor) throws -> Tensor {
            let out = try bn2(try conv2(try bn1(try conv1(x), relu: true)))
            let short = try downsample.map { try $0.1(try $0.0(x)) } ?? x
            return try (out + short).relu()
        }
    }

    public let conv1: Conv2d, bn1: BatchNorm2d
    public let stages: [[BasicBlock]]
    public let inChannels: Int

    /// - Parameters: `blocks` per stage ([2,2,2,2] = ResNet-18, [3,4,6,3] = ResNet-34).
    public init(blocks: [Int] = [2, 2, 2, 2], inChannels: Int = 3, baseWidth: Int = 64, rng: inout SplitMix64) throws {
        try require(blocks.count >= 1 && blocks.allSatisfy { $0 >= 1 }, "ResNet blocks per stage must be ≥ 1, got \(blocks)")
        try require(inChannels >= 1 && baseWidth >= 1, "ResNet needs positive input channels and width")
        conv1 = try Conv2d(inChannels, baseWidth, kernelSize: 3, padding: 1, rng: &rng)
        bn1 = try BatchNorm2d(baseWidth)
        stages = try Backbone.buildStages(inChannels: baseWidth, widths: blocks.indices.map { baseWidth << $0 },
                                          counts: blocks) { cin, cout, stride in
            try BasicBlock(cin, cout, stride: stride, rng: &rng)
        }
        self.inChannels = inChannels
        super.init()
    }

    public override var stageChannels: [Int] { Backbone.channels(stages) }
    public override var stageStrides: [Int] { stages.indices.map { 1 << $0 } }

    public override var children: [(String, Module)] {
        [("conv1", conv1), ("bn1", bn1)] + Backbone.stageChildren(stages)
    }

    public override func forwardStages(_ x: Tensor, hook: ((Int, Tensor) throws -> Tensor)? = nil) throws -> [Tensor] {
        try checkInput(x, channels: inChannels)
        return try runStages(x, hook: hook, stem: { try self.bn1(try self.conv1($0), relu: true) }, stages: stages)
    }
}
