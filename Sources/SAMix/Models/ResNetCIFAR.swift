/// He et al. (2016) CIFAR ResNets (ResNet-20/32/56/110): 3×3 conv stem with 16 channels, three
/// stages of n basic blocks with 16/32/64 channels (strides 1, 2, 2), depth = 6n + 2, and the
/// parameter-free option-A shortcut. ResNet-20 has 0.27 M parameters and 40.6 MMAC per 32×32 image.
public final class ResNetCIFAR: Backbone {
    /// conv3×3 → BN → ReLU → conv3×3 → BN, plus the identity or option-A shortcut, → ReLU.
    public final class Block: Module {
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
            let out = try bn2(try conv2(try bn1(try conv1(x)).relu()))
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
        var stages: [[Block]] = []
        var cin = widths[0]
        for (s, c) in widths.enumerated() {
            var blocks: [Block] = []
            for b in 0..<n {
                blocks.append(try Block(cin, c, stride: (s > 0 && b == 0) ? 2 : 1, rng: &rng))
                cin = c
            }
            stages.append(blocks)
        }
        self.stages = stages
        self.depth = depth
        self.inChannels = inChannels
        super.init()
    }

    public override var stageChannels: [Int] { stages.map { $0.last?.outChannels ?? 0 } }
    public override var stageStrides: [Int] { [1, 2, 4] }

    public override var children: [(String, Module)] {
        var c: [(String, Module)] = [("conv1", conv1), ("bn1", bn1)]
        for (s, blocks) in stages.enumerated() {
            for (b, block) in blocks.enumerated() { c.append(("layer\(s + 1).\(b)", block)) }
        }
        return c
    }

    public override func forwardStages(_ x: Tensor, hook: ((Int, Tensor) throws -> Tensor)? = nil) throws -> [Tensor] {
        try checkInput(x, channels: inChannels)
        var h = try hook?(0, x) ?? x
        h = try bn1(try conv1(h)).relu()
        var outs: [Tensor] = []
        for (s, blocks) in stages.enumerated() {
            for block in blocks { h = try block(h) }
            if let hook { h = try hook(s + 1, h) }
            outs.append(h)
        }
        return outs
    }
}
