import SAMixCore
import SAMixOps
import SAMixNN
import SAMixData
import SAMixMixing

/// The classification loss of a mixed batch with per-sample ratios λᵢ (weight of yᵢ; 1 − λᵢ goes to
/// y_π(i)).
public enum MixupLoss {
    /// `(1/N) Σᵢ λᵢ·CE(zᵢ, yᵢ) + (1 − λᵢ)·CE(zᵢ, y_π(i))` with optional label smoothing — identical to the
    /// soft-target CE against `λᵢ·onehot(yᵢ) + (1 − λᵢ)·onehot(y_π(i))` that PuzzleMix's head uses.
    case crossEntropy(labelSmoothing: Float)
    /// DecoupleMix's decoupled mixup cross-entropy (docs/method.md §4.4, `DecoupledMixupLoss`).
    case decoupled(DecoupledMixupLoss)

    /// Plain mixup cross-entropy without smoothing.
    public static var mixupCE: MixupLoss { .crossEntropy(labelSmoothing: 0) }

    /// The loss of `logits` [N, K].
    public func callAsFunction(logits: Tensor, labelsA: [Int], labelsB: [Int], lam: [Float]) throws -> Tensor {
        switch self {
        case .crossEntropy(let eps):
            return try logits.mixupCrossEntropy(labelsA: labelsA, labelsB: labelsB, lam: lam, labelSmoothing: eps)
        case .decoupled(let d):
            return try logits.decoupledMixupCrossEntropy(labelsA: labelsA, labelsB: labelsB, lam: lam, config: d)
        }
    }

    func validate() throws {
        switch self {
        case .crossEntropy(let eps): try require(eps.isFinite && eps >= 0 && eps < 1, "label smoothing must be in [0, 1), got \(eps)")
        case .decoupled(let d): try d.validate()
        }
    }
}
