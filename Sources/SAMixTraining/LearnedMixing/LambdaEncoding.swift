import SAMixCore
import SAMixOps
import SAMixNN
import SAMixData
import SAMixMixing

/// How the mixing ratio λ enters the Mixer (docs/method.md §3.2). The Mixer never sees labels; λ is the only
/// side information besides the feature maps.
///
/// - `none`: AutoMix's CIFAR Mix Block — the features are used unchanged.
/// - `concat`: AutoMix's ImageNet Mix Block ("lam cat q,k,v") — one constant channel is appended,
///   `x_i ← [x_i, λ·1]`, `x_j ← [x_j, (1−λ)·1]` (C + 1 channels). With `valueOnly` only the value
///   input gets the channel (`lam_concat_v`).
/// - `multiply`: SAMix's adaptive λ encoding. With λ' = R_k(λ) (or λ itself when k < 0):
///   residual form `x_i ← x_i·(1 + f·λ')`, `x_j ← x_j·(1 + f·(1−λ'))`, or plain form
///   `x_i ← λ'·x_i`, `x_j ← (1−λ')·x_j`; f = `factor` (OpenMixup's `lam_mul`, 1 in every config).
///   `rescaleK` is the list k is drawn from uniformly per Mixer call (`lam_mul_k`; [0.25] on CIFAR,
///   [-1] = no rescale on Tiny-ImageNet R-18 and ImageNet).
public enum LambdaEncoding: Equatable, Sendable {
    case none
    case concat(valueOnly: Bool)
    case multiply(factor: Float, residual: Bool, rescaleK: [Double])

    /// SAMix's CIFAR setting: residual multiplication with R_0.25.
    public static let samixCIFAR = LambdaEncoding.multiply(factor: 1, residual: true, rescaleK: [0.25])

    /// Extra input channels the encoding adds to (query/key input, value input).
    var extraChannels: (qk: Int, value: Int) {
        switch self {
        case .none, .multiply: return (0, 0)
        case .concat(let valueOnly): return (valueOnly ? 0 : 1, 1)
        }
    }
}

/// The cubic λ rescale of SAMix's adaptive λ encoding (docs/method.md §3.2, pmix_block.py L223-228):
///
/// `R_k(λ) = (4/3·λ³ − 2·λ² + k'·λ) / (k' − 2/3)`, `k' = min(k, 10) + 1`.
///
/// R_k(0) = 0, R_k(½) = ½, R_k(1) = 1 and R_k is odd around ½, with slope k'/(k' − 2/3) at 0: it
/// pulls λ toward ½ (k = 0.25 → slope 2.1429). A negative k means "no rescale" (R = identity).
public enum LambdaRescale {
    public static func rescale(_ lam: Double, k: Double) -> Double {
        if k < 0 { return lam }
        let kp = Swift.min(k, 10) + 1
        return (4.0 / 3.0 * lam * lam * lam - 2 * lam * lam + kp * lam) / (kp - 2.0 / 3.0)
    }
}
