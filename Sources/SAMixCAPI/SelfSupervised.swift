import Glibc
import SAMix

// Self-supervised learning through the C ABI: MoCo v2 (plain, + Mixup, SAMix-I, SAMix-C) behind
// handles of kind `.ssl`, pre-training with the engine's `SSLTrainer`, saving the backbone, and the
// frozen-backbone evaluations (features, kNN, linear probe) of an SSL model or a classifier.

/// A MoCo model plus the input normalisation fixed by its first training data.
final class SSLBox {
    let moco: MoCo
    var normalization: Normalization?
    /// Completed `samix_ssl_fit` calls (each later call draws from a fork of the seed).
    var fits = 0
    /// A `samix_ssl_fit` call its callback stopped after a finished epoch: the next call with the
    /// same arguments and dataset handles continues it (so callbacks can run between epochs with
    /// no engine call active); any other call drops it.
    var unfinished: (trainer: SSLTrainer, call: String)?
    init(_ moco: MoCo) { self.moco = moco }
}

@_cdecl("samix_ssl_create")
public func samix_ssl_create(_ architecture: UnsafePointer<CChar>?, _ inChannels: Int64, _ mix: UnsafePointer<CChar>?,
                             _ options: UnsafePointer<CChar>?, _ seed: UInt64,
                             _ out: UnsafeMutablePointer<UInt64>?) -> Int32 {
    guarded("samix_ssl_create") {
        let out = try nonNull(out, "out")
        let arch = try readString(architecture, "architecture", maxBytes: 64)
        let mixName = mix == nil ? "none" : try readString(mix, "mix", maxBytes: 64)
        let text = options == nil ? "" : try readString(options, "options", maxBytes: 1 << 16)
        guard inChannels >= 1, inChannels <= 4096 else {
            throw CAPIError(.invalidArgument, "in_channels must be in 1...4096, got \(inChannels)")
        }
        // The engine parses, defaults (OptionSchema.ssl) and validates every option.
        let parsed = try SSLOptions(mix: mixName, text: text)
        let cfg = try parsed.mocoConfig(architecture: arch, inChannels: Int(inChannels), seed: seed)
        let sslMix = parsed.mix
        let moco = try MoCo(config: cfg, mix: sslMix)
        out.pointee = Registry.shared.insert(SSLBox(moco), kind: .ssl)
    }
}

@_cdecl("samix_ssl_free")
public func samix_ssl_free(_ handle: UInt64) -> Int32 {
    freeHandle("samix_ssl_free", handle, .ssl)
}

/// Called after every epoch of `samix_ssl_fit` with the epoch's record as "key=value" lines;
/// return non-zero to stop.
public typealias RecordCallback = @convention(c) (UnsafeMutableRawPointer?, UnsafePointer<CChar>?) -> Int32

@_cdecl("samix_ssl_fit")
public func samix_ssl_fit(_ handle: UInt64, _ train: UInt64, _ val: UInt64, _ epochs: Int64, _ batchSize: Int64,
                          _ lr: Double, _ weightDecay: Double, _ knnEvery: Int64, _ knnK: Int64,
                          _ knnTemperature: Double, _ checkpoint: UnsafePointer<CChar>?, _ stepRecords: Int32,
                          _ callback: RecordCallback?, _ user: UnsafeMutableRawPointer?) -> Int32 {
    guarded("samix_ssl_fit") {
        guard stepRecords == 0 || stepRecords == 1 else {
            throw CAPIError(.invalidArgument, "step_records must be 0 or 1, got \(stepRecords)")
        }
        let checkpointPath = try checkpoint.map { try readString($0, "checkpoint", maxBytes: 4096) }
        guard epochs >= 1, epochs <= 1 << 20 else { throw CAPIError(.invalidArgument, "epochs must be ≥ 1, got \(epochs)") }
        guard batchSize >= 2, batchSize <= 1 << 20 else {
            throw CAPIError(.invalidArgument, "batch_size must be ≥ 2, got \(batchSize)")
        }
        guard lr.isFinite, lr > 0 else { throw CAPIError(.invalidArgument, "lr must be > 0, got \(lr)") }
        guard weightDecay.isFinite, weightDecay >= 0 else {
            throw CAPIError(.invalidArgument, "weight_decay must be ≥ 0, got \(weightDecay)")
        }
        guard knnEvery >= 0, knnEvery <= 1 << 20 else { throw CAPIError(.invalidArgument, "knn_every must be ≥ 0") }
        guard knnK >= 1, knnK <= 1 << 30 else { throw CAPIError(.invalidArgument, "knn_k must be ≥ 1, got \(knnK)") }
        guard knnTemperature.isFinite, knnTemperature > 0 else {
            throw CAPIError(.invalidArgument, "knn_temperature must be > 0, got \(knnTemperature)")
        }
        let trainSet = try datasetValue(train)
        let valSet = val == 0 ? nil : try datasetValue(val)
        try Registry.shared.with(handle, .ssl, as: SSLBox.self) { b in
            let c = b.moco.config
            for ds in [trainSet] + (valSet.map { [$0] } ?? []) {
                guard ds.channels == c.inChannels else {
                    throw CAPIError(.shape, "images have \(ds.channels) channels, the encoder expects \(c.inChannels)")
                }
            }
            if let v = valSet, v.height != trainSet.height || v.width != trainSet.width {
                throw CAPIError(.shape, "validation images are \(v.height)×\(v.width), training images \(trainSet.height)×\(trainSet.width)")
            }
            guard trainSet.count >= Int(batchSize) else {
                throw CAPIError(.invalidArgument, "the training set (\(trainSet.count) images) is smaller than one batch (\(batchSize))")
            }
            let norm = b.normalization ?? Normalization.standard(for: trainSet)
            let call = [epochs, batchSize, knnEvery, knnK].map { "\($0)" }.joined(separator: " ")
                + " \(lr.bitPattern) \(weightDecay.bitPattern) \(knnTemperature.bitPattern) \(train) \(val) \(checkpointPath ?? "-")"
            let trainer: SSLTrainer
            if let u = b.unfinished, u.call == call {
                trainer = u.trainer   // continues the call its callback stopped after an epoch
            } else {
                let seed = b.fits == 0 ? c.seed : SplitMix64(seed: c.seed).fork(index: 90_000 + UInt64(b.fits)).state
                let tcfg = try SSLTrainingConfig(epochs: Int(epochs), batchSize: Int(batchSize), learningRate: Float(lr),
                                                 weightDecay: Float(weightDecay), knnEvery: Int(knnEvery), knnK: Int(knnK),
                                                 knnTemperature: Float(knnTemperature), seed: seed)
                let aug = try SSLAugmentation.mocoV2(height: trainSet.height, width: trainSet.width)
                trainer = try SSLTrainer(model: b.moco, config: tcfg, augmentation: aug, normalization: norm)
                if let path = checkpointPath, FileIO.exists(path) {
                    try SSLCheckpoint.load(into: trainer, from: path)
                }
                // Under mpirun with several ranks: data-parallel (see SSLTrainer.distribute).
                try trainer.distribute(over: try ProcessGroup.world())
            }
            b.unfinished = nil
            b.normalization = norm
            b.moco.train()
            var saveError: Error?
            func send(_ lines: [String]) -> Bool {
                guard let callback else { return true }
                return lines.joined(separator: "\n").withCString { callback(user, $0) } == 0
            }
            let stepHook: ((Int, Int, Int, Double) -> Bool)? = stepRecords != 0 && callback != nil
                ? { e, s, n, l in send(["type=step", "epoch=\(e)", "step=\(s)", "steps=\(n)", "loss=\(l)"]) } : nil
            let stopped = try trainer.fit(train: trainSet, test: valSet, onEpoch: { r in
                if let path = checkpointPath {
                    do { try SSLCheckpoint.save(trainer, to: path) } catch { saveError = error; return false }
                }
                var lines = ["epoch=\(r.epoch)", "loss=\(r.loss)", "lr=\(r.learningRate)", "seconds=\(r.seconds)",
                             "steps=\(r.steps)"]
                if let k = r.knnTop1 { lines.append("knn_top1=\(k)") }
                if let i = r.clusterInertia { lines.append("kmeans_inertia=\(i)") }
                if let k = r.pseudoLabelsKept { lines.append("pseudo_labels_kept=\(k)") }
                lines += r.metrics.map { "\($0.0)=\($0.1)" }
                return send(lines)
            }, onStep: stepHook)
            if let saveError { throw saveError }
            // A call stopped early does not count: running it again (with its checkpoint) continues
            // the same run, with the same seed. Stopped after a finished epoch, the same call
            // continues in memory too.
            if !stopped {
                b.fits += 1
            } else if trainer.canContinue(on: trainSet) {
                b.unfinished = (trainer, call)
            }
        }
    }
}

/// Saves the query backbone (`BackboneCheckpoint`) with n caller key/value pairs.
@_cdecl("samix_ssl_save_backbone")
public func samix_ssl_save_backbone(_ handle: UInt64, _ path: UnsafePointer<CChar>?, _ n: Int64,
                                    _ keys: UnsafePointer<UnsafePointer<CChar>?>?,
                                    _ values: UnsafePointer<UnsafePointer<CChar>?>?) -> Int32 {
    guarded("samix_ssl_save_backbone") {
        let file = try readString(path, "path", maxBytes: 4096)
        let meta = try readMetadata(n, keys, values)
        guard meta["architecture"] == nil, meta["in_channels"] == nil else {
            throw CAPIError(.invalidArgument, "metadata keys 'architecture' and 'in_channels' are reserved")
        }
        try Registry.shared.with(handle, .ssl, as: SSLBox.self) { b in
            let c = b.moco.config
            let extra = [("method", b.moco.mix.name)] + meta.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
            try BackboneCheckpoint.save(b.moco.backbone, architecture: c.architecture, inChannels: c.inChannels,
                                        metadata: extra, to: file)
        }
    }
}

/// SAMix-I/C: `SSLMaskComparison` of the Mixer on `batches` batches of `dataset` (normalised as by the
/// last `samix_ssl_fit`, or with the dataset's standard statistics before any; SAMix-C needs the data
/// of its last fit, whose pseudo-labels it uses).
/// Calls `callback` once per mask kind with "key=value" lines (mask, loss_mb, …).
@_cdecl("samix_ssl_compare_masks")
public func samix_ssl_compare_masks(_ handle: UInt64, _ dataset: UInt64, _ batches: Int64, _ batchSize: Int64,
                                    _ seed: UInt64, _ callback: RecordCallback?, _ user: UnsafeMutableRawPointer?) -> Int32 {
    guarded("samix_ssl_compare_masks") {
        guard batches >= 1, batches <= 1 << 20 else { throw CAPIError(.invalidArgument, "batches must be ≥ 1, got \(batches)") }
        let data = try datasetValue(dataset)
        guard batchSize >= 2, batchSize <= 1 << 30 else { throw CAPIError(.invalidArgument, "batch_size must be ≥ 2, got \(batchSize)") }
        try Registry.shared.with(handle, .ssl, as: SSLBox.self) { b in
            let m = b.moco
            guard data.channels == m.config.inChannels else {
                throw CAPIError(.shape, "images have \(data.channels) channels, the encoder expects \(m.config.inChannels)")
            }
            let rows = try SSLMaskComparison.run(model: m, dataset: data,
                                                 augmentation: try .mocoV2(height: data.height, width: data.width),
                                                 normalization: b.normalization ?? .standard(for: data),
                                                 batches: Int(batches), batchSize: Int(batchSize),
                                                 seed: seed)
            guard let callback else { return }
            for r in rows {
                var lines = ["mask=\(r.mask)", "loss_mb=\(r.loss)"]
                if let v = r.local { lines.append("loss_mb_local=\(v)") }
                if let v = r.localExcess { lines.append("local_excess=\(v)") }
                if let v = r.global { lines.append("loss_mb_global=\(v)") }
                if let v = r.dominantCorrect { lines.append("dominant_correct=\(v)") }
                lines += ["own_share=\(r.ownShare)", "mask_std=\(r.spatialStd)"]
                if lines.joined(separator: "\n").withCString({ callback(user, $0) }) != 0 { break }
            }
        }
    }
}

/// SAMix-I/C: saves the Mixer with its key encoder (`MixerCheckpoint`, the file of
/// `samix_trainer_save_mixer`).
@_cdecl("samix_ssl_save_mixer")
public func samix_ssl_save_mixer(_ handle: UInt64, _ path: UnsafePointer<CChar>?) -> Int32 {
    guarded("samix_ssl_save_mixer") {
        let file = try readString(path, "path", maxBytes: 4096)
        try Registry.shared.with(handle, .ssl, as: SSLBox.self) { b in
            try b.moco.mixerCheckpoint().save(to: file)
        }
    }
}

/// Loads a backbone saved by `samix_ssl_save_backbone` into a classifier of the same architecture
/// and input channels (the head is unchanged).
@_cdecl("samix_model_load_backbone")
public func samix_model_load_backbone(_ handle: UInt64, _ path: UnsafePointer<CChar>?) -> Int32 {
    guarded("samix_model_load_backbone") {
        let file = try readString(path, "path", maxBytes: 4096)
        let loaded = try BackboneCheckpoint.load(from: file)
        try Registry.shared.with(handle, .model, as: ImageClassifier.self) { m in
            guard loaded.architecture == m.architecture, loaded.inChannels == m.inChannels else {
                throw CAPIError(.invalidArgument, "\(file) holds a \(loaded.architecture) backbone for \(loaded.inChannels) channels, "
                    + "the model is a \(m.architecture) for \(m.inChannels) channels")
            }
            try EMA.copy(target: m.backbone, source: loaded.backbone)
        }
    }
}

// MARK: - Frozen-backbone evaluation

/// Runs `body` with the backbone behind an SSL or model handle (holding its lock) and the
/// normalisation of the SSL model's pre-training data, if any.
func withBackbone<R>(_ handle: UInt64, _ body: (EvalBackbone, Normalization?) throws -> R) throws -> R {
    switch Registry.shared.kind(of: handle) {
    case .ssl?:
        return try Registry.shared.with(handle, .ssl, as: SSLBox.self) {
            try body(EvalBackbone($0.moco.backbone, $0.moco.config.inChannels), $0.normalization)
        }
    case .model?:
        return try Registry.shared.with(handle, .model, as: ImageClassifier.self) {
            try body(EvalBackbone($0.backbone, $0.inChannels), nil)
        }
    case let k?:
        throw CAPIError(.wrongHandleKind, "handle 0x\(String(handle, radix: 16)) is a \(k.name), expected an SSL model or a model")
    case nil:
        throw CAPIError(.invalidHandle, handle == 0 ? "encoder handle is null (0)"
            : "encoder handle 0x\(String(handle, radix: 16)) is not live (freed or never created)")
    }
}

/// A backbone with its input channel count.
struct EvalBackbone {
    let net: Backbone
    let inChannels: Int
    init(_ net: Backbone, _ inChannels: Int) { self.net = net; self.inChannels = inChannels }
    var featureChannels: Int { net.featureChannels }
}

func checkEvalData(_ backbone: EvalBackbone, _ sets: [ImageDataset]) throws {
    for ds in sets {
        guard ds.channels == backbone.inChannels else {
            throw CAPIError(.shape, "images have \(ds.channels) channels, the backbone expects \(backbone.inChannels)")
        }
        guard ds.count >= 1 else { throw CAPIError(.shape, "empty dataset") }
    }
}

/// Global-average-pooled last-stage features (evaluation mode) of a dataset into out (count =
/// N × dim floats; count 0 only reports *dim). l2 = 1: unit-norm rows.
@_cdecl("samix_backbone_features")
public func samix_backbone_features(_ handle: UInt64, _ data: UInt64, _ l2: Int32, _ out: UnsafeMutablePointer<Float>?,
                                    _ count: Int64, _ dim: UnsafeMutablePointer<Int64>?) -> Int32 {
    guarded("samix_backbone_features") {
        let ds = try datasetValue(data)
        try withBackbone(handle) { bb, norm in
            dim?.pointee = Int64(bb.featureChannels)
            if count == 0 { return }
            try checkEvalData(bb, [ds])
            guard count == Int64(ds.count * bb.featureChannels) else {
                throw CAPIError(.shape, "out must hold N·dim = \(ds.count * bb.featureChannels) floats, got \(count)")
            }
            let o = try nonNull(out, "out")
            let f = try SSLFeatures.extract(bb.net, dataset: ds, normalization: norm ?? Normalization.standard(for: ds),
                                            l2Normalize: l2 != 0)
            o.update(from: f.data, count: f.count)
        }
    }
}

/// Weighted kNN top-1 (cosine similarity, k neighbours vote with exp(s/temperature)) of the
/// frozen backbone: memory bank = train, queries = test.
@_cdecl("samix_backbone_knn")
public func samix_backbone_knn(_ handle: UInt64, _ train: UInt64, _ test: UInt64, _ k: Int64, _ temperature: Double,
                               _ accuracy: UnsafeMutablePointer<Double>?) -> Int32 {
    guarded("samix_backbone_knn") {
        let acc = try nonNull(accuracy, "accuracy")
        guard k >= 1, k <= 1 << 30 else { throw CAPIError(.invalidArgument, "k must be ≥ 1, got \(k)") }
        guard temperature.isFinite, temperature > 0 else {
            throw CAPIError(.invalidArgument, "temperature must be > 0, got \(temperature)")
        }
        let tr = try datasetValue(train), te = try datasetValue(test)
        try withBackbone(handle) { bb, norm in
            try checkEvalData(bb, [tr, te])
            let n = norm ?? Normalization.standard(for: tr)
            let ftr = try SSLFeatures.extract(bb.net, dataset: tr, normalization: n)
            let fte = try SSLFeatures.extract(bb.net, dataset: te, normalization: n)
            acc.pointee = try KNNClassifier.accuracy(trainFeatures: ftr, trainLabels: tr.labels.map { Int($0) },
                                                     testFeatures: fte, testLabels: te.labels.map { Int($0) },
                                                     classes: max(tr.classCount, te.classCount), k: Int(k),
                                                     temperature: Float(temperature))
        }
    }
}

/// Linear probe of the frozen backbone (GAP features, one linear layer, SGD with momentum and a
/// cosine schedule). scaling: "l2" (NULL), "none" or "standardize".
@_cdecl("samix_backbone_linear_probe")
public func samix_backbone_linear_probe(_ handle: UInt64, _ train: UInt64, _ test: UInt64, _ epochs: Int64,
                                        _ batchSize: Int64, _ lr: Double, _ momentum: Double, _ weightDecay: Double,
                                        _ scaling: UnsafePointer<CChar>?, _ seed: UInt64,
                                        _ trainAccuracy: UnsafeMutablePointer<Double>?,
                                        _ testAccuracy: UnsafeMutablePointer<Double>?) -> Int32 {
    guarded("samix_backbone_linear_probe") {
        guard epochs >= 1, epochs <= 1 << 20 else { throw CAPIError(.invalidArgument, "epochs must be ≥ 1, got \(epochs)") }
        guard batchSize >= 1, batchSize <= 1 << 20 else {
            throw CAPIError(.invalidArgument, "batch_size must be ≥ 1, got \(batchSize)")
        }
        for (v, n) in [(momentum, "momentum"), (weightDecay, "weight_decay")] where !(v.isFinite && v >= 0) {
            throw CAPIError(.invalidArgument, "\(n) must be finite and ≥ 0, got \(v)")
        }
        let scaleName = scaling == nil ? "l2" : try readString(scaling, "scaling", maxBytes: 64).lowercased()
        guard let sc = LinearProbe.FeatureScaling(rawValue: scaleName) else {
            throw CAPIError(.invalidArgument, "unknown scaling '\(scaleName)'; expected l2, none or standardize")
        }
        let probe = try LinearProbe(epochs: Int(epochs), batchSize: Int(batchSize), learningRate: Float(lr),
                                    momentum: Float(momentum), weightDecay: Float(weightDecay), scaling: sc, seed: seed)
        let tr = try datasetValue(train), te = try datasetValue(test)
        try withBackbone(handle) { bb, norm in
            try checkEvalData(bb, [tr, te])
            let r = try SSLEvaluation.linearProbe(backbone: bb.net, train: tr, test: te,
                                                  normalization: norm ?? Normalization.standard(for: tr), probe: probe)
            trainAccuracy?.pointee = r.trainAccuracy
            testAccuracy?.pointee = r.testAccuracy
        }
    }
}
