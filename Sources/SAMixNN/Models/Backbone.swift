import SAMixCore
import SAMixOps

/// A convolutional feature extractor made of stages. `forwardStages` returns every stage's output
/// feature map (the Mixer of AutoMix/SAMix reads stage 3, the heads read the last stage), and lets a
/// caller transform the input or a stage output on the way (ManifoldMix mixes hidden maps there).
open class Backbone: Module {
    /// Output channels of each stage, in order.
    open var stageChannels: [Int] { [] }
    /// Spatial downsampling factor of each stage's output relative to the input.
    open var stageStrides: [Int] { [] }

    /// Runs the network. `hook(k, t)` is called on the input (k = 0) and on the output of stage k
    /// (k = 1...stageCount) and its return value is used from then on. Returns the outputs of all
    /// stages (after the hook), e.g. 3 maps for ResNet-20, 4 for ResNet-18.
    open func forwardStages(_ x: Tensor, hook: ((Int, Tensor) throws -> Tensor)? = nil) throws -> [Tensor] {
        throw SAMixError.invalidState("\(type(of: self)) does not implement forwardStages")
    }

    /// Number of stages.
    public var stageCount: Int { stageChannels.count }
    /// Channels of the last stage (the head's input features).
    public var featureChannels: Int { stageChannels.last ?? 0 }

    /// Checks an input batch against the backbone's expected channel count.
    func checkInput(_ x: Tensor, channels: Int) throws {
        try requireShape(x.rank == 4, "\(type(of: self)) input must be [N, C, H, W], got \(x.shape)")
        try requireShape(x.shape[1] == channels, "\(type(of: self)) expects \(channels) input channels, got \(x.shape[1])")
        try requireShape(x.shape[0] >= 1, "\(type(of: self)) got an empty batch")
        let s = stageStrides.last ?? 1
        try requireShape(x.shape[2] >= s && x.shape[3] >= s,
                         "\(type(of: self)) needs inputs of at least \(s)×\(s), got \(x.shape[2])×\(x.shape[3])")
    }
}

/// Global-average-pool + linear classifier head: [N, C, H, W] → [N, classes].
public final class ClassifierHead: Module {
    public let fc: Linear

    public init(features: Int, classes: Int, rng: inout SplitMix64, initStd: Float? = nil) throws {
        fc = try Linear(features, classes, rng: &rng)
        if let std = initStd {
            Init.normal(fc.weight, std: std, rng: &rng)
            fc.bias?.fill(0)
        }
        super.init()
    }

    public override var children: [(String, Module)] { [("fc", fc)] }

    public func callAsFunction(_ features: Tensor) throws -> Tensor {
        try fc(try features.globalAvgPool2d())
    }
}

/// An image classifier: a backbone and a GAP + linear head. `callAsFunction(x)` → logits [N, classes].
public final class ImageClassifier: Module {
    public let backbone: Backbone
    public let head: ClassifierHead
    public let architecture: String
    public let inChannels: Int
    public let numClasses: Int

    public init(architecture: String, backbone: Backbone, inChannels: Int, numClasses: Int, rng: inout SplitMix64) throws {
        self.backbone = backbone
        self.architecture = architecture
        self.inChannels = inChannels
        self.numClasses = numClasses
        head = try ClassifierHead(features: backbone.featureChannels, classes: numClasses, rng: &rng)
        super.init()
    }

    public override var children: [(String, Module)] { [("backbone", backbone), ("head", head)] }

    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        try head(try backbone.forwardStages(x).last ?? x)
    }

    /// Logits and all stage feature maps, with an optional hook (see `Backbone.forwardStages`).
    public func forwardWithFeatures(_ x: Tensor, hook: ((Int, Tensor) throws -> Tensor)? = nil) throws -> (logits: Tensor, features: [Tensor]) {
        let f = try backbone.forwardStages(x, hook: hook)
        guard let last = f.last else { throw SAMixError.invalidState("backbone produced no features") }
        return (try head(last), f)
    }
}

/// A residual block: one input map to one output map.
public protocol ResidualBlock: Module {
    var outChannels: Int { get }
    func callAsFunction(_ x: Tensor) throws -> Tensor
}

extension Backbone {
    /// Builds stages of residual blocks: stage s has `counts[s]` blocks with `widths[s]` output
    /// channels; the first block of every stage but the first has stride 2.
    static func buildStages<B: ResidualBlock>(inChannels: Int, widths: [Int], counts: [Int],
                                              make: (_ cin: Int, _ cout: Int, _ stride: Int) throws -> B) throws -> [[B]] {
        var stages: [[B]] = []
        var cin = inChannels
        for (s, (cout, count)) in zip(widths, counts).enumerated() {
            var stage: [B] = []
            for b in 0..<count {
                stage.append(try make(cin, cout, (s > 0 && b == 0) ? 2 : 1))
                cin = cout
            }
            stages.append(stage)
        }
        return stages
    }

    /// Child names of staged blocks, torchvision style: "layer1.0", "layer1.1", …
    static func stageChildren<B: ResidualBlock>(_ stages: [[B]]) -> [(String, Module)] {
        var c: [(String, Module)] = []
        for (s, blocks) in stages.enumerated() {
            for (b, block) in blocks.enumerated() { c.append(("layer\(s + 1).\(b)", block)) }
        }
        return c
    }

    /// The shared forward pass: hook(0) on the input, the stem, then each stage followed by
    /// hook(s + 1); `finalize` runs on the last stage's output before its hook (pre-activation nets).
    func runStages<B: ResidualBlock>(_ x: Tensor, hook: ((Int, Tensor) throws -> Tensor)?, stem: (Tensor) throws -> Tensor,
                                     stages: [[B]], finalize: ((Tensor) throws -> Tensor)? = nil) throws -> [Tensor] {
        var h = try stem(try hook?(0, x) ?? x)
        var outs: [Tensor] = []
        for (s, blocks) in stages.enumerated() {
            for block in blocks { h = try block(h) }
            if s == stages.count - 1, let finalize { h = try finalize(h) }
            if let hook { h = try hook(s + 1, h) }
            outs.append(h)
        }
        return outs
    }

    /// Output channels of each stage.
    static func channels<B: ResidualBlock>(_ stages: [[B]]) -> [Int] { stages.map { $0.last?.outChannels ?? 0 } }
}
