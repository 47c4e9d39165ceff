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
    /// "cosine" (to 0) or "constant", with an optional linear warm-up.
    public static func named(_ name: String, baseLR: Float, warmupSteps: Int = 0) throws -> LearningRateSchedule {
        let kind: Kind
        switch name.lowercased() {
        case "cosine": kind = .cosine(minLR: 0)
        case "constant": kind = .constant
        default: throw SAMixError.invalidArgument("unknown schedule '\(name)'; expected cosine or constant")
        }
        return try LearningRateSchedule(kind, baseLR: baseLR, warmupSteps: warmupSteps)
    }
}
