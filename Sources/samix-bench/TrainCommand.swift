import ArgumentParser
import SAMix

/// Help of an AutoMix/SAMix flag from the engine's option schema (doc, range or choices, defaults).
private func learnedHelp(_ name: String) -> ArgumentHelp {
    ArgumentHelp("AutoMix/SAMix: " + OptionSchema.learned.help(name, showDefault: true))
}

/// `samix-bench train`: trains a classifier on CIFAR-10/100 or Fashion-MNIST and reports loss and
/// test top-1 per epoch with the time per epoch; with `--val-split N` also the top-1 of a
/// class-balanced hold-out of N training images (the split to tune on; test is only reported).
struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "train",
        abstract: "Train a model on a dataset directory and report per-epoch loss, test top-1 and time.")

    enum DatasetName: String, ExpressibleByArgument, CaseIterable {
        case cifar10, cifar100, fashionMnist = "fashion-mnist", auto
    }

    @Option(help: "Dataset (cifar10, cifar100, fashion-mnist, auto).") var dataset: DatasetName = .auto
    @Option(help: "Dataset directory (the extracted folder or its parent).") var data: String
    @Option(help: "Model name (resnet20, resnet18, preactresnet18, wrn28_2, …).") var model = "resnet20"
    @Option(help: ArgumentHelp(OptionSchema.trainer.help("mix"))) var mix = OptionSchema.trainer.text("mix")
    @Option(help: "Beta(α, α) parameter of the mixing method (default: the method's CIFAR default).") var alpha: Double?
    @Option(help: "SAMix^P: train with this saved, frozen Mixer (`train --save-mixer`, `ssl --save-mixer`) instead of --mix (or with --mix samix-p).")
    var mixer: String?
    @Option(help: "After training with --mix automix|samix, save the Mixer and its encoder here (SAMix^P).") var saveMixer: String?
    // AutoMix/SAMix ablation flags: no value = the engine's default; help from OptionSchema.learned.
    @Option(help: learnedHelp("eta")) var eta: Float?
    @Option(help: learnedHelp("mixer_loss")) var mixerLoss: String?
    @Option(help: learnedHelp("mask_loss")) var maskLossWeight: Float?
    @Option(help: learnedHelp("mask_loss_scope")) var maskLossScope: String?
    @Flag(help: "Hand-crafted policies (mixup, cutmix, …): add AutoMix's clean-image term L_one (CE on the clean batch; mixed images through a second head).")
    var cleanTerm = false
    @Option(help: "Epochs.") var epochs = 15
    @Option(help: "Batch size.") var batch = 128
    @Option(help: ArgumentHelp(OptionSchema.optimizer.help("lr", method: "sgd") + " SGD, cosine schedule."))
    var lr = Float(OptionSchema.optimizer.real("lr", method: "sgd"))
    @Option(help: "Floor of the cosine schedule (default: the method's reference — 0.5 × lr for automix/samix, OpenMixup's 0.1 → 0.05; 0 otherwise).")
    var minLr: Float?
    @Option(help: ArgumentHelp(OptionSchema.optimizer.help("weight_decay", method: "sgd")))
    var weightDecay = Float(OptionSchema.optimizer.real("weight_decay", method: "sgd"))
    @Option(help: "Hold out this many class-balanced training images (a fixed split, the same for every seed) and report their top-1 (val_*) every evaluated epoch; training uses the rest.")
    var valSplit: Int?
    @Option(help: "Use a class-balanced training subset of this many images (drawn after --val-split).") var trainSubset: Int?
    @Option(help: "Use the first N test images.") var testSubset: Int?
    @Option(help: "Random seed.") var seed: UInt64 = 0
    @Option(help: "Worker threads.") var threads: Int?
    @Option(help: "Evaluate on the test set every N epochs (and in each of the last 5 epochs).") var evalEvery = 1
    @Option(help: ArgumentHelp("Trainer checkpoint: resume from it when the file exists, rewrite it after every epoch.",
                               discussion: "Resuming continues bit-identically; the file must come from the same command line."))
    var checkpoint: String?
    @Option(help: "Stop after this epoch (with --checkpoint, a later call continues the run).") var stopAfter: Int?
    @Flag(help: ArgumentHelp("Under mpirun: BatchNorm statistics over the global batch of all ranks (default: each rank's shard, as PyTorch DDP).",
                             valueName: "sync-bn"))
    var syncBn = false
    @Option(help: ArgumentHelp("One process pairing AutoMix/SAMix samples inside N equal groups of each batch, as N data-parallel ranks pair inside their shards (reproduces an N-rank --sync-bn run).",
                               valueName: "N"))
    var pairingGroups: Int = 1
    @OptionGroup var buckets: GradientBucketOption
    @Flag(help: "Resume --checkpoint even if it was written by a run with other settings (not the same run any more).")
    var allowChangedSettings = false
    @Flag(help: "Print one JSON object per epoch.") var json = false

    func run() throws {
        try Engine.checkEnvironment(); if let threads { try Engine.setThreads(threads) }
        let kind: DatasetKind
        switch dataset {
        case .cifar10: kind = .cifar10
        case .cifar100: kind = .cifar100
        case .fashionMnist: kind = .idx
        case .auto: kind = .auto
        }
        var train = try ImageDataset.load(directory: data, split: .train, kind: kind)
        var test = try ImageDataset.load(directory: data, split: .test, kind: kind)
        var validation: ImageDataset? = nil
        if let n = valSplit { (train, validation) = try train.validationSplit(count: n) }
        if let n = trainSubset { train = try train.balancedSubset(count: n, seed: seed) }
        if let n = testSubset { test = try test.prefix(n) }
        let norm = Normalization.standard(for: train)
        let aug: Augmentation = train.channels == 3 ? .cifar : try Augmentation(padding: 2, horizontalFlip: true)
        let trainLoader = try DataLoader(dataset: train, batchSize: batch, shuffle: true, seed: seed,
                                         normalization: norm, augmentation: aug)
        let testLoader = try DataLoader(dataset: test, batchSize: 500, shuffle: false, normalization: norm, training: false)
        let valLoader = try validation.map {
            try DataLoader(dataset: $0, batchSize: 500, shuffle: false, normalization: norm, training: false)
        }
        let net = try ModelZoo.make(model, numClasses: train.classCount, inChannels: train.channels, seed: seed)
        if mix == "samix-p", mixer == nil { throw ValidationError("--mix samix-p needs --mixer FILE (a saved Mixer)") }
        var objective: TrainingObjective = try mixer.map { try PretrainedMixerObjective(path: $0, alpha: alpha) }
            ?? learnedVariant() ?? ObjectiveRegistry.make(mix, alpha: alpha)
        if cleanTerm { objective = try CleanImageTermObjective(wrapping: objective, seed: seed) }
        if saveMixer != nil, !(objective is LearnedMixObjective) {
            throw ValidationError("--save-mixer needs --mix automix or samix")
        }
        let opt = try Trainer.sgd(model: net, objective: objective, lr: lr, weightDecay: weightDecay)
        guard evalEvery >= 1 else { throw ValidationError("--eval-every must be ≥ 1, got \(evalEvery)") }
        let evaluateAt = { (e: Int) in e % evalEvery == 0 || e > epochs - 5 }
        let world = try ProcessGroup.world()
        let trainer = Trainer(model: net, objective: objective, optimizer: opt,
                              schedule: try LearningRateSchedule.cosine(baseLR: lr, minLR: minLr, objective: objective),
                              seed: seed)
        guard pairingGroups >= 1, batch % pairingGroups == 0 else {
            throw ValidationError("--pairing-groups must be ≥ 1 and divide --batch \(batch), got \(pairingGroups)")
        }
        trainer.pairingGroups = pairingGroups
        // Every option that defines the run (the engine adds optimizer, schedule, objective, seed).
        trainer.runSettings = runSettings(trainData: train, testData: test)
        if let path = checkpoint {
            try AtomicFile.requireWritable(path)
        }
        if let path = checkpoint, FileIO.exists(path) {
            try Checkpoint.load(into: trainer, from: path, allowChangedSettings: allowChangedSettings)
            if world.isMain { FileIO.stderr("resuming from \(path) after epoch \(trainer.epochsDone)\n") }
        }
        // Under mpirun with several ranks: data-parallel (each rank a shard of every global batch).
        try trainer.distribute(over: world, syncBatchNorm: syncBn, bucketCapMB: buckets.bucketCapMb)
        guard world.isMain else {
            try trainer.fit(trainLoader, epochs: epochs, evaluations: evaluationSets(testLoader, valLoader),
                            evaluateAt: evaluateAt, onEpoch: { $0.epoch < (stopAfter ?? epochs) })
            return
        }
        if let note = trainer.resumeNote { FileIO.stderr(note + "\n") }
        if world.isDistributed {
            FileIO.stderr("data-parallel over \(world.size) ranks (\(world.description)), global batch \(batch), "
                + "BatchNorm \(syncBn ? "synchronized" : "per rank")\n")
        }
        FileIO.stderr("\(model) on \(train.name): \(train.count) train / \(validation?.count ?? 0) validation / "
            + "\(test.count) test images, mix=\(objective.name), "
            + "\(epochs) epochs, batch \(batch), threads \(Engine.threads)\n")
        // The engine's fit loop evaluates the test set and the validation split (every network) at
        // the same epochs; this callback only prints and checkpoints.
        try trainer.fit(trainLoader, epochs: epochs, evaluations: evaluationSets(testLoader, valLoader),
                        evaluateAt: evaluateAt, onEpoch: { record in
            let test = record.evaluations["test"] ?? [:], val = record.evaluations["val"] ?? [:]
            // Every evaluated network: "online", plus e.g. "momentum" for AutoMix/SAMix.
            let heads = test.keys.sorted()
            if json {
                var fields = ["\"epoch\": \(record.epoch)", "\"epochs\": \(epochs)", "\"mix\": \"\(objective.name)\"",
                              "\"model\": \"\(model)\"", "\"seed\": \(seed)", "\"train_images\": \(train.count)",
                              "\"train_loss\": \(format3(record.trainLoss))", "\"lr\": \(record.learningRate)",
                              "\"seconds\": \(format3(record.seconds))"]
                for h in heads {
                    let suffix = h == "online" ? "" : "_" + h
                    fields.append("\"test_loss\(suffix)\": \(format3(test[h]?.loss ?? .nan))")
                    fields.append("\"test_top1\(suffix)\": \(format3((test[h]?.accuracy ?? .nan) * 100))")
                }
                for h in val.keys.sorted() {
                    let suffix = h == "online" ? "" : "_" + h
                    fields.append("\"val_loss\(suffix)\": \(format3(val[h]?.loss ?? .nan))")
                    fields.append("\"val_top1\(suffix)\": \(format3((val[h]?.accuracy ?? .nan) * 100))")
                }
                for (k, v) in record.metrics.sorted(by: { $0.key < $1.key }) { fields.append("\"\(k)\": \(format3(v))") }
                print("{" + fields.joined(separator: ", ") + "}")
            } else {
                let testLoss = test["online"].map { " test loss \(format3($0.loss))" } ?? ""
                let evals = heads.map { "\($0) top-1 \(format3((test[$0]?.accuracy ?? .nan) * 100))%" }
                    + val.keys.sorted().map { "val \($0) top-1 \(format3((val[$0]?.accuracy ?? .nan) * 100))%" }
                print("epoch \(record.epoch) loss \(format3(record.trainLoss))\(testLoss) "
                    + evals.joined(separator: ", ") + " lr \(format3(record.learningRate)) time \(format3(record.seconds)) s")
            }
            flushStdout()
            // Printed first, saved second: a line may repeat after a crash, never go missing.
            if let path = checkpoint { try Checkpoint.save(trainer, to: path) }
            return record.epoch < (stopAfter ?? epochs)
        })
        if let path = saveMixer, let learned = objective as? any MixerProviding {
            try learned.mixerCheckpoint(model: net).save(to: path)
            FileIO.stderr("saved the Mixer to \(path)\n")
        }
    }

    /// The data sets the fit loop evaluates (every network, at the same epochs).
    private func evaluationSets(_ test: DataLoader, _ val: DataLoader?) -> [FitEvaluation] {
        [FitEvaluation("test", test)] + (val.map { [FitEvaluation("val", $0)] } ?? [])
    }

    /// The command-line options that define the run, for checkpoint resume checks.
    func runSettings(trainData: ImageDataset, testData: ImageDataset) -> [String: String] {
        var s = ["cli.dataset": trainData.name, "cli.train_images": String(trainData.count),
                 "cli.test_images": String(testData.count), "cli.model": model, "cli.mix": mix,
                 "cli.batch": String(batch), "cli.epochs": String(epochs)]
        let optional: [(String, String?)] = [("alpha", alpha.map { "\($0)" }), ("mixer", mixer),
                                             ("min_lr", minLr.map { "\($0)" }), ("val_split", valSplit.map(String.init)),
                                             ("train_subset", trainSubset.map(String.init))]
        for (k, v) in optional { if let v { s["cli." + k] = v } }
        for (k, v) in learnedOptionPairs { s["cli.learned." + k] = v }
        if cleanTerm { s["cli.clean_term"] = "1" }
        if syncBn { s["cli.sync_bn"] = "1" }
        if pairingGroups != 1 { s["cli.pairing_groups"] = String(pairingGroups) }
        return s
    }

    /// AutoMix/SAMix with the ablation options (--eta, --mixer-loss, --mask-loss-weight,
    /// --mask-loss-scope), built by the engine's option parser — the same one the C ABI uses — from
    /// `learnedOptionPairs`; nil when none is given.
    func learnedVariant() throws -> TrainingObjective? {
        let pairs = learnedOptionPairs
        guard !pairs.isEmpty else { return nil }
        guard mix == "samix" || mix == "automix" else {
            throw ValidationError("--eta, --mixer-loss, --mask-loss-weight and --mask-loss-scope apply to --mix samix or automix")
        }
        let alphaPair = alpha.map { [("alpha", "\($0)")] } ?? []
        return LearnedMixObjective(config: try LearnedMixOptions.config(method: mix, pairs: alphaPair + pairs))
    }

    /// The learned-mixing flags as the engine's option pairs (OpenMixup names).
    var learnedOptionPairs: [(String, String)] {
        var p: [(String, String)] = []
        if let eta { p.append(("eta", "\(eta)")) }
        if let mixerLoss { p.append(("mixer_loss", mixerLoss)) }
        if let maskLossWeight { p.append(("mask_loss", "\(maskLossWeight)")) }
        if let maskLossScope { p.append(("mask_loss_scope", maskLossScope)) }
        return p
    }
}
