import SAMixCore
import SAMixOps
import SAMixNN
import SAMixData
import SAMixMixing

/// The Mixer's value ("content") branch: per-position mask logits of the partner before attention
/// pooling, [N, C_v, h, w] → [N, 1, h, w] (docs/method.md §3.3).
///
/// - `linear` (AutoMix): `v = Conv1x1(v_in; C_v → 1, with bias)`.
/// - `convNeck` (SAMix's non-linear content modelling, OpenMixup's `ConvNeck`):
///   `v = Dropout_p(Conv1x1(ELU(BN(Conv1x1(v_in; C_v → C_h, no bias))); C_h → 1, no bias))`,
///   ELU with α = 1, BN γ = 1, β = 0, p = 0 on CIFAR/Tiny CNNs and 0.1 on ImageNet/ViT configs.
public final class MixerValueNetwork: Module {
    public enum Kind: Equatable, Sendable {
        case linear
        case convNeck(dropout: Float)
    }

    public let kind: Kind
    public let conv1: Conv2d
    public let bn: BatchNorm2d?
    public let conv2: Conv2d?

    /// - Parameters: `hiddenChannels` C_h (only for `convNeck`); conv weights N(0, initStd²).
    public init(kind: Kind, inChannels: Int, hiddenChannels: Int, initStd: Float, rng: inout SplitMix64) throws {
        try require(inChannels > 0 && hiddenChannels > 0, "MixerValueNetwork needs positive channel counts")
        self.kind = kind
        switch kind {
        case .linear:
            conv1 = try Conv2d(inChannels, 1, kernelSize: 1, bias: true, rng: &rng)
            Init.normal(conv1.weight, std: initStd, rng: &rng)
            bn = nil
            conv2 = nil
        case .convNeck(let p):
            try require(p >= 0 && p < 1, "ConvNeck dropout must be in [0, 1), got \(p)")
            conv1 = try Conv2d(inChannels, hiddenChannels, kernelSize: 1, bias: false, rng: &rng)
            Init.normal(conv1.weight, std: initStd, rng: &rng)
            bn = try BatchNorm2d(hiddenChannels)
            let c2 = try Conv2d(hiddenChannels, 1, kernelSize: 1, bias: false, rng: &rng)
            Init.normal(c2.weight, std: initStd, rng: &rng)
            conv2 = c2
        }
        super.init()
    }

    public override var children: [(String, Module)] {
        var c: [(String, Module)] = [("conv1", conv1)]
        if let bn { c.append(("bn", bn)) }
        if let conv2 { c.append(("conv2", conv2)) }
        return c
    }

    /// Logits [N, 1, h, w]. `rng` drives dropout (one draw when dropout is active).
    public func callAsFunction(_ v: Tensor, rng: inout SplitMix64) throws -> Tensor {
        switch kind {
        case .linear:
            return try conv1(v)
        case .convNeck(let p):
            guard let bn, let conv2 else { throw SAMixError.invalidState("ConvNeck layers missing") }
            let h = try bn(try conv1(v)).elu(alpha: 1)
            return try conv2(h).dropout(p: p, training: isTraining, rng: &rng)
        }
    }
}
