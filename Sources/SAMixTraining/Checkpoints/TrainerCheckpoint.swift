import SAMixCore
import SAMixOps
import SAMixNN
import SAMixData
import SAMixMixing

/// Model and trainer checkpoints in the safetensors format (see `SafetensorsFile`).
///
/// **Model file** (`format` = `samix.model`): one tensor per state-dict entry under its PyTorch-style
/// dotted name (`backbone.layer1.0.conv1.weight`, BN running statistics included); metadata
/// `architecture`, `num_classes`, `in_channels`.
///
/// **Trainer file** (`format` = `samix.trainer`): tensors `model.<name>` (the classifier),
/// `optimizer.<name>` (momentum buffers / Adam moments and step), `objective.<module>.<name>` (the
/// objective's trainable extra modules, e.g. the Mixer), `evaluation.<net>.<name>` (the
/// objective's momentum/EMA networks), `state.<module>.<name>` (other objective state declared by
/// `CheckpointableObjective`), `extra.<name>` (caller tensors); metadata `architecture`,
/// `num_classes`, `in_channels`, `objective`, `seed`, `epochs_done`, `steps_done`, `optimizer`,
/// `learning_rate`, plus caller metadata. The trainer derives each step's randomness from (seed,
/// step) and each epoch's batches from (seed, epoch), so restoring these counters with the weights
/// and optimizer state makes the resumed run bit-identical to an uninterrupted one.
public enum Checkpoint {
    public static let modelFormat = "samix.model"
    public static let trainerFormat = "samix.trainer"
    public static let formatVersion = "1"

    // MARK: models

    /// Saves a module's state dict (parameters and buffers) with `metadata`.
    public static func save(_ module: Module, to path: String, metadata: [String: String] = [:]) throws {
        var meta = metadata
        meta["format"] = modelFormat
        meta["format_version"] = formatVersion
        try SafetensorsFile(tensors: module.stateDict(), metadata: meta).write(to: path)
    }

    /// Saves a classifier with its architecture, class count and input channels.
    public static func save(_ model: ImageClassifier, to path: String, metadata: [String: String] = [:]) throws {
        var meta = metadata
        for (k, v) in modelMetadata(model) { meta[k] = v }
        try save(model as Module, to: path, metadata: meta)
    }

    static func modelMetadata(_ model: ImageClassifier) -> [String: String] {
        ["architecture": model.architecture, "num_classes": String(model.numClasses),
         "in_channels": String(model.inChannels)]
    }

    /// The `__metadata__` map of a safetensors file (reads only the header).
    public static func metadata(of path: String) throws -> [String: String] {
        try SafetensorsFile.readHeader(path).metadata
    }

    /// The model state stored in a file: a model file's tensors, or the `model.` tensors of a
    /// trainer checkpoint (prefix removed).
    static func modelState(_ file: SafetensorsFile) -> [String: Tensor] {
        if file.metadata["format"] == trainerFormat { return strip(file.tensors, "model.") }
        return file.tensorsByName
    }

    /// Loads a model or trainer file into `model`. Checks the architecture/class/channel metadata
    /// when present; with `strict` the names must match exactly. Nothing is changed on failure.
    public static func load(into model: ImageClassifier, from path: String, strict: Bool = true) throws {
        let file = try SafetensorsFile.read(path)
        try checkCompatible(file.metadata, model, path: path)
        try load(model as Module, state: modelState(file), path: path, strict: strict)
    }

    /// Loads a file written by `save(_:to:)` into any module (all-or-nothing).
    public static func load(into module: Module, from path: String, strict: Bool = true) throws {
        let file = try SafetensorsFile.read(path)
        try load(module, state: modelState(file), path: path, strict: strict)
    }

    private static func load(_ module: Module, state: [String: Tensor], path: String, strict: Bool) throws {
        do { try module.loadStateDict(state, strict: strict) } catch let e as SAMixError {
            throw SAMixError.invalidArgument("\(path): \(e.message)")
        }
    }

    /// A new classifier built from a file's metadata (`ModelZoo`), with the saved weights.
    public static func loadModel(from path: String) throws -> ImageClassifier {
        let file = try SafetensorsFile.read(path)
        let m = file.metadata
        guard let arch = m["architecture"], let k = m["num_classes"].flatMap({ Int($0) }),
              let c = m["in_channels"].flatMap({ Int($0) }) else {
            throw SAMixError.io("\(path): not a samix model file (metadata lacks architecture, num_classes or in_channels)")
        }
        try require(k >= 1 && k <= 1_000_000 && c >= 1 && c <= 4096, "\(path): invalid num_classes \(k) or in_channels \(c)")
        let model = try ModelZoo.make(arch, numClasses: k, inChannels: c)
        try load(model as Module, state: modelState(file), path: path, strict: true)
        return model
    }

    static func checkCompatible(_ meta: [String: String], _ model: ImageClassifier, path: String) throws {
        for (k, v) in modelMetadata(model) {
            if let saved = meta[k], saved != v {
                throw SAMixError.invalidArgument("\(path): checkpoint has \(k) = \(saved), the model has \(v)")
            }
        }
    }

    static func dict(_ entries: [(String, Tensor)]) -> [String: Tensor] {
        var out: [String: Tensor] = [:]
        for (k, v) in entries { out[k] = v }
        return out
    }

    static func strip(_ tensors: [(String, Tensor)], _ prefix: String) -> [String: Tensor] {
        var out: [String: Tensor] = [:]
        for (k, v) in tensors where k.hasPrefix(prefix) { out[String(k.dropFirst(prefix.count))] = v }
        return out
    }

    // MARK: trainers

    /// Every module whose state a trainer checkpoint holds besides the classifier and optimizer:
    /// (tensor-name prefix, module).
    static func objectiveModules(_ objective: TrainingObjective) -> [(String, Module)] {
        var out: [(String, Module)] = objective.extraModules.map { ("objective.\($0.0).", $0.1) }
        out += objective.evaluationModels.map { ("evaluation.\($0.0).", $0.1 as Module) }
        if let c = objective as? CheckpointableObjective {
            out += c.checkpointModules.map { ("state.\($0.0).", $0.1) }
        }
        return out
    }

    /// Saves everything needed to continue `trainer` exactly: weights, optimizer state, the
    /// objective's modules, counters and learning rate, plus caller `metadata` and `extraTensors`
    /// (stored under `extra.`).
    /// Data-parallel, only rank 0 writes (every rank holds the same state; `Trainer.fit` verifies
    /// that after every epoch); the other ranks return without writing.
    public static func save(_ trainer: Trainer, to path: String, metadata: [String: String] = [:],
                            extraTensors: [(String, Tensor)] = []) throws {
        if let dp = trainer.dataParallel, !dp.group.isMain { return }
        var tensors: [(String, Tensor)] = trainer.model.stateDict().map { ("model." + $0.0, $0.1) }
        tensors += try trainer.optimizer.stateDict().map { ("optimizer." + $0.0, $0.1) }
        for (prefix, m) in objectiveModules(trainer.objective) {
            tensors += m.stateDict().map { (prefix + $0.0, $0.1) }
        }
        tensors += extraTensors.map { ("extra." + $0.0, $0.1) }
        var meta = metadata
        for (k, v) in trainerMetadata(trainer) { meta[k] = v }
        try SafetensorsFile(tensors: tensors, metadata: meta).write(to: path)
    }

    static func trainerMetadata(_ t: Trainer) -> [String: String] {
        var m = modelMetadata(t.model)
        m["format"] = trainerFormat
        m["format_version"] = formatVersion
        m["objective"] = t.objective.name
        m["seed"] = String(t.seed)
        m["epochs_done"] = String(t.epochsDone)
        m["steps_done"] = String(t.stepsDone)
        m["ranks"] = String(t.dataParallel?.group.size ?? 1)
        m["learning_rate"] = String(t.optimizer.learningRate.bitPattern, radix: 16)
        m["optimizer"] = t.optimizer is SGD ? "sgd" : t.optimizer is AdamW ? "adamw" : String(describing: type(of: t.optimizer))
        for (k, v) in t.allRunSettings { m[RunSettings.runPrefix + k] = v }
        for (k, v) in t.fitSettings { m[RunSettings.fitPrefix + k] = v }
        if let p = t.partialEpoch {  // saved after an interrupt: the next fit continues this epoch exactly
            m["partial.epoch"] = String(p.epoch)
            m["partial.next_batch"] = String(p.nextBatch)
            m["partial.batches"] = String(p.batches)
            m["partial.loss_sum"] = String(p.lossSum.bitPattern, radix: 16)
            m["partial.seconds"] = "\(p.seconds)"
            for (k, v) in p.metricSums { m["partial.metric." + k] = String(v.bitPattern, radix: 16) }
        }
        return m
    }

    /// What a trainer checkpoint carries besides the state restored into the trainer.
    public struct TrainerExtras {
        public var metadata: [String: String]
        /// The caller tensors saved with `extraTensors` (prefix removed).
        public var tensors: [String: Tensor]
    }

    /// Restores a trainer saved by `save(_ trainer:to:)`: the checkpoint must come from the same
    /// architecture, class count, input channels, objective, optimizer type and seed, and — unless
    /// `allowChangedSettings` — the same run: every engine and front-end setting (`RunSettings`)
    /// equal, and the next `trainEpoch` must see the same epochs, samples and batches per epoch.
    /// Everything is validated first; if any part fails to load, the trainer is left exactly as it was.
    /// `validateExtras` sees the caller tensors (and metadata) before anything is changed and may
    /// throw to refuse the file.
    @discardableResult
    public static func load(into trainer: Trainer, from path: String, allowChangedSettings: Bool = false,
                            validateExtras: ((TrainerExtras) throws -> Void)? = nil) throws -> TrainerExtras {
        let file = try SafetensorsFile.read(path)
        let meta = file.metadata
        guard meta["format"] == trainerFormat else {
            let f = meta["format"].map { "format '\($0)'" } ?? "no samix format tag"
            throw SAMixError.invalidArgument("\(path): not a samix trainer checkpoint (\(f))")
        }
        let expected = trainerMetadata(trainer)
        for k in ["architecture", "num_classes", "in_channels", "objective", "optimizer", "seed"] {
            guard let saved = meta[k] else { throw SAMixError.io("\(path): trainer checkpoint lacks '\(k)' metadata") }
            guard saved == expected[k] else {
                throw SAMixError.invalidArgument("\(path): checkpoint has \(k) = \(saved), this trainer has \(expected[k] ?? "?")")
            }
        }
        guard let epochs = meta["epochs_done"].flatMap({ Int($0) }), epochs >= 0,
              let steps = meta["steps_done"].flatMap({ Int($0) }), steps >= 0,
              let lrBits = meta["learning_rate"].flatMap({ UInt32($0, radix: 16) }) else {
            throw SAMixError.io("\(path): trainer checkpoint has invalid epochs_done/steps_done/learning_rate metadata")
        }
        let lr = Float(bitPattern: lrBits)
        try require(lr.isFinite && lr >= 0, "\(path): invalid learning rate \(lr)")
        var partial: PartialEpoch? = nil
        if let e = meta["partial.epoch"] {
            guard let epoch = Int(e), epoch == epochs,
                  let next = meta["partial.next_batch"].flatMap({ Int($0) }),
                  let batches = meta["partial.batches"].flatMap({ Int($0) }), next >= 1, next < batches,
                  let loss = meta["partial.loss_sum"].flatMap({ UInt64($0, radix: 16) }).map(Double.init(bitPattern:)) else {
                throw SAMixError.io("\(path): trainer checkpoint has invalid partial-epoch metadata")
            }
            var sums: [String: Double] = [:]
            for (k, v) in RunSettings.extract(meta, prefix: "partial.metric.") {
                guard let bits = UInt64(v, radix: 16) else { throw SAMixError.io("\(path): invalid partial-epoch metric '\(k)'") }
                sums[k] = Double(bitPattern: bits)
            }
            let seconds = meta["partial.seconds"].flatMap { Double($0) }.flatMap { $0.isFinite && $0 >= 0 ? $0 : nil } ?? 0
            partial = PartialEpoch(epoch: epoch, nextBatch: next, batches: batches, lossSum: loss, metricSums: sums,
                                   seconds: seconds)
        }
        let savedRun = RunSettings.extract(meta, prefix: RunSettings.runPrefix)
        let savedFit = RunSettings.extract(meta, prefix: RunSettings.fitPrefix)
        if !allowChangedSettings {
            guard !savedRun.isEmpty else {
                throw SAMixError.invalidArgument("\(path): the checkpoint predates stored run settings, so resuming cannot "
                    + "check that this is the same run (allow changed settings explicitly to continue anyway)")
            }
            try RunSettings.requireSame(saved: savedRun, current: trainer.allRunSettings, path: path)
        }

        // Sort the tensors into their groups; reject unknown ones.
        let modules = objectiveModules(trainer.objective)
        var known = ["model.", "optimizer.", "extra."] + modules.map { $0.0 }
        known.sort { $0.count > $1.count }  // longest prefix first
        var groups: [String: [String: Tensor]] = [:]
        for (name, t) in file.tensors {
            guard let p = known.first(where: { name.hasPrefix($0) }) else {
                throw SAMixError.invalidArgument("\(path): unexpected tensor '\(name)' for a '\(trainer.objective.name)' trainer")
            }
            groups[p, default: [:]][String(name.dropFirst(p.count))] = t
        }

        let extras = TrainerExtras(metadata: meta, tensors: groups["extra."] ?? [:])
        try validateExtras?(extras)

        // Snapshot, then load everything; roll back on any failure.
        let allModules: [(String, Module)] = [("model.", trainer.model as Module)] + modules
        let snapshot = try allModules.map { m in try m.1.stateDict().map { ($0.0, try $0.1.copy()) } }
        let optSnapshot = try trainer.optimizer.stateDict()
        do {
            for (prefix, m) in allModules {
                do { try m.loadStateDict(groups[prefix] ?? [:], strict: true) } catch let e as SAMixError {
                    throw SAMixError.invalidArgument("\(path): \(prefix.dropLast()): \(e.message)")
                }
            }
            let optState = groups["optimizer."] ?? [:]
            try trainer.optimizer.loadStateDict(optState)
            let taken = Set(try trainer.optimizer.stateDict().map { $0.0 })
            if let extra = optState.keys.sorted().first(where: { !taken.contains($0) }) {
                throw SAMixError.invalidArgument("\(path): optimizer state entry '\(extra)' does not match any parameter")
            }
        } catch {
            for ((_, m), state) in zip(allModules, snapshot) {
                try? m.loadStateDict(dict(state), strict: true)
            }
            try? trainer.optimizer.loadStateDict(dict(optSnapshot))
            throw error
        }
        trainer.epochsDone = epochs
        trainer.stepsDone = steps
        trainer.partialEpoch = partial  // the file's stopped epoch, if any (never an older one of this trainer)
        trainer.checkpointRanks = meta["ranks"].flatMap { Int($0) } ?? 1
        trainer.optimizer.learningRate = lr
        trainer.fitSettings = savedFit
        trainer.expectedFitSettings = allowChangedSettings || savedFit.isEmpty ? nil : savedFit
        trainer.expectedFitSettingsSource = path
        return extras
    }
}

/// Objectives with state beyond `extraModules` and `evaluationModels` (EMA copies that are not
/// evaluated, for instance) declare it here so trainer checkpoints capture it.
public protocol CheckpointableObjective: TrainingObjective {
    /// (name, module) pairs saved under `state.<name>.`.
    var checkpointModules: [(String, Module)] { get }
}

extension LearnedMixObjective: CheckpointableObjective {
    /// The momentum networks (backbone_k + head_one_k, and head_mix_k), saved whether or not they
    /// are evaluated.
    public var checkpointModules: [(String, Module)] {
        var out: [(String, Module)] = []
        if let m = momentumModel { out.append(("momentum", m)) }
        if let m = momentumMixModel { out.append(("momentum_mix_head", m.head)) }
        return out
    }
}
