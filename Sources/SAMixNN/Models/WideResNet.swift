import SAMixCore
import SAMixOps

/// Wide ResNet WRN-d-k (Zagoruyko & Komodakis 2016): 3×3 stem with 16 channels, three stages of
/// (d − 4)/6 pre-activation blocks with 16k/32k/64k channels (strides 1, 2, 2), dropout between
/// the convolutions (default 0), 1×1 conv shortcuts where the shape changes, and a final BN → ReLU.
public final class WideResNet: Backbone {
    public final class Block: Module, ResidualBlock {
        public let bn1: BatchNorm2d, conv1: Conv2d, bn2: BatchNorm2d, conv2: Conv2d
        public let shortcut: Conv2d?
        public let outChannels: Int
        public var dropRate: Float
        var rng: SplitMix64

        init(_ cin: Int, _ cout: Int, stride: Int, dropRate: Float, rng: inout SplitMix64) throws {
            bn1 = try BatchNorm2d(cin)
            conv1 = try Conv2d(cin, cout, kernelSize: 3, stride: stride, padding: 1, rng: &rng)
            bn2 = try BatchNorm2d(cout)
            conv2 = try Conv2d(cout, cout, kernelSize: 3, padding: 1, rng: &rng)
            shortcut = (stride != 1 || cin != cout) ? try Conv2d(cin, cout, kernelSize: 1, stride: stride, rng: &rng) : nil
            outChannels = cout
            self.dropRate = dropRate
            self.rng = SplitMix64(seed: rng.next())
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
            var h = try bn2(try conv1(a), relu: true)
            if dropRate > 0 && isTraining { h = try h.dropout(p: dropRate, training: true, rng: &rng) }
            return try conv2(h) + short
        }
    }

    public let conv1: Conv2d
    public let stages: [[Block]]
    public let finalBN: BatchNorm2d
    public let inChannels: Int

    public init(depth: Int = 28, widen: Int = 10, dropRate: Float = 0, inChannels: Int = 3, rng: inout SplitMix64) throws {
        try require(depth >= 10 && (depth - 4) % 6 == 0, "WRN depth must be 6n+4 (16, 22, 28, …), got \(depth)")
        try require(widen >= 1 && widen <= 64, "WRN widening factor must be in 1...64, got \(widen)")
        try require(dropRate >= 0 && dropRate < 1, "WRN dropout must be in [0, 1)")
        try require(inChannels >= 1, "WRN needs positive input channels")
        let n = (depth - 4) / 6
        conv1 = try Conv2d(inChannels, 16, kernelSize: 3, padding: 1, rng: &rng)
        stages = try Backbone.buildStages(inChannels: 16, widths: [16 * widen, 32 * widen, 64 * widen],
                                          counts: [n, n, n]) { cin, cout, stride in
            try Block(cin, cout, stride: stride, dropRate: dropRate, rng: &rng)
        }
        finalBN = try BatchNorm2d(64 * widen)
        self.inChannels = inChannels
        super.init()
    }

    public override var stageChannels: [Int] { Backbone.channels(stages) }
    public override var stageStrides: [Int] { [1, 2, 4] }

    public override var children: [(String, Module)] {
        [("conv1", conv1)] + Backbone.stageChildren(stages) + [("bn_final", finalBN)]
    }

    public override func forwardStages(_ x: Tensor, hook: ((Int, Tensor) throws -> Tensor)? = nil) throws -> [Tensor] {
        try checkInput(x, channels: inChannels)
        return try runStages(x, hook: hook, stem: { try self.conv1($0) }, stages: stages,
                             finalize: { try self.finalBN($0, relu: true) })
    }
}
