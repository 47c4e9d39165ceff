import SAMixCore
import SAMixOps
import SAMixNN
import SAMixData
import SAMixMixing

/// Self-supervised trainer checkpoints (safetensors): the MoCo encoders (query, key), the Mixer and
/// the SAMix-C cluster heads, the queue of negatives with its pointer, the SGD state and the
/// counters — everything `SSLTrainer.fit` needs to continue bit-identically (its randomness is a
/// function of seed, epoch and step; SAMix-C pseudo-labels are recomputed at each epoch start, from
/// the saved k-means centroids when warm-started; the saved labels only serve `pseudo_labels_kept`).
public enum SSLCheckpoint {
    public static let format = "samix.ssl-trainer"

    static func modules(_ m: MoCo) -> [(String, Module)] {
        var out: [(String, Module)] = [("query.", m.query), ("key.", m.key)]
        if let mixer = m.mixer { out.append(("mixer.", mixer)) }
        if let h = m.clusterHead { out.append(("cluster_head.", h)) }
        if let f = m.frozenClusterHead { out.append(("frozen_cluster_head.", f)) }
        return out
    }

    static func identity(_ t: SSLTrainer) -> [String: String] {
        ["architecture": t.model.config.architecture, "method": t.model.mix.name, "seed": String(t.config.seed),
         "model_seed": String(t.model.config.seed),
         "in_channels": String(t.model.config.inChannels), "queue_size": String(t.model.config.queueSize),
         "batch_size": String(t.config.batchSize),
         // Every other setting that defines the run: resuming with another one is refused, naming it.
         "epochs": String(t.config.epochs), "lr": "\(t.config.learningRate)", "min_lr": "\(t.config.minLearningRate)",
         "sgd_momentum": "\(t.config.momentum)", "weight_decay": "\(t.config.weightDecay)",
         "moco": String(describing: t.model.config), "mix_config": String(describing: t.model.mix)]
    }

    /// Writes `trainer` to `path` atomically (data-parallel: rank 0 only; the ranks hold the same state).
    public static func save(_ trainer: SSLTrainer, to path: String) throws {
        if let dp = trainer.dataParallel, !dp.group.isMain { return }
        var tensors: [(String, Tensor)] = []
        for (prefix, m) in modules(trainer.model) { tensors += m.stateDict().map { (prefix + $0.0, $0.1) } }
        tensors += try trainer.optimizer.stateDict().map { ("optimizer." + $0.0, $0.1) }
        tensors.append(("queue.keys", trainer.model.queue.keys))
        if let c = trainer.clusterCentroids { tensors.append(("kmeans.centroids", c)) }
        if let labels = trainer.model.pseudoLabels {   // for `pseudo_labels_kept` of the next epoch
            tensors.append(("kmeans.pseudo_labels", try Tensor(labels.map { Float($0) }, shape: [labels.count])))
        }
        var meta = identity(trainer)
        meta["format"] = format
        meta["format_version"] = "1"
        meta["epochs_done"] = String(trainer.epochsDone)
        meta["ranks"] = String(trainer.dataParallel?.group.size ?? 1)
        meta["steps_done"] = String(trainer.step)
        meta["queue_pointer"] = String(trainer.model.queue.pointer)
        meta["queue_filled"] = String(trainer.model.queue.filled)
        try SafetensorsFile(tensors: tensors, metadata: meta).write(to: path)
    }

    /// Restores a checkpoint written by `save` into a trainer built with the same method,
    /// architecture, seed, queue and batch size. Everything is validated before anything changes.
    public static func load(into trainer: SSLTrainer, from path: String) throws {
        let file = try SafetensorsFile.read(path)
        let meta = file.metadata
        guard meta["format"] == format else {
            throw SAMixError.invalidArgument("\(path): not a samix SSL trainer checkpoint (format \(meta["format"] ?? "none"))")
        }
        for (k, v) in identity(trainer) where meta[k] != v {
            throw SAMixError.invalidArgument("\(path): checkpoint has \(k) = \(meta[k] ?? "nothing"), this trainer has \(v)")
        }
        guard let epochs = meta["epochs_done"].flatMap({ Int($0) }), epochs >= 0,
              let steps = meta["steps_done"].flatMap({ Int($0) }), steps >= 0,
              let qp = meta["queue_pointer"].flatMap({ Int($0) }), let qf = meta["queue_filled"].flatMap({ Int($0) }) else {
            throw SAMixError.io("\(path): SSL checkpoint has invalid counters")
        }
        let byName = file.tensorsByName
        func group(_ prefix: String) -> [String: Tensor] {
            var g: [String: Tensor] = [:]
            for (k, v) in byName where k.hasPrefix(prefix) { g[String(k.dropFirst(prefix.count))] = v }
            return g
        }
        guard let keys = byName["queue.keys"], keys.shape == trainer.model.queue.keys.shape,
              qp >= 0, qp < trainer.model.queue.capacity, qf >= 0, qf <= trainer.model.queue.capacity else {
            throw SAMixError.invalidArgument("\(path): queue does not match this trainer")
        }
        let mods = modules(trainer.model)
        let known = mods.map { $0.0 } + ["optimizer.", "queue.", "kmeans."]
        var pseudoLabels: [Int]? = nil
        if let t = byName["kmeans.pseudo_labels"] {
            guard case .samix(let s) = trainer.model.mix, s.variant == .cluster, t.rank == 1, t.count >= 1, t.count <= 1 << 24,
                  (0..<t.count).allSatisfy({ t.data[$0] >= 0 && t.data[$0] < Float(s.clusters) && t.data[$0] == t.data[$0].rounded() }) else {
                throw SAMixError.invalidArgument("\(path): k-means pseudo-labels do not fit this trainer")
            }
            pseudoLabels = (0..<t.count).map { Int(t.data[$0]) }
        }
        let centroids = byName["kmeans.centroids"]
        if let c = centroids {
            guard case .samix(let s) = trainer.model.mix, s.variant == .cluster, s.kmeansWarmStart, c.rank == 2,
                  c.shape[0] >= 1, c.shape[0] <= s.clusters else {
                throw SAMixError.invalidArgument("\(path): k-means centroids \(c.shape) do not fit this trainer")
            }
        }
        if let stray = byName.keys.sorted().first(where: { k in !known.contains { k.hasPrefix($0) } }) {
            throw SAMixError.invalidArgument("\(path): unexpected tensor '\(stray)'")
        }
        // Load with rollback, so a bad file leaves the trainer unchanged.
        let snapshot = try mods.map { m in try m.1.stateDict().map { ($0.0, try $0.1.copy()) } }
        let optSnapshot = try trainer.optimizer.stateDict()
        do {
            for (prefix, m) in mods {
                do { try m.loadStateDict(group(prefix), strict: true) } catch let e as SAMixError {
                    throw SAMixError.invalidArgument("\(path): \(prefix.dropLast()): \(e.message)")
                }
            }
            try trainer.optimizer.loadStateDict(group("optimizer."))
        } catch {
            for ((_, m), state) in zip(mods, snapshot) { try? m.loadStateDict(Checkpoint.dict(state), strict: true) }
            try? trainer.optimizer.loadStateDict(Checkpoint.dict(optSnapshot))
            throw error
        }
        try trainer.model.queue.restore(keys: keys, pointer: qp, filled: qf)
        trainer.clusterCentroids = try centroids?.copy()
        if let pseudoLabels { try trainer.model.setPseudoLabels(pseudoLabels) }
        trainer.epochsDone = epochs
        trainer.step = steps
        trainer.checkpointRanks = meta["ranks"].flatMap { Int($0) } ?? 1
    }
}
