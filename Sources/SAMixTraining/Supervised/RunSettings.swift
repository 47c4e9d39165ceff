import SAMixCore
import SAMixOps
import SAMixNN
import SAMixData
import SAMixMixing

/// The settings that define a training run, compared when a checkpoint is resumed so a changed
/// run (another learning rate, batch size, data subset, ...) is refused instead of silently
/// continuing — or failing later with an unrelated message.
///
/// Three groups, all string → string:
/// * engine settings, read off the trainer's own objects (`Trainer.engineSettings`: objective,
///   seed, optimizer hyper-parameters, schedule);
/// * front-end settings (`Trainer.runSettings`): what only the caller knows (data set, subset,
///   model name, CLI/ABI creation options);
/// * fit settings (`Trainer.fitSettings`): the length and data of the epoch loop (epochs, samples
///   and batches per epoch), recorded by `trainEpoch` and checked on the first epoch after a resume.
public enum RunSettings {
    /// Metadata prefix of engine + front-end settings in trainer checkpoints.
    public static let runPrefix = "run."
    /// Metadata prefix of fit settings in trainer checkpoints.
    public static let fitPrefix = "fit."

    /// The first setting whose value differs between `saved` and `current` (a key missing on one
    /// side counts as a difference), in key order; nil when they agree.
    public static func firstDifference(saved: [String: String], current: [String: String])
        -> (key: String, saved: String?, current: String?)? {
        for key in Set(saved.keys).union(current.keys).sorted() where saved[key] != current[key] {
            return (key, saved[key], current[key])
        }
        return nil
    }

    /// Throws `invalidArgument` naming the first differing setting.
    static func requireSame(saved: [String: String], current: [String: String], path: String) throws {
        guard let d = firstDifference(saved: saved, current: current) else { return }
        throw SAMixError.invalidArgument(
            "\(path): the checkpoint was written by a run with \(d.key) = \(d.saved ?? "(not set)"), "
            + "this run has \(d.key) = \(d.current ?? "(not set)"); resuming would not continue that run "
            + "(use a new checkpoint file, or allow changed settings explicitly to continue anyway)")
    }

    /// `prefix`-ed entries of `metadata`, prefix removed.
    static func extract(_ metadata: [String: String], prefix: String) -> [String: String] {
        var out: [String: String] = [:]
        for (k, v) in metadata where k.hasPrefix(prefix) { out[String(k.dropFirst(prefix.count))] = v }
        return out
    }
}

extension Trainer {
    /// Settings the engine reads off this trainer's own objects: objective name, seed, optimizer
    /// type and hyper-parameters, learning-rate schedule (kind, base rate, warm-up) — or the fixed
    /// rate without a schedule.
    public var engineSettings: [String: String] {
        var s = ["objective": objective.name, "seed": String(seed)]
        switch optimizer {
        case let o as SGD:
            s["optimizer"] = "sgd"
            s["momentum"] = "\(o.momentum)"; s["weight_decay"] = "\(o.weightDecay)"
            s["dampening"] = "\(o.dampening)"; s["nesterov"] = o.nesterov ? "1" : "0"
        case let o as AdamW:
            s["optimizer"] = "adamw"
            s["betas"] = "\(o.beta1),\(o.beta2)"; s["epsilon"] = "\(o.epsilon)"; s["weight_decay"] = "\(o.weightDecay)"
        default:
            s["optimizer"] = String(describing: type(of: optimizer))
        }
        if let schedule {
            s["schedule"] = "\(schedule.kind)"
            s["lr"] = "\(schedule.baseLR)"
            s["warmup_steps"] = String(schedule.warmupSteps)
            s["warmup_start_factor"] = "\(schedule.warmupStartFactor)"
        } else {
            s["schedule"] = "none"
        }
        return s
    }

    /// Engine settings plus the front end's `runSettings` (the engine's win on a shared key).
    public var allRunSettings: [String: String] {
        runSettings.merging(engineSettings) { _, engine in engine }
    }
}
