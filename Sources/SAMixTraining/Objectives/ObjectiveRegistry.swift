import SAMixCore
import SAMixOps
import SAMixNN
import SAMixData
import SAMixMixing

/// Training objectives by name, for the CLI, the C ABI and configs: "vanilla", "mixup", "cutmix",
/// "fmix", "gridmix", "resizemix", "smoothmix", "saliencymix", "manifoldmix", and the learned
/// "automix" / "samix" (`LearnedMixObjective` with `LearnedMixConfig.automix()` / `.samix()`, the
/// CIFAR configs; α = 2), and the model-dependent "attentivemix" (α = 2), "puzzlemix" (α = 1),
/// "alignmix" (α = 2) and "decouplemix" (Mixup α = 1 + decoupled loss η = 0.1, no label smoothing).
/// `alpha` overrides the policy's Beta(α, α) parameter (its default follows OpenMixup's CIFAR configs).
public enum ObjectiveRegistry {
    public static let names = ["vanilla", "mixup", "cutmix", "fmix", "gridmix", "resizemix", "smoothmix",
                               "saliencymix", "manifoldmix", "automix", "samix",
                               "attentivemix", "puzzlemix", "alignmix", "decouplemix"]

    public static func make(_ name: String, alpha: Double? = nil, labelSmoothing: Float = 0) throws -> TrainingObjective {
        if let a = alpha { try require(a > 0 && a.isFinite, "alpha must be a finite value > 0, got \(a)") }
        let key = name.lowercased()
        func policy(_ p: MixPolicy) throws -> TrainingObjective {
            try MixPolicyObjective(name: key, policy: p, labelSmoothing: labelSmoothing)
        }
        switch key {
        case "vanilla", "none": return try CrossEntropyObjective(labelSmoothing: labelSmoothing)
        case _ where MixPolicies.names.contains(key): return try policy(try MixPolicies.make(key, alpha: alpha))
        case "manifoldmix": return try ManifoldMixObjective(alpha: alpha ?? 2.0)
        // The learned methods with OptionSchema.learned's defaults (the parser of the C ABI and the CLI).
        case "automix", "samix":
            return LearnedMixObjective(config: try LearnedMixOptions.config(method: key, pairs: alpha.map { [("alpha", "\($0)")] } ?? []))
        // Model-dependent policies (SAMixMixing/ModelBased, objectives in Objectives/), OpenMixup CIFAR settings.
        case "attentivemix": return try AttentiveMixObjective(policy: try AttentiveMix(alpha: alpha ?? 2.0),
                                                              loss: .crossEntropy(labelSmoothing: labelSmoothing))
        case "puzzlemix": return try PuzzleMixObjective(config: PuzzleMixConfig(alpha: alpha ?? 1.0),
                                                        loss: .crossEntropy(labelSmoothing: labelSmoothing))
        case "alignmix": return try AlignMixObjective(alpha: alpha ?? 2.0, loss: .crossEntropy(labelSmoothing: labelSmoothing))
        case "decouplemix":
            try require(labelSmoothing == 0, "decouplemix does not support label smoothing (got \(labelSmoothing))")
            return DecoupleMixObjective(policy: try Mixup(alpha: alpha ?? 1.0), loss: try DecoupledMixupLoss(eta: 0.1))
        default:
            throw SAMixError.invalidArgument("unknown mixing method '\(name)'; known: \(names.joined(separator: ", "))")
        }
    }
}
