import SAMixCore
import SAMixOps
import SAMixNN
import SAMixData

/// Input-space mixing policies that need a classifier for side information, usable on any batch
/// (not only inside a trainer): AttentiveMix (top-k cells of the model's last-stage attention) and
/// PuzzleMix (input saliency |∇ₓ CE| → block labelling + transport). The model is run in eval mode
/// without touching its parameters or their gradients.
///
/// ManifoldMix and AlignMix mix hidden features, not images, so they exist only as trainer objectives.
public enum ModelMixPolicy {
    case attentive(AttentiveMix)
    case puzzle(PuzzleMix)

    /// Policy names accepted by `init(name:alpha:)`.
    public static let names = ["attentivemix", "puzzlemix"]

    /// `alpha` nil = the OpenMixup CIFAR default (AttentiveMix 2, PuzzleMix 1).
    public init(name: String, alpha: Double? = nil) throws {
        switch name.lowercased() {
        case "attentivemix": self = .attentive(try AttentiveMix(alpha: alpha ?? 2))
        case "puzzlemix": self = .puzzle(try PuzzleMix(config: PuzzleMixConfig(alpha: alpha ?? 1)))
        default:
            throw SAMixError.invalidArgument("unknown model-based mixing method '\(name)'; known: \(ModelMixPolicy.names.joined(separator: ", "))")
        }
    }

    /// Mixes `images` [N, C, H, W] (what `model` consumes). Returns a new mixed batch and the MixResult
    /// describing it: partners, λᵢ (= label weight of yᵢ) and per-sample partner-weight masks. For
    /// PuzzleMix the images include the transport step, so they are not the plain mask blend of the
    /// inputs; `labels` feed its saliency (AttentiveMix ignores them). `lambda` fixes λ (AttentiveMix)
    /// or the prior (PuzzleMix).
    public func mix(images: Tensor, labels: [Int], model: ImageClassifier, lambda: Double? = nil,
                    rng: inout SplitMix64) throws -> (mixed: Tensor, result: MixResult) {
        try requireShape(images.rank == 4 && images.shape[1] == model.inChannels,
                         "images must be [N, \(model.inChannels), H, W] for this model, got \(images.shape)")
        switch self {
        case .attentive(let p):
            return try p.mix(images: images, model: model, lambda: lambda, rng: &rng)
        case .puzzle(let p):
            try requireShape(labels.count == images.shape[0], "PuzzleMix needs one label per image, got \(labels.count) for \(images.shape[0])")
            try require(labels.allSatisfy { $0 >= 0 && $0 < model.numClasses },
                        "PuzzleMix labels must be in 0..<\(model.numClasses)")
            let s = try PuzzleMix.saliency(model: model, images: images, labels: labels)
            let r = try p.mix(images: images, saliency: s, lambda: lambda, rng: &rng)
            let n = images.shape[0]
            let shape = try ImageBatchShape(batch: n, channels: images.shape[1], height: images.shape[2], width: images.shape[3])
            let result = try MixResult(batch: n, height: shape.height, width: shape.width, partner: r.partner,
                                       ops: (0..<n).map { SampleMix.mask($0) }, masks: r.ownMask.map { 1 - $0 },
                                       lambda: r.lambda, labelLambda: r.lambda)
            return (r.mixed, result)
        }
    }
}
