import SAMixCore
import SAMixOps
import SAMixNN
import SAMixData
import SAMixMixing

/// How the Mixer's low-resolution mask logits are brought to image size (before the sigmoid).
public enum MaskUpsampling: String, Equatable, Sendable, CaseIterable {
    /// Pixel replication (AutoMix).
    case nearest
    /// Bilinear with half-pixel centres, PyTorch's `align_corners=False` (SAMix).
    case bilinear
}

/// Architecture options of the Mixer (SAMix) / Mix Block (AutoMix), OpenMixup's `PixelMixBlock`
/// (docs/method.md §3.8 lists what differs between the two methods).
public struct MixerConfig: Equatable, Sendable {
    /// How λ enters (`lam_concat` / `lam_mul`, `lam_residual`, `lam_mul_k`).
    public var lambdaEncoding: LambdaEncoding
    /// Cross-attention with a shared projection (AutoMix) or mixing attention (SAMix, `x_qk_concat`).
    public var attention: MixingAttention.Kind
    /// Linear (AutoMix) or ConvNeck (SAMix) value branch (`value_neck_cfg`).
    public var value: MixerValueNetwork.Kind
    /// Value input `[x_i, x_j]` instead of the partner map `x_j` alone (`x_v_concat`; off in configs).
    public var valueInputConcat: Bool
    /// Modes drawn uniformly per Mixer call (`unsampling_mode`; one mode in ResNet configs).
    public var upsampling: [MaskUpsampling]
    /// C_inter = max(C / reduction, 1) for Q/K and the ConvNeck hidden width.
    public var reduction: Int
    /// Std of the N(0, σ²) init of every conv weight (biases 0, BN γ = 1, β = 0).
    public var initStd: Float

    public init(lambdaEncoding: LambdaEncoding, attention: MixingAttention.Kind, value: MixerValueNetwork.Kind,
                valueInputConcat: Bool = false, upsampling: [MaskUpsampling], reduction: Int = 2,
                initStd: Float = 0.01) throws {
        try require(!upsampling.isEmpty, "Mixer needs at least one upsampling mode")
        try require(reduction >= 1, "Mixer reduction must be ≥ 1, got \(reduction)")
        try require(initStd >= 0 && initStd.isFinite, "Mixer init std must be finite and ≥ 0")
        if case .convNeck(let p) = value {
            try require(p >= 0 && p < 1, "value_dropout must be in [0, 1), got \(p)")
        }
        if case .concat = lambdaEncoding {
            try require(attention == .crossShared, "λ concatenation and mixing attention (x_qk_concat) are exclusive")
            try require(!valueInputConcat, "λ concatenation and a concatenated value input are not supported together")
        }
        if case .multiply(let f, _, let ks) = lambdaEncoding {
            try require(f.isFinite && f > 0, "λ multiplication factor must be > 0, got \(f)")
            try require(!ks.isEmpty && ks.allSatisfy(\.isFinite), "lam_mul_k needs at least one finite value")
        }
        self.lambdaEncoding = lambdaEncoding
        self.attention = attention
        self.value = value
        self.valueInputConcat = valueInputConcat
        self.upsampling = upsampling
        self.reduction = reduction
        self.initStd = initStd
    }

    /// AutoMix's Mix Block: no λ (CIFAR) or a λ channel (ImageNet, `lambdaChannel`), cross-attention
    /// with a shared projection, linear value, nearest upsampling.
    public static func automix(lambdaChannel: Bool = false) throws -> MixerConfig {
        try MixerConfig(lambdaEncoding: lambdaChannel ? .concat(valueOnly: false) : .none,
                         attention: .crossShared, value: .linear, upsampling: [.nearest])
    }

    /// SAMix's Mixer: adaptive λ encoding `x·(1 + R_k(λ))` (k from `lamMulK`; [0.25] on CIFAR, [-1]
    /// = plain λ on ImageNet), mixing attention, ConvNeck value with BN + ELU (dropout 0 on CIFAR),
    /// bilinear upsampling.
    public static func samix(lamMulK: [Double] = [0.25], dropout: Float = 0) throws -> MixerConfig {
        try MixerConfig(lambdaEncoding: .multiply(factor: 1, residual: true, rescaleK: lamMulK),
                        attention: .concatSeparate, value: .convNeck(dropout: dropout), upsampling: [.bilinear])
    }
}

/// One Mixer evaluation.
public struct MixerOutput {
    /// The partner's mask `M₁ = sigmoid(U(P·v))` [N, 1, H, W] in (0, 1): per pixel, how much of
    /// x[π] the mixed image takes. The sample's own mask is `M₀ = 1 − M₁` (docs/method.md §3.5).
    public let partnerMask: Tensor
    /// The attention matrix `P` [N, hw, hw] (rows sum to 1).
    public let attention: Tensor
    /// Low-resolution mask logits `P·v` [N, 1, h, w].
    public let logits: Tensor
    /// λ' that scaled the features (R_k(λ) for SAMix; λ otherwise).
    public let encodedLambda: Float
    /// The upsampling mode that was used.
    public let upsampling: MaskUpsampling
}

/// The Mixer of SAMix / Mix Block of AutoMix (OpenMixup's `PixelMixBlock`, docs/method.md §3): turns the
/// feature maps of a batch and a permutation π into a per-pixel mixing mask for every pair
/// (x_i, x_π(i)). It never sees labels.
///
/// Forward, for F [N, C, h, w] (stage features of the momentum encoder), λ and π:
/// 1. `x_i = F`, `x_j = F[π]`, then the λ encoding (`LambdaEncoding`).
/// 2. `P = softmax(Qᵀ K / √C_inter)` [N, hw, hw] (`MixingAttention`).
/// 3. `v = value(x_j)` [N, 1, h, w] → [N, hw, 1] (`MixerValueNetwork`).
/// 4. `s = P·v` → [N, 1, h, w], upsampled by (H/h, W/w) to the image size (nearest or bilinear,
///    on the logits), `M₁ = sigmoid(s↑)`.
///
/// Parameter counts match OpenMixup: AutoMix CIFAR R-18 (C = 256) 33,153; SAMix 164,480.
public final class Mixer: Module {
    public let config: MixerConfig
    /// Channels C of the feature map it reads.
    public let channels: Int
    public let attention: MixingAttention
    public let value: MixerValueNetwork

    public init(channels: Int, config: MixerConfig, seed: UInt64 = 0) throws {
        try require(channels > 0, "Mixer needs a positive channel count, got \(channels)")
        self.channels = channels
        self.config = config
        var rng = SplitMix64(seed: seed)
        let inter = Swift.max(channels / config.reduction, 1)
        let extra = config.lambdaEncoding.extraChannels
        attention = try MixingAttention(kind: config.attention, inChannels: channels + extra.qk,
                                        interChannels: inter, initStd: config.initStd, rng: &rng)
        let valueIn = (config.valueInputConcat ? 2 * channels : channels) + extra.value
        value = try MixerValueNetwork(kind: config.value, inChannels: valueIn, hiddenChannels: inter,
                                      initStd: config.initStd, rng: &rng)
        super.init()
    }

    public override var children: [(String, Module)] { [("attention", attention), ("value", value)] }

    /// The mask for mixing every sample i with its partner π(i) at ratio λ (λ = label weight of
    /// sample i). `features` [N, C, h, w]; the image size must be a multiple of (h, w).
    /// `rng` draws k of `lam_mul_k` and the upsampling mode (when several are configured) and the
    /// dropout mask.
    public func callAsFunction(features: Tensor, lam: Float, permutation: [Int], imageHeight: Int, imageWidth: Int,
                               rng: inout SplitMix64) throws -> MixerOutput {
        try requireShape(features.rank == 4 && features.shape[1] == channels,
                         "Mixer expects features [N, \(channels), h, w], got \(features.shape)")
        let n = features.shape[0], h = features.shape[2], w = features.shape[3]
        try require(permutation.count == n, "Mixer: permutation of \(permutation.count) for a batch of \(n)")
        try require(lam.isFinite && lam >= 0 && lam <= 1, "Mixer: λ = \(lam) is not in [0, 1]")
        try requireShape(imageHeight >= h && imageWidth >= w && imageHeight % h == 0 && imageWidth % w == 0,
                         "Mixer: image \(imageHeight)×\(imageWidth) is not a multiple of the feature map \(h)×\(w)")
        var xi = features
        var xj = try features.gatherRows(permutation)
        var vin: Tensor
        var encoded = lam
        switch config.lambdaEncoding {
        case .none:
            vin = xj
        case .concat(let valueOnly):
            let li = try Tensor(repeating: lam, shape: [n, 1, h, w])
            let lj = try Tensor(repeating: 1 - lam, shape: [n, 1, h, w])
            vin = try Tensor.concat([xj, lj], axis: 1)
            if !valueOnly {
                xi = try Tensor.concat([xi, li], axis: 1)
                xj = vin
            }
        case .multiply(let factor, let residual, let ks):
            let k = ks.count == 1 ? ks[0] : ks[rng.int(below: ks.count)]
            encoded = Float(LambdaRescale.rescale(Double(lam), k: k))
            if residual {
                xi = try xi * (1 + factor * encoded)
                xj = try xj * (1 + factor * (1 - encoded))
            } else {
                xi = try xi * encoded
                xj = try xj * (1 - encoded)
            }
            vin = xj
        }
        if config.valueInputConcat {
            // x_v_concat: the value sees both (λ-encoded) maps.
            vin = try Tensor.concat([xi, vin], axis: 1)
        }
        let p = try attention(xi, xj)
        let v = try value(vin, rng: &rng).reshaped([n, h * w, 1])
        let s = try Tensor.matmul(p, v).reshaped([n, 1, h, w])
        let mode = config.upsampling.count == 1 ? config.upsampling[0]
            : config.upsampling[rng.int(below: config.upsampling.count)]
        let fh = imageHeight / h, fw = imageWidth / w
        let up: Tensor
        if fh == 1 && fw == 1 {
            up = s
        } else {
            switch mode {
            case .nearest: up = try s.upsampleNearest(factorH: fh, factorW: fw)
            case .bilinear: up = try s.upsampleBilinear(factorH: fh, factorW: fw)
            }
        }
        return MixerOutput(partnerMask: try up.sigmoid(), attention: p, logits: s, encodedLambda: encoded,
                           upsampling: mode)
    }

    /// Freezes (or unfreezes) every parameter: OpenMixup's `frozen=True` for a pre-trained Mixer.
    public func freeze(_ on: Bool = true) { setRequiresGrad(!on) }
}
