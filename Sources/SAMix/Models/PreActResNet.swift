/// Pre-activation ResNet-18 (He et al. 2016b) with the CIFAR stem: blocks compute
/// BN → ReLU → conv3×3 → BN → ReLU → conv3×3 and add the shortcut (identity, or a 1×1 conv applied
/// to the pre-activated input when the shape changes). Stage outputs are the raw block outputs;
/// the last stage is followed by a final BN → ReLU (as in the reference implementations).
public final class PreActResNet: Backbone {
    public final class Block: Module {
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
            let a = try bn1(x).relu()
            let short = try shortcut.map { try $0(a) } ?? x
            let out = try conv2(try bn2(try conv1(a)).relu())
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
        var stages: [[Block]] = []
        var cin = baseWidth
        for (s, count) in blocks.enumerated() {
            let cout = baseWidth << s
            var stage: [Block] = []
            for b in 0..<count {
                stage.append(try Block(cin, cout, stride: (s > 0 && b == 0) ? 2 : 1, rng: &rng))
                cin = cout
            }
            stages.append(stage)
        }
        self.stages = stages
        finalBN = try BatchNorm2d(cin)
        self.inChannels = inChannels
        super.init()
    }

    public override var stageChannels: [Int] { stages.map { $0.last?.outChannels ?? 0 } }
    public override var stageStrides: [Int] { stages.indices.map { 1 << $0 } }

    public override var children: [(String, Module)] {
        var c: [(String, Module)] = [("conv1", conv1)]
        for (s, blocks) in stages.enumerated() {
            for (b, block) in blocks.enumerated() { c.append(("layer\(s + 1).\(b)", block)) }
        }
        c.append(("bn_final", finalBN))
        return c
    }

    public override func forwardStages(_ x: Tensor, hook: ((Int, Tensor) throws -> Tensor)? = nil) throws -> [Tensor] {
        try checkInput(x, channels: inChannels)
        var h = try conv1(try hook?(0, x) ?? x)
        var outs: [Tensor] = []
        for (s, blocks) in stages.enumerated() {
            for block in blocks { h = try block(h) }
            if s == stages.count - 1 { h = try finalBN(h).relu() }
            if let hook { h = try hook(s + 1, h) }
            outs.append(h)
        }
        return outs
    }
}
