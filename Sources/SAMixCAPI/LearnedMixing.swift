import Glibc
import SAMix

// Learned mixing through the C ABI: trainers whose objective is AutoMix / SAMix (`LearnedMixObjective`
// with a full `LearnedMixConfig`) or SAMix^P (`PretrainedMixerObjective` over a saved Mixer), the
// evaluation of every head a trainer reports (online + momentum), the Mixer's masks for a batch and
// saving the trained Mixer. Options travel as "key=value" lines with OpenMixup's parameter names;
// this file only parses and validates them — every value is checked again by the engine's
// initialisers.

/// "key=value" lines (blank lines ignored); duplicate or unknown keys are errors (`take` + `finish`).
/// The engine's parser, shared with the CLI.
typealias OptionList = KeyValueOptions

/// Builds the objective of a learned-mixing trainer. method: "automix", "samix" or "samix-p"
/// (SAMix^P: a saved, frozen Mixer; option `path`).
func makeLearnedObjective(method: String, options: String, defaultSeed: UInt64) throws -> TrainingObjective {
    let m = method.lowercased()
    let context = "\(m) options"
    var o = try OptionList(options, context: context)
    switch m {
    case "automix", "samix":
        return LearnedMixObjective(config: try LearnedMixOptions.config(method: m, options: &o, defaultSeed: defaultSeed))
    case "samix-p", "samix_p", "pretrained":
        return try PretrainedMixerObjective(options: &o)
    default:
        throw CAPIError(.invalidArgument, "unknown learned mixing method '\(method)'; expected automix, samix or samix-p")
    }
}

/// Validates learned-mixing options without creating anything (SAMix^P also reads the file).
@_cdecl("samix_learned_check")
public func samix_learned_check(_ method: UnsafePointer<CChar>?, _ options: UnsafePointer<CChar>?) -> Int32 {
    guarded("samix_learned_check") {
        let m = try readString(method, "method", maxBytes: 64)
        let o = options == nil ? "" : try readString(options, "options", maxBytes: 1 << 16)
        _ = try makeLearnedObjective(method: m, options: o, defaultSeed: 0)
    }
}

/// The option schema of a group ("learned", "pretrained", "ssl", "trainer"), optionally one method
/// ("learned:samix", "ssl:mixup"), as JSON + NUL into buf (capacity cap; cap 0 only reports *needed):
/// every option's name, type, default, range or choices and doc, as the engine declares them
/// (`OptionSchema`). The ABI keeps no defaults of its own.
@_cdecl("samix_option_schema")
public func samix_option_schema(_ group: UnsafePointer<CChar>?, _ buf: UnsafeMutablePointer<CChar>?, _ cap: Int64,
                                _ needed: UnsafeMutablePointer<Int64>?) -> Int32 {
    guarded("samix_option_schema") {
        let g = try readString(group, "group", maxBytes: 128)
        try copyOutString(try OptionSchema.json(g), buf, cap, needed)
    }
}

/// The engine's default options of a learned method ("automix" / "samix") as "key=value" lines +
/// NUL into buf (capacity cap; cap 0 only reports *needed) — what the Python classes' defaults are
/// checked against.
@_cdecl("samix_learned_defaults")
public func samix_learned_defaults(_ method: UnsafePointer<CChar>?, _ buf: UnsafeMutablePointer<CChar>?, _ cap: Int64,
                                   _ needed: UnsafeMutablePointer<Int64>?) -> Int32 {
    guarded("samix_learned_defaults") {
        let m = try readString(method, "method", maxBytes: 64)
        let d = try LearnedMixOptions.defaults(method: m)
        try copyOutString(d.map { "\($0.0)=\($0.1)" }.joined(separator: "\n"), buf, cap, needed)
    }
}

@_cdecl("samix_trainer_create_learned")
public func samix_trainer_create_learned(_ model: UInt64, _ method: UnsafePointer<CChar>?,
                                         _ options: UnsafePointer<CChar>?, _ optimizer: UnsafePointer<CChar>?,
                                         _ lr: Double, _ momentum: Double, _ weightDecay: Double, _ nesterov: Int32,
                                         _ schedule: UnsafePointer<CChar>?, _ warmupSteps: Int64, _ seed: UInt64,
                                         _ out: UnsafeMutablePointer<UInt64>?) -> Int32 {
    guarded("samix_trainer_create_learned") {
        let out = try nonNull(out, "out")
        let methodName = try readString(method, "method", maxBytes: 64)
        let optionText = options == nil ? "" : try readString(options, "options", maxBytes: 1 << 16)
        let optName = try optimizer == nil ? "sgd" : readString(optimizer, "optimizer", maxBytes: 64).lowercased()
        let schedName = try schedule == nil ? "cosine" : readString(schedule, "schedule", maxBytes: 64).lowercased()
        for (v, n) in [(lr, "lr"), (momentum, "momentum"), (weightDecay, "weight_decay")] where !v.isFinite {
            throw CAPIError(.invalidArgument, "\(n) must be finite, got \(v)")
        }
        guard warmupSteps >= 0, warmupSteps <= 1 << 40 else {
            throw CAPIError(.invalidArgument, "warmup_steps must be ≥ 0, got \(warmupSteps)")
        }
        let entry = try Registry.shared.entry(model, .model)
        guard let net = entry.object as? ImageClassifier else { throw CAPIError(.wrongHandleKind, "not a model") }
        let objective = try makeLearnedObjective(method: methodName, options: optionText, defaultSeed: seed)
        let id: UInt64 = try entry.lock.lockedForCall {
            let params = try Trainer.parameters(model: net, objective: objective)
            let opt = try OptimizerFactory.make(optName, parameters: params, lr: Float(lr), momentum: Float(momentum),
                                                weightDecay: Float(weightDecay), nesterov: nesterov != 0)
            // "cosine" anneals to the method's reference floor (AutoMix/SAMix: 0.5 × lr, OpenMixup's
            // 0.1 → 0.05); "cosine:min_lr=X" sets it.
            let sched = try LearningRateSchedule.named(schedName, baseLR: Float(lr), warmupSteps: Int(warmupSteps),
                                                       objective: objective)
            let box = TrainerBox(Trainer(model: net, objective: objective, optimizer: opt, schedule: sched, seed: seed))
            box.config = TrainerConfig(mix: objective.name, alpha: nil, labelSmoothing: 0, optimizer: optName,
                                       learningRate: lr, momentum: momentum, weightDecay: weightDecay,
                                       nesterov: nesterov != 0, schedule: schedName, warmupSteps: Int(warmupSteps),
                                       learnedMethod: methodName.lowercased(), learnedOptions: optionText)
            return Registry.shared.insert(box, kind: .trainer, sharing: entry)
        }
        out.pointee = id
    }
}

// MARK: - Evaluation of every head

/// The networks a trainer reports: "online" (the model) and the objective's evaluation models
/// (AutoMix/SAMix: "momentum", optionally "momentum_mix" and "online_mix").
func evaluationHeads(_ t: Trainer) -> [(String, ImageClassifier)] {
    [("online", t.model)] + t.objective.evaluationModels
}

/// Head names, one per line, + NUL into buf (capacity cap; cap 0 only reports *needed); the count
/// goes to *count.
@_cdecl("samix_trainer_heads")
public func samix_trainer_heads(_ handle: UInt64, _ buf: UnsafeMutablePointer<CChar>?, _ cap: Int64,
                                _ needed: UnsafeMutablePointer<Int64>?, _ count: UnsafeMutablePointer<Int64>?) -> Int32 {
    guarded("samix_trainer_heads") {
        try Registry.shared.with(handle, .trainer, as: TrainerBox.self) { b in
            let names = evaluationHeads(b.trainer).map(\.0)
            count?.pointee = Int64(names.count)
            try copyOutString(names.joined(separator: "\n"), buf, cap, needed)
        }
    }
}

func evaluateHeads(_ t: Trainer, _ source: BatchSource, _ losses: UnsafeMutablePointer<Double>?,
                   _ accuracies: UnsafeMutablePointer<Double>?, _ count: Int64) throws {
    let heads = evaluationHeads(t)
    guard count == Int64(heads.count) else {
        throw CAPIError(.invalidArgument, "the trainer reports \(heads.count) heads, count is \(count)")
    }
    let l = try nonNull(losses, "losses"), a = try nonNull(accuracies, "accuracies")
    try t.synchronizeForEvaluation()
    for (i, (_, m)) in heads.enumerated() {
        let e = try Trainer.evaluate(m, on: source, dataParallel: t.dataParallel)
        l[i] = e.loss
        a[i] = e.accuracy
    }
}

/// Mean cross-entropy and top-1 accuracy of every head (`samix_trainer_heads` order) on a float32
/// batch x (N, C, H, W, used as given) with labels[N]; count = number of heads.
@_cdecl("samix_trainer_evaluate_heads_array")
public func samix_trainer_evaluate_heads_array(_ handle: UInt64, _ x: UnsafePointer<Float>?, _ shape: UnsafePointer<Int64>?,
                                               _ labels: UnsafePointer<Int64>?, _ batchSize: Int64,
                                               _ losses: UnsafeMutablePointer<Double>?,
                                               _ accuracies: UnsafeMutablePointer<Double>?, _ count: Int64) -> Int32 {
    guarded("samix_trainer_evaluate_heads_array") {
        guard batchSize >= 1, batchSize <= 1 << 20 else {
            throw CAPIError(.invalidArgument, "batch_size must be in 1...\(1 << 20), got \(batchSize)")
        }
        try Registry.shared.with(handle, .trainer, as: TrainerBox.self) { b in
            let t = b.trainer
            let (images, y) = try readArrayData(t, x, shape, labels)
            let source = try ArrayBatchSource(images: images, labels: y, batchSize: Int(batchSize), shuffle: false,
                                              training: false)
            try evaluateHeads(t, source, losses, accuracies, count)
        }
    }
}

/// As `samix_trainer_evaluate_heads_array` on a uint8 dataset handle (normalised like the training data).
@_cdecl("samix_trainer_evaluate_heads")
public func samix_trainer_evaluate_heads(_ handle: UInt64, _ data: UInt64, _ batchSize: Int64,
                                         _ losses: UnsafeMutablePointer<Double>?,
                                         _ accuracies: UnsafeMutablePointer<Double>?, _ count: Int64) -> Int32 {
    guarded("samix_trainer_evaluate_heads") {
        let ds = try datasetValue(data)
        try Registry.shared.with(handle, .trainer, as: TrainerBox.self) { b in
            let t = b.trainer
            let loader = try evaluationLoader(b, ds, batchSize: batchSize)
            try evaluateHeads(t, loader, losses, accuracies, count)
        }
    }
}

// MARK: - Masks and the trained Mixer

/// The partner masks M₁ (N×1×H×W, the per-pixel weight of x[partner[i]]) the trainer's Mixer makes
/// for a float batch x (N, C, H, W, used as given, N ≥ 2) at ratio lam ∈ [0, 1] (weight of the
/// original sample) with partners partner[N] (a permutation; NULL = drawn from seed), without
/// gradients and without changing any weight or running statistic.
@_cdecl("samix_trainer_mixer_masks")
public func samix_trainer_mixer_masks(_ handle: UInt64, _ x: UnsafePointer<Float>?, _ shape: UnsafePointer<Int64>?,
                                      _ lam: Double, _ partner: UnsafePointer<Int64>?, _ seed: UInt64,
                                      _ masks: UnsafeMutablePointer<Float>?, _ maskCount: Int64) -> Int32 {
    guarded("samix_trainer_mixer_masks") {
        guard lam.isFinite, lam >= 0, lam <= 1 else { throw CAPIError(.invalidArgument, "lam must be in [0, 1], got \(lam)") }
        try Registry.shared.with(handle, .trainer, as: TrainerBox.self) { b in
            let t = b.trainer
            let (xp, dims) = try readImageBatch(x, shape, channels: t.model.inChannels)
            let n = dims[0]
            guard n >= 2 else { throw CAPIError(.shape, "the Mixer needs a batch of at least 2 images, got \(n)") }
            guard maskCount == Int64(n * dims[2] * dims[3]) else {
                throw CAPIError(.shape, "masks must hold N·H·W = \(n * dims[2] * dims[3]) floats, got \(maskCount)")
            }
            let out = try nonNull(masks, "masks")
            var perm: [Int]
            if let partner {
                perm = (0..<n).map { Int(partner[$0]) }
                var seen = [Bool](repeating: false, count: n)
                for (i, p) in perm.enumerated() {
                    guard p >= 0, p < n, !seen[p] else {
                        throw CAPIError(.invalidArgument, "partner must be a permutation of 0..<\(n) (bad entry \(p) at \(i))")
                    }
                    seen[p] = true
                }
            } else {
                var rng = SplitMix64(seed: seed)
                perm = rng.permutation(n)
            }
            let images = try Tensor(borrowing: UnsafeMutablePointer(mutating: xp), shape: dims)
            let m: Tensor
            if let o = t.objective as? any MixerProviding {
                m = try o.mixerMasks(model: t.model, images: images, lam: Float(lam), permutation: perm, seed: seed)
            } else {
                throw CAPIError(.invalidState, "the trainer's objective '\(t.objective.name)' has no Mixer")
            }
            guard m.count == Int(maskCount) else {
                throw CAPIError(.internalError, "Mixer returned \(m.count) mask values, expected \(maskCount)")
            }
            out.update(from: m.data, count: m.count)
        }
    }
}

/// Saves the trainer's Mixer with the encoder that feeds it (AutoMix/SAMix: the momentum encoder;
/// SAMix^P: the frozen pair it uses) for SAMix^P (`MixerCheckpoint` file).
@_cdecl("samix_trainer_save_mixer")
public func samix_trainer_save_mixer(_ handle: UInt64, _ path: UnsafePointer<CChar>?) -> Int32 {
    guarded("samix_trainer_save_mixer") {
        let file = try readString(path, "path", maxBytes: 4096)
        try Registry.shared.with(handle, .trainer, as: TrainerBox.self) { b in
            let t = b.trainer
            if let o = t.objective as? any MixerProviding {
                try o.mixerCheckpoint(model: t.model).save(to: file)
            } else {
                throw CAPIError(.invalidState, "the trainer's objective '\(t.objective.name)' has no Mixer to save")
            }
        }
    }
}
