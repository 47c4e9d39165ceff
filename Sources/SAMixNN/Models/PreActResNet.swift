import SAMixCore
import SAMixOps

/// Pre-activation ResNet-18 (He et al. 2016b) with the CIFAR stem: blocks compute
/// BN → ReLU → conv3×3 → BN → ReLU → conv3×3 and add the shortcut (identity, or a 1×1 conv applied
/// to the pre-activated input when the shape changes). Stage outputs are the raw block outputs;
/// the last stage is followed by a final BN → ReLU (as in the reference implementations).
public final class PreActResNet: Backbone {
    public final class Block: Module, ResidualBlock {
        public let bn1: BatchNorm2d, conv1: Conv2d, bn2: BatchNorm2d, conv2: Conv2d
        public let shortcut: Conv2d?
        public let outChannels: Int

        init(_ cin: Int, _ cout: Int, stride: Int, rng: inout SplitMix64) throws {
            bn1 = try BatchNorm2d(cin)
            conv1 = try Conv2d(cin, cout, kernelSize: 3, stride: stride, padding: 1, rng: &rng)
            bn2 = try BatchNorm2d(cout)
            conv2 = try Conv2d(cout, cout, kernelSize: 3, padding: 1, rng: &rng)
            shortcut = (stride != 1 || cin != cout) ? try Conv2d(cin, cout, kernelSize: 1, stride: stride, rng: &rng) : nil
            outChannels = cout
            super.init()
        }

        public override var children: [(String, Module)] {
            var c: [(String, Module)] = [("bn1", bn1), ("conv1", conv1), ("bn2", bn2), ("conv2", conv2)]
            if let shortcut { c.append(("shortcut", shortcut)) }
            return c
        }

        public func callAsFunction(_ x: Tensor) throws -> Tensor {
            let a = try bn1(x, relu: true)
            let short = try shortcut.map { try $0(a) } ?? x
            let out = try conv2(try bn2(try conv1(a), relu: true))
            return try out + short
        }
    }

    public let conv1: Conv2d
    public let stages: [[Block]]
    public let finalBN: BatchNorm2d
    public let inChannels: Int

    public init(blocks: [Int] = [2, 2, 2, 2], inChannels: Int = 3, baseWidth: Int = 64, rng: inout SplitMix64) throws {
        try require(blocks.count >= 1 && blocks.allSatisfy { $0 >= 1 }, "PreActResNet blocks per stage must be ≥ 1")
        try require(inChannels >= 1 && baseWidth >= 1, "PreActResNet needs positive input channels and width")
        conv1 = try Conv2d(inChannels, baseWidth, kernelSize: 3, padding: 1, rng: &rng)
        stages = try Backbone.buildStages(inChannels: baseWidth, widths: blocks.indices.map { baseWidth << $0 },
                                          counts: blocks) { cin, cout, stride in
            try Block(cin, cout, stride: stride, rng: &rng)
        }
        finalBN = try BatchNorm2d(baseWidth << (blocks.count - 1))
        self.inChannels = inChannels
        super.init()
    }

    public override var stageChannels: [Int] { Backbone.channels(stages) }
    public override var stageStrides: [Int] { stages.indices.map { 1 << $0 } }

    public override var children: [(String, Module)] {
        [("conv1", conv1)] + Backbone.stageChildren(stages) + [("bn_final", finalBN)]
    }

    public override func forwardStages(_ x: Tensor, hook: ((Int, Tensor) throws -> Tensor)? = nil) throws -> [Tensor] {
        try checkInput(x, channels: inChannels)
        return try runStages(x, hook: hook, stem: { try self.conv1($0) }, stages: stages,
                             finalize: { try self.finalBN($0, relu: true) })
    }
}
