import SAMixCore
import SAMixOps
import SAMixNN
import SAMixData
import SAMixMixing

/// Optimizers and schedules by name, for the C ABI, the CLI and configs.
public enum OptimizerFactory {
    /// "sgd" (momentum, Nesterov, L2 weight decay) or "adamw" (decoupled weight decay).
    public static func make(_ name: String, parameters: [(String, Tensor)], lr: Float, momentum: Float = 0.9,
                            weightDecay: Float = 5e-4, nesterov: Bool = false) throws -> Optimizer {
        switch name.lowercased() {
        case "sgd":
            return try SGD(parameters, lr: lr, momentum: momentum, weightDecay: weightDecay, nesterov: nesterov)
        case "adamw":
            return try AdamW(parameters, lr: lr, weightDecay: weightDecay)
        default:
            throw SAMixError.invalidArgument("unknown optimizer '\(name)'; expected sgd or adamw")
        }
    }
}

extension LearningRateSchedule {
    /// A schedule by spec: "constant", "cosine" (to the floor `referenceFloorFraction(for:)` of
    /// `objective` × base, i.e. 0 without an objective) or "cosine:min_lr=X" (to X), with an
    /// optional linear warm-up. The C ABI's `schedule` argument and checkpoints use this form.
    public static func named(_ spec: String, baseLR: Float, warmupSteps: Int = 0,
                             objective: TrainingObjective? = nil) throws -> LearningRateSchedule {
        let parts = spec.lowercased().split(separator: ":", omittingEmptySubsequences: false).map { $0.trimmingSpaces() }
        let kind: Kind
        switch parts[0] {
        case "cosine":
            var minLR: Float? = nil
            for p in parts.dropFirst() {
                guard p.hasPrefix("min_lr="), let v = Float(p.dropFirst("min_lr=".count)), v.isFinite else {
                    throw SAMixError.invalidArgument("schedule '\(spec)': expected cosine or cosine:min_lr=<number>")
                }
                minLR = v
            }
            return try cosine(baseLR: baseLR, minLR: minLR, objective: objective, warmupSteps: warmupSteps)
        case "constant":
            guard parts.count == 1 else { throw SAMixError.invalidArgument("schedule '\(spec)': constant takes no options") }
            kind = .constant
        default: throw SAMixError.invalidArgument("unknown schedule '\(spec)'; expected cosine, cosine:min_lr=X or constant")
        }
        return try LearningRateSchedule(kind, baseLR: baseLR, warmupSteps: warmupSteps)
    }

    /// Cosine from `baseLR` to `minLR`, or — when `minLR` is nil — to the reference floor of
    /// `objective` (`referenceFloorFraction(for:)` × base).
    public static func cosine(baseLR: Float, minLR: Float?, objective: TrainingObjective?,
                              warmupSteps: Int = 0) throws -> LearningRateSchedule {
        let floor = minLR ?? baseLR * (objective.map(referenceFloorFraction(for:)) ?? 0)
        return try LearningRateSchedule(.cosine(minLR: floor), baseLR: baseLR, warmupSteps: warmupSteps)
    }

    /// The reference's cosine floor as a fraction of the base rate: 0.5 for AutoMix / SAMix
    /// (OpenMixup's CIFAR configs anneal 0.1 → `min_lr=5e-2`, "for the momentum encoder": the
    /// evaluated EMA network keeps moving until the end), 0 for everything else (the hand-crafted
    /// baselines' recipe: cosine to 0, docs/method.md §7).
    public static func referenceFloorFraction(for objective: TrainingObjective) -> Float {
        objective is LearnedMixObjective ? 0.5 : 0
    }

    /// The spec `named` reads back: "constant", "cosine:min_lr=X" (warm-up is separate).
    public var spec: String {
        switch kind {
        case .constant: return "constant"
        case .cosine(let m): return "cosine:min_lr=\(m)"
        case .step: return "step"
        }
    }
}
