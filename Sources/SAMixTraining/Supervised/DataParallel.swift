import SAMixCore
import SAMixOps
import SAMixNN
import SAMixData
import SAMixMixing

/// Data-parallel training over a process group, the role of PyTorch's DistributedDataParallel:
///
/// - every rank builds the same global batch (order and augmentation are functions of the seed) and
///   trains on its contiguous shard of rows (`rows(of:)`; shard sizes differ by at most one);
/// - after backward, the gradients of every trainable parameter (backbone, head, the objective's
///   Mixer) are summed over ranks weighted by each shard's row count, so the update equals the
///   gradient of the global batch's mean loss, and every rank takes the same optimizer step;
/// - the step's randomness (λ, pairings, masks) comes from the shared seed, so it is the same on
///   every rank. Image-space policies (`GlobalBatchObjective`: Mixup, CutMix, …) mix the global
///   batch exactly as one process does and train on the shard of the mixed batch; the other
///   objectives (AutoMix/SAMix, ManifoldMix, the saliency-based ones) pair samples inside each
///   rank's shard, as OpenMixup does under DDP;
/// - BatchNorm uses each rank's shard statistics (DDP's default; running statistics are rank 0's,
///   copied to every rank before evaluation and checkpoints) or, with `syncBatchNorm`, statistics
///   of the global batch (then N ranks compute what one process computes on the global batch);
/// - after every epoch the ranks prove they hold bit-identical parameters and buffers, else every
///   rank stops with `SAMixError.distributed` (so no checkpoint is written from diverged state).
///
/// Gradients are averaged in buckets whose all-reduce starts during backward (`GradientBuckets`,
/// DDP's overlap; `bucketCapMB`, default DDP's 25 MiB with a 1 MiB first bucket), or with
/// `bucketCapMB` 0 in one flat all-reduce after backward.
public final class DataParallel {
    public let group: ProcessGroup
    public let syncBatchNorm: Bool
    /// Largest gradient bucket in MiB (0: one all-reduce after backward).
    public let bucketCapMB: Double
    /// DDP's `bucket_cap_mb` default.
    public static let defaultBucketCapMB = 25.0
    /// DDP's first-bucket size (1 MiB): the last layers' gradients start reducing early.
    public static let firstBucketCapMB = 1.0
    /// The flat gradient buffer reused across steps (`bucketCapMB` 0).
    private var flat: [Float] = []
    /// The communicator of the bucketed reductions (a duplicate of `group`'s, so they never
    /// interleave with other collectives, e.g. synchronized BatchNorm's during backward).
    private let gradientGroup: ProcessGroup?
    private var buckets: GradientBuckets?

    init(group: ProcessGroup, syncBatchNorm: Bool, bucketCapMB: Double = DataParallel.defaultBucketCapMB) throws {
        try require(bucketCapMB >= 0 && bucketCapMB.isFinite, "the gradient bucket cap must be ≥ 0 MiB, got \(bucketCapMB)")
        self.group = group
        self.syncBatchNorm = syncBatchNorm
        self.bucketCapMB = bucketCapMB
        gradientGroup = bucketCapMB > 0 ? try group.duplicate() : nil   // collective: every rank, same point
    }

    /// Number of gradient buckets of the last bucketed step (0 before one or without buckets).
    public var bucketCount: Int { buckets?.bucketCount ?? 0 }

    /// Runs backward of `loss` (this rank's mean loss over its `rows` rows, value `lossValue`) and
    /// replaces every gradient of `parameters` by the row-weighted mean over ranks; returns the
    /// global batch's mean loss. With buckets, reductions start while backward runs.
    func backwardAndAverage(_ loss: Tensor, lossValue: Double, parameters: [(String, Tensor)], rows: Int) throws -> Double {
        guard let gradientGroup else {
            try loss.backward()
            return try averageGradients(parameters, rows: rows, loss: lossValue)
        }
        let tensors = parameters.map { $0.1 }
        if buckets?.identity != tensors.map({ ObjectIdentifier($0) }) {
            let mib = 1 << 20
            buckets = try GradientBuckets(parameters: tensors, group: gradientGroup,
                                          capBytes: Swift.max(4, Int(bucketCapMB * Double(mib))),
                                          firstCapBytes: Swift.max(4, Int(Swift.min(bucketCapMB, Self.firstBucketCapMB) * Double(mib))))
        }
        let b = buckets!
        try b.begin(rows: rows)
        try loss.backward(onLeafReady: b.leafReady)
        return try b.finish(loss: lossValue)
    }

    /// The note for a run resumed from a checkpoint of `saved` ranks with `now` ranks (nil: same count,
    /// or not resumed): it continues correctly, but not bit-identically.
    static func resumeNote(saved: Int?, now: Int) -> String? {
        guard let saved, saved != now else { return nil }
        return "resumed a checkpoint written by \(saved) rank(s) with \(now): the run continues, "
            + "but not bit-identically to an uninterrupted \(saved)-rank run"
    }

    /// The rows of a global batch of `count` rows this rank trains on.
    public func rows(of count: Int) -> Range<Int> {
        (count * group.rank / group.size)..<(count * (group.rank + 1) / group.size)
    }

    /// This rank's shard of a global training batch (its images are copied into a reused buffer).
    public func shard(_ batch: Batch) throws -> Batch {
        let r = rows(of: batch.size)
        try require(!r.isEmpty, "a global batch of \(batch.size) images cannot give each of \(group.size) ranks an image; "
                    + "use a batch size of at least \(group.size) (and drop the last batch if it is smaller)")
        return try batch.rows(r)
    }

    /// Replaces every gradient of `parameters` by the row-weighted mean over ranks
    /// Σ_r n_r·g_r / Σ_r n_r, and returns the global batch's mean loss Σ_r n_r·loss_r / Σ_r n_r.
    /// One all-reduce of one flat buffer (gradients, then n·loss, then n).
    func averageGradients(_ parameters: [(String, Tensor)], rows: Int, loss: Double) throws -> Double {
        let grads = parameters.compactMap { $0.1.grad }
        let total = grads.reduce(0) { $0 + $1.count }
        if flat.count != total + 2 { flat = [Float](repeating: 0, count: total + 2) }
        let w = Float(rows)
        try flat.withUnsafeMutableBufferPointer { b in
            let base = b.baseAddress!
            var off = 0
            for g in grads {
                let src = g.data, dst = base + off
                for i in 0..<g.count { dst[i] = src[i] * w }
                off += g.count
            }
            base[total] = Float(loss * Double(rows))
            base[total + 1] = w
            try group.allreduceSum(base, count: total + 2)
            let scale = 1 / base[total + 1]
            off = 0
            for g in grads {
                let src = base + off, dst = g.data
                for i in 0..<g.count { dst[i] = src[i] * scale }
                off += g.count
            }
        }
        return Double(flat[total]) / Double(flat[total + 1])
    }

    /// Every tensor that defines the trainer's state across ranks: the model's and the objective's
    /// parameters and buffers (optimizer state follows from identical gradients).
    static func stateTensors(_ trainer: Trainer) -> [(String, Tensor)] {
        var out = trainer.model.stateDict().map { ("model." + $0.0, $0.1) }
        for (prefix, m) in Checkpoint.objectiveModules(trainer.objective) {
            out += m.stateDict().map { (prefix + $0.0, $0.1) }
        }
        return out
    }

    /// BatchNorm buffers of every rank become rank 0's (not needed with `syncBatchNorm`, where they
    /// are computed identically), then every rank checks that all state is bit-identical.
    func synchronizeAndVerify(_ trainer: Trainer, when: String) throws {
        let state = Self.stateTensors(trainer)
        if !syncBatchNorm {
            var buffers = trainer.model.namedBuffers()
            for (_, m) in Checkpoint.objectiveModules(trainer.objective) { buffers += m.namedBuffers() }
            try group.broadcast(buffers.map { $0.1 })
        }
        try group.requireIdentical(state, what: "the parameters and buffers \(when)")
    }
}

extension Trainer {
    /// Makes this trainer data-parallel over `group` (see `DataParallel`); call it on every rank with
    /// the same model, objective and settings, before training. Checks that every rank agrees on the
    /// objective, seed, front-end settings and parameter names/shapes (else throws on every rank,
    /// naming the first difference), copies rank 0's parameters and buffers to every rank (as DDP
    /// does at construction) and, with `syncBatchNorm`, synchronizes every BatchNorm layer of the
    /// model and the objective's modules. A group of one process leaves the trainer unchanged.
    public func distribute(over group: ProcessGroup, syncBatchNorm: Bool = false,
                           bucketCapMB: Double = DataParallel.defaultBucketCapMB) throws {
        guard group.isDistributed else { return }
        try require(dataParallel == nil, "the trainer is already data-parallel")
        var lines = ["objective=\(objective.name)", "seed=\(seed)", "optimizer=\(type(of: optimizer))",
                     "sync_bn=\(syncBatchNorm)", "bucket_cap_mb=\(bucketCapMB)", "epochs_done=\(epochsDone)",
                     "steps_done=\(stepsDone)"]
        lines += runSettings.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
        lines += DataParallel.stateTensors(self).map { "tensor \($0.0) \($0.1.shape)" }
        try group.requireSame(lines, what: "the model and run settings")
        let dp = try DataParallel(group: group, syncBatchNorm: syncBatchNorm, bucketCapMB: bucketCapMB)
        try group.broadcast(DataParallel.stateTensors(self).map { $0.1 })
        if syncBatchNorm {
            model.synchronizeBatchNorm(over: group)
            for (_, m) in Checkpoint.objectiveModules(objective) { m.synchronizeBatchNorm(over: group) }
        }
        dataParallel = dp
    }

    /// Data-parallel: gives every rank rank 0's BatchNorm statistics and checks that all state is
    /// identical, so a sharded evaluation evaluates one network (`fit` does this after every epoch;
    /// front ends call it before a standalone evaluation). Nothing for one process.
    public func synchronizeForEvaluation() throws {
        try dataParallel?.synchronizeAndVerify(self, when: "before evaluation")
    }

    /// `distribute(over: ProcessGroup.world(), syncBatchNorm:bucketCapMB:)` when this process was started by
    /// `mpirun` with more than one rank (see `ProcessGroup.world`); otherwise nothing.
    /// - Returns: whether the trainer is now data-parallel.
    @discardableResult
    public func distributeIfLaunched(syncBatchNorm: Bool = false,
                                     bucketCapMB: Double = DataParallel.defaultBucketCapMB) throws -> Bool {
        let world = try ProcessGroup.world()
        try distribute(over: world, syncBatchNorm: syncBatchNorm, bucketCapMB: bucketCapMB)
        return dataParallel != nil
    }
}
