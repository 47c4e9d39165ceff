import SAMixCore

/// The creation arguments of a trainer built by a front end from names (the C ABI, hence Python):
/// objective, optimizer and schedule. Saved in trainer checkpoints as `config.<key>` metadata (also
/// compared on resume, as front-end run settings), and read back by the engine, which gives front ends
/// the typed JSON (`json`) instead of strings to parse.
public struct TrainerConfig: Equatable, Sendable {
    /// Objective name (a hand-crafted policy, or the learned objective's name).
    public var mix: String
    /// Beta(α, α) of the policy; nil = its default.
    public var alpha: Double?
    public var labelSmoothing: Double
    /// "sgd" or "adamw".
    public var optimizer: String
    public var learningRate: Double
    public var momentum: Double
    public var weightDecay: Double
    public var nesterov: Bool
    /// Schedule spec as given (e.g. "cosine", "cosine:min_lr=0.01", "constant").
    public var schedule: String
    public var warmupSteps: Int
    /// Learned mixing (AutoMix/SAMix/SAMix^P): the method name and its option text.
    public var learnedMethod: String?
    public var learnedOptions: String?

    public init(mix: String, alpha: Double?, labelSmoothing: Double, optimizer: String, learningRate: Double,
                momentum: Double, weightDecay: Double, nesterov: Bool, schedule: String, warmupSteps: Int,
                learnedMethod: String? = nil, learnedOptions: String? = nil) {
        self.mix = mix
        self.alpha = alpha
        self.labelSmoothing = labelSmoothing
        self.optimizer = optimizer
        self.learningRate = learningRate
        self.momentum = momentum
        self.weightDecay = weightDecay
        self.nesterov = nesterov
        self.schedule = schedule
        self.warmupSteps = warmupSteps
        self.learnedMethod = learnedMethod
        self.learnedOptions = learnedOptions
    }

    /// Metadata prefix in trainer checkpoints.
    public static let prefix = "config."

    /// The `config.*` pairs (without the prefix), in the checkpoint format.
    public var metadata: [String: String] {
        var m = ["mix": mix, "alpha": alpha.map { "\($0)" } ?? "default", "label_smoothing": "\(labelSmoothing)",
                 "optimizer": optimizer, "lr": "\(learningRate)", "momentum": "\(momentum)",
                 "weight_decay": "\(weightDecay)", "nesterov": nesterov ? "1" : "0", "schedule": schedule,
                 "warmup_steps": String(warmupSteps)]
        if let learnedMethod { m["learned_method"] = learnedMethod }
        if let learnedOptions { m["learned_options"] = learnedOptions }
        return m
    }

    /// Reads the `config.*` pairs (prefix removed) of a trainer checkpoint; throws `invalidArgument`
    /// naming a missing or invalid key.
    public init(metadata m: [String: String]) throws {
        func value(_ k: String) throws -> String {
            guard let v = m[k] else { throw SAMixError.invalidArgument("trainer checkpoint lacks config.\(k)") }
            return v
        }
        func real(_ k: String) throws -> Double {
            guard let v = Double(try value(k)), v.isFinite else {
                throw SAMixError.invalidArgument("trainer checkpoint has an invalid config.\(k): '\(m[k] ?? "")'")
            }
            return v
        }
        let alphaText = try value("alpha")
        var alpha: Double? = nil
        if alphaText != "default" {
            guard let a = Double(alphaText), a.isFinite else {
                throw SAMixError.invalidArgument("trainer checkpoint has an invalid config.alpha: '\(alphaText)'")
            }
            alpha = a
        }
        guard let warmup = Int(try value("warmup_steps")), warmup >= 0 else {
            throw SAMixError.invalidArgument("trainer checkpoint has an invalid config.warmup_steps: '\(m["warmup_steps"] ?? "")'")
        }
        let nesterov = try value("nesterov")
        guard nesterov == "0" || nesterov == "1" else {
            throw SAMixError.invalidArgument("trainer checkpoint has an invalid config.nesterov: '\(nesterov)'")
        }
        self.init(mix: try value("mix"), alpha: alpha, labelSmoothing: try real("label_smoothing"),
                  optimizer: try value("optimizer"), learningRate: try real("lr"), momentum: try real("momentum"),
                  weightDecay: try real("weight_decay"), nesterov: nesterov == "1", schedule: try value("schedule"),
                  warmupSteps: warmup, learnedMethod: m["learned_method"], learnedOptions: m["learned_options"])
    }

    /// `{"mix", "alpha" (null = default), "label_smoothing", "optimizer", "lr", "momentum",
    /// "weight_decay", "nesterov" (bool), "schedule", "warmup_steps", "learned_method" and
    /// "learned_options" (null unless learned)}`.
    public var json: JSONValue {
        func num(_ v: Double) -> JSONValue { .number("\(v)") }
        return .object([("mix", .string(mix)), ("alpha", alpha.map(num) ?? .null),
                        ("label_smoothing", num(labelSmoothing)), ("optimizer", .string(optimizer)),
                        ("lr", num(learningRate)), ("momentum", num(momentum)), ("weight_decay", num(weightDecay)),
                        ("nesterov", .bool(nesterov)), ("schedule", .string(schedule)),
                        ("warmup_steps", .number(String(warmupSteps))),
                        ("learned_method", learnedMethod.map { .string($0) } ?? .null),
                        ("learned_options", learnedOptions.map { .string($0) } ?? .null)])
    }
}
