import ArgumentParser
import SAMix

/// Options shared by `ssl` and `probe`: data set, subsets, linear-probe protocol.
struct SSLDataOptions: ParsableArguments {
    @Option(help: "Dataset directory (CIFAR-10/100 binary or IDX, the extracted folder or its parent).") var data: String
    @Option(help: "Hold out this many class-balanced training images (a fixed split, the same for every seed): the kNN monitor runs on them and the final record adds val_* scores; training uses the rest.")
    var valSplit: Int?
    @Option(help: "Use a class-balanced training subset of this many images (drawn after --val-split).") var trainSubset: Int?
    @Option(help: "Use the first N test images.") var testSubset: Int?
    @Option(help: "Worker threads.") var threads: Int?

    /// (train, validation (with --val-split), test, normalisation of train).
    func load(seed: UInt64) throws -> (ImageDataset, ImageDataset?, ImageDataset, Normalization) {
        try Engine.checkEnvironment(); if let threads { try Engine.setThreads(threads) }
        var train = try ImageDataset.load(directory: data, split: .train)
        var test = try ImageDataset.load(directory: data, split: .test)
        var validation: ImageDataset? = nil
        if let n = valSplit { (train, validation) = try train.validationSplit(count: n) }
        if let n = trainSubset { train = try train.balancedSubset(count: n, seed: seed) }
        if let n = testSubset { test = try test.prefix(n) }
        return (train, validation, test, Normalization.standard(for: train))
    }
}

struct ProbeOptions: ParsableArguments {
    @Option(help: "Linear-probe epochs (docs/method.md §5.7: 100).") var probeEpochs = 100
    @Option(help: "Linear-probe learning rate (SGD momentum 0.9, cosine to 0; 10 suits L2-normalised features).") var probeLr: Float = 10
    @Option(help: "Linear-probe batch size.") var probeBatch = 256
    @Option(help: "Linear-probe weight decay.") var probeWeightDecay: Float = 0
    @Option(help: "Feature scaling before the linear layer: none, l2, standardize.") var probeScaling = "l2"

    func probe(seed: UInt64) throws -> LinearProbe {
        guard let s = LinearProbe.FeatureScaling(rawValue: probeScaling) else {
            throw ValidationError("unknown probe scaling '\(probeScaling)' (none, l2, standardize)")
        }
        return try LinearProbe(epochs: probeEpochs, batchSize: probeBatch, learningRate: probeLr,
                               weightDecay: probeWeightDecay, scaling: s, seed: seed)
    }
}

/// Evaluates a frozen backbone: kNN top-1 and the linear probe, one JSON object or a text line.
/// Over several ranks (identical backbones) each extracts a share of the features, which are
/// all-gathered; every rank then runs the same kNN and probe (deterministic: the same figures).
func evaluateBackbone(_ backbone: Backbone, train: ImageDataset, test: ImageDataset, normalization: Normalization,
                      probe: LinearProbe?, knnK: Int, knnTemperature: Float,
                      group: ProcessGroup = .single) throws -> [(String, String)] {
    let start = Clock.now()
    let fb = try SSLFeatures.extract(backbone, dataset: train, normalization: normalization, group: group)
    let ft = try SSLFeatures.extract(backbone, dataset: test, normalization: normalization, group: group)
    let ytr = train.labels.map { Int($0) }, yte = test.labels.map { Int($0) }
    let classes = max(train.classCount, test.classCount)
    let knn = try KNNClassifier.accuracy(trainFeatures: fb, trainLabels: ytr, testFeatures: ft, testLabels: yte,
                                         classes: classes, k: knnK, temperature: knnTemperature)
    var out: [(String, String)] = [("knn_top1", format3(knn * 100))]
    if let probe {
        let r = try probe.fit(trainFeatures: fb, trainLabels: ytr, testFeatures: ft, testLabels: yte, classes: classes)
        out += [("probe_top1", format3(r.testAccuracy * 100)), ("probe_train_top1", format3(r.trainAccuracy * 100)),
                ("probe_final_loss", format3(r.epochLosses.last ?? .nan))]
    }
    out.append(("eval_seconds", format3(Clock.now() - start)))
    return out
}

func printRecord(_ fields: [(String, String)], json: Bool) {
    if json {
        print("{" + fields.map { "\"\($0.0)\": \($0.1)" }.joined(separator: ", ") + "}")
    } else {
        print(fields.map { "\($0.0) \($0.1.replacingOccurrencesOfQuote())" }.joined(separator: "  "))
    }
    flushStdout()
}

extension String {
    fileprivate func replacingOccurrencesOfQuote() -> String { String(filter { $0 != "\"" }) }
    var jsonQuoted: String { "\"" + String(flatMap { $0 == "\"" ? ["\\", "\""] : [$0] }) + "\"" }
}

private let ssl = OptionSchema.ssl
private func sslHelp(_ name: String) -> ArgumentHelp { ArgumentHelp(OptionSchema.ssl.help(name)) }
private let sslFit = OptionSchema.sslFit
private func fitHelp(_ name: String) -> ArgumentHelp { ArgumentHelp(OptionSchema.sslFit.help(name)) }

/// `samix-bench ssl`: self-supervised pre-training (MoCo v2, MoCo v2 + Mixup, SAMix-I, SAMix-C) with
/// the kNN monitor, optional saving of the backbone and an optional final linear probe.
struct SSLCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "ssl",
        abstract: "Self-supervised pre-training (MoCo v2 / + Mixup / SAMix-I / SAMix-C) with kNN monitoring.")

    @OptionGroup var dataOptions: SSLDataOptions
    @OptionGroup var probeOptions: ProbeOptions
    @OptionGroup var buckets: GradientBucketOption
    @Option(help: "moco, moco-mixup, samix-i, samix-c.") var method = "moco"
    @Option(help: "Backbone (resnet18, resnet20, …).") var model = "resnet18"
    @Option(help: "Epochs.") var epochs = 10
    @Option(help: fitHelp("batch_size")) var batch = sslFit.int("batch_size")
    @Option(help: fitHelp("lr")) var lr = Float(sslFit.real("lr"))
    @Option(help: fitHelp("weight_decay")) var weightDecay = Float(sslFit.real("weight_decay"))
    // MoCo / SAMix options: defaults and help from the engine's schema (OptionSchema.ssl), the one
    // declaration the C ABI and Python read too; the flags reach the engine as its option pairs.
    @Option(help: sslHelp("queue_size")) var queue = ssl.int("queue_size")
    @Option(help: sslHelp("temperature")) var temperature = Float(ssl.real("temperature"))
    @Option(help: sslHelp("momentum")) var keyMomentum = ssl.real("momentum")
    @Option(help: sslHelp("shuffle_bn_groups")) var shuffleBnGroups = ssl.int("shuffle_bn_groups")
    @Option(help: sslHelp("neck_hidden")) var neckHidden = ssl.int("neck_hidden")
    @Flag(help: sslHelp("neck_bn")) var neckBn = ssl.bool("neck_bn")
    @Option(help: sslHelp("alpha")) var alpha = ssl.real("alpha", method: "samix")
    @Option(help: sslHelp("eta")) var eta = Float(ssl.real("eta", method: "samix"))
    @Option(help: sslHelp("mask_layer")) var maskLayer = ssl.int("mask_layer", method: "samix")
    @Option(help: sslHelp("clusters")) var clusters = ssl.int("clusters", method: "samix")
    @Flag(help: sslHelp("kmeans_warm_start")) var kmeansWarmStart = ssl.bool("kmeans_warm_start", method: "samix")
    @Option(help: sslHelp("cluster_features")) var clusterFeatures = ssl.text("cluster_features", method: "samix")
    @Option(help: sslHelp("cluster_pca_dim")) var clusterPcaDim = ssl.int("cluster_pca_dim", method: "samix")
    @Flag(help: sslHelp("detach_cluster_head_mixed"))
    var detachClusterHeadMixed = ssl.bool("detach_cluster_head_mixed", method: "samix")
    @Option(help: fitHelp("knn_every")) var knnEvery = sslFit.int("knn_every")
    @Option(help: fitHelp("knn_k")) var knnK = sslFit.int("knn_k")
    @Option(help: "Random seed.") var seed: UInt64 = 0
    @Option(help: "Save the query backbone to this file after training.") var save: String?
    @Option(help: "SAMix-I/C: save the Mixer and its key encoder after training (for `train --mixer`, `viz --mixer`).")
    var saveMixer: String?
    @Flag(help: "Run the linear probe on the trained backbone at the end.") var probe = false
    @Option(help: "SAMix-I/C: after training, score the Mixer's masks against shuffled Mixer masks, Mixup and CutMix on this many batches under the Mixer objective (SSLMaskComparison).")
    var compareMasks: Int?
    @Option(help: "Trainer checkpoint: resume from it when the file exists, rewrite it after every epoch.") var checkpoint: String?
    @Option(help: "Stop after this epoch (with --checkpoint, a later call continues the run).") var stopAfter: Int?
    @Flag(help: "Print one JSON object per epoch.") var json = false

    /// The MoCo/SAMix flags as the engine's option pairs (`SSLOptions`, the parser of the C ABI).
    var sslOptionPairs: [(String, String)] {
        var p: [(String, String)] = [("queue_size", "\(queue)"), ("temperature", "\(temperature)"),
                                     ("momentum", "\(keyMomentum)"), ("neck_hidden", "\(neckHidden)"),
                                     ("neck_bn", neckBn ? "1" : "0"), ("shuffle_bn_groups", "\(shuffleBnGroups)")]
        if method == "moco-mixup" || method == "samix-i" || method == "samix-c" { p.append(("alpha", "\(alpha)")) }
        if method == "samix-i" || method == "samix-c" {
            p += [("variant", method == "samix-i" ? "instance" : "cluster"), ("eta", "\(eta)"),
                  ("mask_layer", "\(maskLayer)"), ("clusters", "\(clusters)"),
                  ("kmeans_warm_start", kmeansWarmStart ? "1" : "0"), ("cluster_features", clusterFeatures),
                  ("cluster_pca_dim", "\(clusterPcaDim)"), ("detach_cluster_head_mixed", detachClusterHeadMixed ? "1" : "0")]
        }
        return p
    }

    /// The parsed MoCo/SAMix options of the flags.
    func sslOptions() throws -> SSLOptions {
        guard ["moco", "moco-mixup", "samix-i", "samix-c"].contains(method) else {
            throw ValidationError("unknown method '\(method)' (moco, moco-mixup, samix-i, samix-c)")
        }
        return try SSLOptions(mix: method, pairs: sslOptionPairs)
    }

    func run() throws {
        let (train, validation, test, norm) = try dataOptions.load(seed: seed)
        let options = try sslOptions()
        let mix = options.mix
        let cfg = try options.mocoConfig(architecture: model, inChannels: train.channels, seed: seed)
        if saveMixer != nil || compareMasks != nil, !(method == "samix-i" || method == "samix-c") {
            throw ValidationError("--save-mixer and --compare-masks need --method samix-i or samix-c")
        }
        if let c = compareMasks, c < 1 { throw ValidationError("--compare-masks must be ≥ 1") }
        let moco = try MoCo(config: cfg, mix: mix)
        let tcfg = try SSLTrainingConfig(epochs: epochs, batchSize: batch, learningRate: lr, weightDecay: weightDecay,
                                         knnEvery: knnEvery == 0 ? epochs : knnEvery, knnK: knnK, seed: seed)
        let aug = try SSLAugmentation.mocoV2(height: train.height, width: train.width)
        let trainer = try SSLTrainer(model: moco, config: tcfg, augmentation: aug, normalization: norm)
        let world = try ProcessGroup.world()
        let say = { (s: String) in if world.isMain { FileIO.stderr(s) } }
        say("\(mix.name) / \(model) on \(train.name): \(train.count) train / \(test.count) test images, "
            + "\(epochs) epochs × \(train.count / batch) steps, batch \(batch), queue \(queue), T \(temperature), "
            + "m \(keyMomentum), shuffle-BN groups \(shuffleBnGroups), threads \(Engine.threads)\n")
        if queue >= train.count {
            say("warning: queue \(queue) ≥ training images \(train.count): stale keys of the same images act as negatives\n")
        }
        if let path = checkpoint, FileIO.exists(path) {
            try SSLCheckpoint.load(into: trainer, from: path)
            say("resuming from \(path) after epoch \(trainer.epochsDone)\n")
        }
        // Under mpirun with several ranks: data-parallel (shards of every global batch, shuffle-BN across ranks).
        try trainer.distribute(over: world, bucketCapMB: buckets.bucketCapMb)
        if let note = trainer.resumeNote { say(note + "\n") }
        if world.isDistributed { say("data-parallel over \(world.size) ranks (\(world.description)), global batch \(batch)\n") }
        let t0 = Clock.now()
        // The kNN monitor runs on the validation split when there is one (tuning never looks at test).
        try trainer.fit(train: train, test: validation ?? test) { r in
            var f: [(String, String)] = [("epoch", "\(r.epoch)"), ("method", method.jsonQuoted), ("model", model.jsonQuoted),
                                         ("seed", "\(seed)")]
            f += r.metrics.map { ($0.0, format3($0.1)) }
            if let k = r.knnTop1 {
                f.append(("knn_top1", format3(k * 100)))
                f.append(("knn_on", (validation == nil ? "test" : "val").jsonQuoted))
            }
            if let i = r.clusterInertia { f.append(("kmeans_inertia", format3(i))) }
            if let k = r.pseudoLabelsKept { f.append(("pseudo_labels_kept", format3(k))) }
            f += [("lr", format3(Double(r.learningRate))), ("seconds", format3(r.seconds)),
                  ("img_per_s", format3(Double(r.steps * batch) / r.seconds))]
            if world.isMain { printRecord(f, json: json) }
            // Printed first, saved second: a line may repeat after a crash, never go missing.
            if let path = checkpoint { try SSLCheckpoint.save(trainer, to: path) }
            return r.epoch < (stopAfter ?? epochs)
        }
        if trainer.epochsDone < epochs { return }   // --stop-after: the probe waits for the last epoch
        // The final kNN and probe: every rank extracts a share of the features (a collective).
        var final: [(String, String)]? = nil
        if probe {
            let e = try evaluateBackbone(moco.backbone, train: train, test: test, normalization: norm,
                                         probe: try probeOptions.probe(seed: seed), knnK: knnK,
                                         knnTemperature: Float(sslFit.real("knn_temperature")), group: world)
            // With --val-split: the same kNN and probe protocol scored on the validation split (val_*).
            let v = try validation.map {
                try evaluateBackbone(moco.backbone, train: train, test: $0, normalization: norm,
                                     probe: try probeOptions.probe(seed: seed), knnK: knnK,
                                     knnTemperature: Float(sslFit.real("knn_temperature")), group: world)
                    .filter { $0.0 != "eval_seconds" }.map { ("val_" + $0.0, $0.1) }
            } ?? []
            final = [("final", "true"), ("method", method.jsonQuoted), ("model", model.jsonQuoted), ("seed", "\(seed)"),
                     ("pretrain_seconds", format3(Clock.now() - t0))] + e + v
        }
        guard world.isMain else {   // the rest is rank 0's, except a clustering it needs (a collective)
            if compareMasks != nil, case .samix(let s) = mix, s.variant == .cluster, moco.pseudoLabels == nil {
                try trainer.refreshPseudoLabels(train, epoch: epochs)
            }
            return
        }
        if let save {
            try BackboneCheckpoint.save(moco.backbone, architecture: model, inChannels: train.channels,
                                        metadata: [("method", method), ("epochs", "\(epochs)"), ("seed", "\(seed)"),
                                                   ("train_images", "\(train.count)")], to: save)
            FileIO.stderr("saved backbone to \(save)\n")
        }
        if let saveMixer {
            try moco.mixerCheckpoint().save(to: saveMixer)
            FileIO.stderr("saved the Mixer to \(saveMixer)\n")
        }
        if let batches = compareMasks {
            if case .samix(let s) = mix, s.variant == .cluster, moco.pseudoLabels == nil {
                try trainer.refreshPseudoLabels(train, epoch: epochs)   // a resumed run: the next epoch's labels
            }
            let rows = try SSLMaskComparison.run(model: moco, dataset: train, augmentation: aug, normalization: norm,
                                                 batches: batches, batchSize: batch, seed: seed &+ 99)
            for r in rows {
                var f: [(String, String)] = [("mask_comparison", "true"), ("method", method.jsonQuoted), ("seed", "\(seed)"),
                                             ("mask", r.mask.jsonQuoted), ("batches", "\(batches)"), ("loss_mb", format3(r.loss))]
                if let v = r.local { f.append(("loss_mb_local", format3(v))) }
                if let v = r.localExcess { f.append(("local_excess", format3(v))) }
                if let v = r.global { f.append(("loss_mb_global", format3(v))) }
                if let v = r.dominantCorrect { f.append(("dominant_correct", format3(v))) }
                f += [("own_share", format3(r.ownShare)), ("mask_std", format3(r.spatialStd))]
                printRecord(f, json: json)
            }
        }
        if let final { printRecord(final, json: json) }
    }
}

/// `samix-bench probe`: kNN top-1 and the linear probe of a saved backbone (docs/method.md §5.7).
struct ProbeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "probe",
        abstract: "kNN and linear-probe evaluation of a backbone saved by `samix-bench ssl --save`.")

    @OptionGroup var dataOptions: SSLDataOptions
    @OptionGroup var probeOptions: ProbeOptions
    @Option(help: "Backbone file written by `ssl --save`.") var backbone: String
    @Option(help: fitHelp("knn_k")) var knnK = sslFit.int("knn_k")
    @Option(help: "Random seed (subset and probe initialisation order).") var seed: UInt64 = 0
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
        let (train, _, test, norm) = try dataOptions.load(seed: seed)
        let loaded = try BackboneCheckpoint.load(from: backbone)
        // Under mpirun: the ranks share the feature extraction; rank 0 prints.
        let world = try ProcessGroup.world()
        let e = try evaluateBackbone(loaded.backbone, train: train, test: test, normalization: norm,
                                     probe: try probeOptions.probe(seed: seed), knnK: knnK,
                                     knnTemperature: Float(sslFit.real("knn_temperature")), group: world)
        guard world.isMain else { return }
        let method = loaded.metadata["method"] ?? "unknown"
        printRecord([("backbone", backbone.jsonQuoted), ("method", method.jsonQuoted),
                     ("model", loaded.architecture.jsonQuoted), ("train_images", "\(train.count)")] + e, json: json)
    }
}
