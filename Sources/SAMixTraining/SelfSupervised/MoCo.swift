import Glibc
import SAMixCore
import SAMixOps
import SAMixNN
import SAMixData
import SAMixMixing

/// MoCo v2 settings (docs/method.md §5.1). Defaults are the reference's: queue 65,536, 128-d embeddings,
/// temperature 0.2, key momentum 0.999 (`MoCoSAMix` / OpenMixup MoCo v2 R-18 base), MLP neck
/// C → 2048 → 128 without BN.
public struct MoCoConfig: Equatable, Sendable {
    /// `ModelZoo` backbone name.
    public var architecture: String
    public var inChannels: Int
    public var neckHidden: Int
    public var embeddingDim: Int
    /// `Linear → BN1d → ReLU → Linear` neck instead of MoCo v2's `Linear → ReLU → Linear`.
    public var neckBatchNorm: Bool
    /// K, number of negative keys.
    public var queueSize: Int
    /// T of InfoNCE.
    public var temperature: Float
    /// m of θ_k ← m·θ_k + (1 − m)·θ_q (constant, as MoCo).
    public var keyMomentum: Double
    /// G of the one-device shuffle-BN (`SSLEncoder.forward(_:groups:order:)`); 1 = plain BN.
    public var shuffleBNGroups: Int
    /// Seed of every initialisation (backbone, neck, queue, Mixer, cluster head).
    public var seed: UInt64

    public init(architecture: String = "resnet18", inChannels: Int = 3, neckHidden: Int = 2048, embeddingDim: Int = 128,
                neckBatchNorm: Bool = false, queueSize: Int = 65536, temperature: Float = 0.2,
                keyMomentum: Double = 0.999, shuffleBNGroups: Int = 2, seed: UInt64 = 0) throws {
        try require(neckHidden > 0 && embeddingDim > 0, "neck sizes must be positive")
        try require(queueSize >= 1, "queue size must be ≥ 1, got \(queueSize)")
        try require(temperature > 0 && temperature.isFinite, "temperature must be > 0, got \(temperature)")
        try require(keyMomentum >= 0 && keyMomentum <= 1, "key momentum must be in [0, 1], got \(keyMomentum)")
        try require(shuffleBNGroups >= 1, "shuffle-BN groups must be ≥ 1, got \(shuffleBNGroups)")
        self.architecture = architecture; self.inChannels = inChannels
        self.neckHidden = neckHidden; self.embeddingDim = embeddingDim; self.neckBatchNorm = neckBatchNorm
        self.queueSize = queueSize; self.temperature = temperature; self.keyMomentum = keyMomentum
        self.shuffleBNGroups = shuffleBNGroups; self.seed = seed
    }
}

/// SAMix in the self-supervised scenario (`MoCoSAMix`, docs/method.md §5.2–5.5).
public struct SAMixSSLConfig: Equatable, Sendable {
    public enum Variant: String, Equatable, Sendable, CaseIterable {
        /// SAMix-I: the Mixer objective is instance discrimination (InfoNCE terms).
        case instance
        /// SAMix-C: the Mixer objective is classification of k-means pseudo-labels.
        case cluster
    }

    /// The instance-level Mixer objective (docs/method.md §4.3).
    public enum InstanceObjective: Equatable, Sendable {
        /// `local + η·global`: local = 2-way soft CE between the two mixed instances ("BCE"),
        /// global = mixed InfoNCE against the queue with extended positives (§5.4).
        case etaBalanced(eta: Float)
        /// The class default `main_mb_loss = "infoNCE"`, no auxiliary term (plain positives).
        case globalOnly
    }

    public var variant: Variant
    /// λ_bb, λ_mb ~ Beta(α, α) [alpha = 2].
    public var alpha: Double
    public var mixer: MixerConfig
    /// 0-based stage feeding the Mixer [mask_layer = 2].
    public var maskLayer: Int
    public var maskLoss: MaskLoss
    public var maskLossWeight: Float
    /// Backbone-mask adjustment [`mask_adjust = "auto"`, `mean_margin = 0.1`].
    public var maskAdjust: SSLMixing.MaskAdjustMode
    public var instanceObjective: InstanceObjective
    public var positiveExtension: SSLMixing.PositiveExtension
    /// SAMix-C: number of k-means clusters, Lloyd iterations, and the Mixer objective on the
    /// frozen cluster head's logits (`MixerObjectiveLoss`, η-balanced by default).
    public var clusters: Int
    public var kmeansIterations: Int
    /// Start each epoch's k-means from the previous epoch's centroids (on the new features) instead
    /// of fresh k-means++ seeds, so a cluster keeps its number from epoch to epoch and the cluster
    /// head's knowledge stays valid. Off = the reference (`DeepClusterAutoMixHook`: a fresh
    /// clustering, hence a new arbitrary numbering, every epoch).
    public var kmeansWarmStart: Bool
    public var clusterObjective: MixerObjectiveLoss
    /// Std of the cluster head's N(0, σ²) init (OpenMixup heads: 0.01).
    public var clusterHeadInitStd: Float
    /// Encoder whose GAP features are clustered for SAMix-C's pseudo-labels.
    public enum ClusterFeatureSource: String, Equatable, Sendable, CaseIterable {
        /// The query (online) encoder — the reference (`self.backbone = self.encoder_q  # for feature extract`).
        case query
        /// The momentum key encoder (project option; the smoother EMA network).
        case key
    }
    public var clusterFeatures: ClusterFeatureSource
    /// PCA-whitening dimension before k-means (`PCAWhitening`, DeepCluster's `preprocess_features`;
    /// the reference's `pca_dim = 256`), or nil to cluster the L2-normalised GAP features as they are
    /// (project option).
    public var clusterPCADimensions: Int?
    /// Detach the mixed features before head_clst's mixup CE (project option, off = the reference).
    /// In the reference that term (`head_clst.loss(mix_outs, y_mix)`, features of f_k(x_mb)) also
    /// reaches the Mixer through x_mb; detaching trains only the cluster head with it.
    public var detachClusterHeadMixedFeatures: Bool

    public init(variant: Variant = .instance, alpha: Double = 2, mixer: MixerConfig? = nil, maskLayer: Int = 2,
                maskLoss: MaskLoss? = nil, maskLossWeight: Float = 0.1,
                maskAdjust: SSLMixing.MaskAdjustMode = .auto(meanMargin: 0.1),
                instanceObjective: InstanceObjective = .etaBalanced(eta: 0.5),
                positiveExtension: SSLMixing.PositiveExtension = .both, clusters: Int = 100, kmeansIterations: Int = 20,
                kmeansWarmStart: Bool = false,
                clusterObjective: MixerObjectiveLoss = .etaBalanced(eta: 0.5), clusterHeadInitStd: Float = 0.01,
                clusterFeatures: ClusterFeatureSource = .query, clusterPCADimensions: Int? = 256,
                detachClusterHeadMixedFeatures: Bool = false) throws {
        try require(alpha > 0 && alpha.isFinite, "alpha must be > 0, got \(alpha)")
        try require(maskLayer >= 0, "mask layer must be ≥ 0")
        try require(maskLossWeight >= 0 && maskLossWeight.isFinite, "mask loss weight must be ≥ 0")
        try require(clusters >= 2 && kmeansIterations >= 1, "SAMix-C needs ≥ 2 clusters and ≥ 1 k-means iteration")
        if case .etaBalanced(let e) = instanceObjective { try require(e >= 0 && e.isFinite, "η must be ≥ 0") }
        self.variant = variant; self.alpha = alpha
        self.mixer = try mixer ?? .samix()
        self.maskLayer = maskLayer
        self.maskLoss = try maskLoss ?? MaskLoss(mode: .l1Variance)
        self.maskLossWeight = maskLossWeight; self.maskAdjust = maskAdjust
        self.instanceObjective = instanceObjective; self.positiveExtension = positiveExtension
        self.clusters = clusters; self.kmeansIterations = kmeansIterations; self.kmeansWarmStart = kmeansWarmStart
        self.clusterObjective = clusterObjective; self.clusterHeadInitStd = clusterHeadInitStd
        if let p = clusterPCADimensions { try require(p >= 1, "SAMix-C PCA dimensions must be ≥ 1, got \(p)") }
        self.clusterFeatures = clusterFeatures; self.clusterPCADimensions = clusterPCADimensions
        self.detachClusterHeadMixedFeatures = detachClusterHeadMixedFeatures
    }
}

/// What is mixed inside MoCo.
public enum SSLMix: Equatable, Sendable {
    /// Plain MoCo v2.
    case none
    /// Cross-view Mixup with instance-level mixed targets, λ ~ Beta(α, α) (`moco_mix.py`).
    case mixup(alpha: Double)
    /// SAMix-I / SAMix-C.
    case samix(SAMixSSLConfig)

    public var name: String {
        switch self {
        case .none: return "moco"
        case .mixup: return "moco-mixup"
        case .samix(let c): return c.variant == .instance ? "samix-i" : "samix-c"
        }
    }
}

/// One training step's output.
public struct SSLStepOutput {
    /// The total loss (backpropagate it, then step the optimizer).
    public let loss: Tensor
    /// Named scalars for logging (loss terms, λ, mask statistics).
    public let metrics: [(String, Double)]
    /// The keys to enqueue after the step (kk, keys of view k).
    public let keys: Tensor
    /// The loss terms that make up `loss`, with their graphs ("loss_moco", "loss_bb", "loss_mb",
    /// "loss_mask", "loss_clst"), for inspection and gradient-flow checks.
    public let terms: [String: Tensor]
}

/// MoCo v2 with optional Mixup / SAMix inside (docs/method.md §5). One step, for views xq, xk of a batch:
/// ```
/// θ_k ← m·θ_k + (1 − m)·θ_q                 (before the keys, as the reference)
/// q = norm(neck_q(f_q(xq)))                  (BN per contiguous group)
/// no grad: [F, key] = f_k(shuffleBN([xq; xk]))   → Fq, Fk (stage maskLayer), kq, kk
/// L_moco = CE([q·kk, q·queue]/T, 0)
/// Mixup:  x = λ·xq + (1 − λ)·xk[π];  L_bb = λ·CE([z·kk, z·queue]/T) + (1 − λ)·CE([z·kq[π], z·queue]/T)
/// SAMix:  M_bb = Mixer([Fq, Fk[π_bb]], λ_bb) (no grad) → mask adjust;  M_mb = Mixer([Fq, Fk[π_mb]], λ_mb)
///         x_bb, x_mb = cross-view mixes (SSLMixing);  L_bb as Mixup with M_bb
///         L_mb through the frozen f_k(x_mb): SAMix-I  local(kk, kq[π_mb]) + η·global(extended positives)
///                                           SAMix-C  η-balanced CE of head_clst_off on pseudo-labels
///         L_mask = w·MaskLoss(M_mb, λ_mb); SAMix-C also trains head_clst (CE on f_k(xq), mixup CE on x_mb)
/// L = L_moco + L_bb + L_mb + L_mask (+ L_clst);  after the step: enqueue kk
/// ```
/// Gradients: L_moco, L_bb → query encoder only; L_mb, L_mask → Mixer only (f_k, neck_k and
/// head_clst_off are frozen and pass gradients to x_mb); L_clst → head_clst, and its mixup term on
/// f_k(x_mb) also → Mixer (as the reference; `detachClusterHeadMixedFeatures` stops that).
public final class MoCo {
    public let config: MoCoConfig
    public let mix: SSLMix
    public let query: SSLEncoder
    public let key: SSLEncoder
    public let queue: KeyQueue
    public let mixer: Mixer?
    /// SAMix-C: head_clst (trainable) and head_clst_off (frozen copy, refreshed every step).
    public let clusterHead: Linear?
    public let frozenClusterHead: Linear?
    /// SAMix-C pseudo-labels of the training set (`setPseudoLabels`).
    public private(set) var pseudoLabels: [Int]?

    public init(config: MoCoConfig, mix: SSLMix = .none) throws {
        self.config = config
        self.mix = mix
        var rng = SplitMix64(seed: config.seed)
        let bq = try ModelZoo.makeBackbone(config.architecture, inChannels: config.inChannels, rng: &rng)
        let nq = try ProjectionNeck(inFeatures: bq.featureChannels, hidden: config.neckHidden, out: config.embeddingDim,
                                    batchNorm: config.neckBatchNorm, rng: &rng)
        query = SSLEncoder(backbone: bq, neck: nq)
        let bk = try ModelZoo.makeBackbone(config.architecture, inChannels: config.inChannels, rng: &rng)
        let nk = try ProjectionNeck(inFeatures: bk.featureChannels, hidden: config.neckHidden, out: config.embeddingDim,
                                    batchNorm: config.neckBatchNorm, rng: &rng)
        key = SSLEncoder(backbone: bk, neck: nk)
        try EMA.copy(target: key, source: query)
        key.setRequiresGrad(false)
        queue = try KeyQueue(capacity: config.queueSize, dimension: config.embeddingDim, seed: config.seed &+ 17)
        if case .mixup(let a) = mix { try require(a > 0 && a.isFinite, "mixup alpha must be > 0, got \(a)") }
        if case .samix(let s) = mix {
            try require(s.maskLayer < bq.stageCount,
                        "mask layer \(s.maskLayer) does not exist in the \(bq.stageCount)-stage \(config.architecture)")
            mixer = try Mixer(channels: bq.stageChannels[s.maskLayer], config: s.mixer, seed: config.seed &+ 29)
            if s.variant == .cluster {
                var hr = SplitMix64(seed: config.seed &+ 31)
                let h = try Linear(bq.featureChannels, s.clusters, rng: &hr)
                Init.normal(h.weight, std: s.clusterHeadInitStd, rng: &hr)
                h.bias?.fill(0)
                let f = try Linear(bq.featureChannels, s.clusters, rng: &hr)
                try EMA.copy(target: f, source: h)
                f.setRequiresGrad(false)
                clusterHead = h
                frozenClusterHead = f
            } else {
                clusterHead = nil
                frozenClusterHead = nil
            }
        } else {
            mixer = nil
            clusterHead = nil
            frozenClusterHead = nil
        }
    }

    /// The trainable modules, named (the optimizer's parameter groups).
    public var trainableModules: [(String, Module)] {
        var m: [(String, Module)] = [("query", query)]
        if let mixer { m.append(("mixer", mixer)) }
        if let clusterHead { m.append(("cluster_head", clusterHead)) }
        return m
    }

    /// All trainable parameters with dotted names.
    public var trainableParameters: [(String, Tensor)] {
        trainableModules.flatMap { name, mod in mod.namedParameters(prefix: name + ".") }
    }

    /// The backbone that is evaluated and saved (the query encoder's, as MoCo).
    public var backbone: Backbone { query.backbone }

    var samixConfig: SAMixSSLConfig? {
        if case .samix(let c) = mix { return c }
        return nil
    }

    /// Pseudo-labels of every training image (SAMix-C), indexed by dataset position.
    public func setPseudoLabels(_ labels: [Int]) throws {
        guard let s = samixConfig, s.variant == .cluster else {
            throw SAMixError.invalidState("pseudo-labels are only used by SAMix-C")
        }
        try require(labels.allSatisfy { $0 >= 0 && $0 < s.clusters }, "pseudo-labels must be in 0..<\(s.clusters)")
        pseudoLabels = labels
    }

    /// SAMix-I/C: the Mixer with the encoder that feeds it (the momentum key backbone, stage
    /// `maskLayer`), as a `MixerCheckpoint` — a Mixer learned without labels, reusable for SAMix^P
    /// supervised training (`PretrainedMixerObjective`) and for drawing its masks.
    public func mixerCheckpoint() throws -> MixerCheckpoint {
        guard let mixer, let s = samixConfig else {
            throw SAMixError.invalidState("\(mix.name) has no Mixer to save (only SAMix-I and SAMix-C learn one)")
        }
        return try MixerCheckpoint(mixer: mixer, maskLayer: s.maskLayer, encoder: key.backbone,
                                   encoderArchitecture: config.architecture, encoderInChannels: config.inChannels)
    }

    /// θ_k ← m·θ_k + (1 − m)·θ_q for backbone and neck (parameters only; BN buffers stay per copy).
    public func momentumUpdate() throws {
        try EMA.update(target: key, source: query, momentum: config.keyMomentum)
    }

    /// The Mixer objective L_mb of mixed images x_mb [N, C, H, W] (pairs i, π(i) mixed with weight λ
    /// on image i) through the frozen momentum encoder: SAMix-I `local + η·global` with the
    /// cross-view positives (kk, kq[π]) (extended for the global term, §5.4) or the global term
    /// alone; SAMix-C the η-balanced CE of the frozen cluster head on `labels` (pseudo-labels of
    /// the N images). Differentiable in `xMB` only. Returns the loss, the GAP features of f_k(x_mb)
    /// (SAMix-C: the cluster head's input), SAMix-I's normalised embedding z' and the named terms.
    func mixerObjective(mixed xMB: Tensor, keysQ kq: Tensor, keysK kk: Tensor, permutation: [Int], lam: Float,
                        labels: [Int]?, rng: inout SplitMix64) throws
        -> (loss: Tensor, pooled: Tensor?, embedding: Tensor?, metrics: [(String, Double)]) {
        guard let s = samixConfig else { throw SAMixError.invalidState("\(mix.name) has no Mixer objective") }
        let t = config.temperature
        let stages = try key.backbone.forwardStages(xMB)
        switch s.variant {
        case .instance:
            let zk = try key.neck(stages.last!).l2NormalizedRows()
            let pos = try SSLMixing.crossViewPositives(keysQ: kq, keysK: kk, permutation: permutation)
            switch s.instanceObjective {
            case .globalOnly:
                let l = try Contrastive.mixedInfoNCE(query: zk, positiveA: pos.a, positiveB: pos.b, lam: lam,
                                                     negatives: queue.keys, temperature: t)
                return (l, nil, zk, [])
            case .etaBalanced(let eta):
                let local = try Contrastive.pairwise(query: zk, positiveA: pos.a, positiveB: pos.b, lam: lam, temperature: t)
                let ext = try SSLMixing.extendedPositives(keysQ: kq, keysK: kk, permutation: permutation,
                                                          mode: s.positiveExtension, rng: &rng)
                let global = try Contrastive.mixedInfoNCE(query: zk, positiveA: ext.a, positiveB: ext.b, lam: lam,
                                                          negatives: queue.keys, temperature: t)
                return (try local + global * eta, nil, zk,
                        [("loss_mb_local", Double(local.data[0])), ("loss_mb_global", Double(global.data[0]))])
            }
        case .cluster:
            guard let frozen = frozenClusterHead, let y = labels else {
                throw SAMixError.invalidState("SAMix-C's Mixer objective needs the cluster head and pseudo-labels")
            }
            try require(y.count == xMB.shape[0], "SAMix-C: \(y.count) pseudo-labels for \(xMB.shape[0]) images")
            let g = try stages.last!.globalAvgPool2d()
            let l = try s.clusterObjective(logits: frozen(g), labelsA: y, labelsB: permutation.map { y[$0] }, lam: lam)
            return (l, g, nil, [])
        }
    }

    /// Enqueues the step's keys (call after the optimizer step).
    public func afterStep(_ output: SSLStepOutput) throws {
        try queue.enqueue(output.keys)
    }

    /// Switches every module to training mode.
    public func train() {
        query.train(); key.train(); mixer?.train()
    }

    /// One training step on two views [N, C, H, W] of the same N images. `indices` are the images'
    /// dataset positions (for SAMix-C pseudo-labels). `rng` draws λ, π, the shuffle-BN order,
    /// Mixer randomness and the positive extension.
    ///
    /// Data-parallel (`group` of several ranks; every rank passes the same global views and rng):
    /// each rank trains its contiguous shard of the N images. Keys use MoCo's multi-GPU shuffle-BN:
    /// the global key batch is permuted with the shared order, each rank encodes its contiguous chunk
    /// of the permuted batch (BN statistics of that chunk, split further into `shuffleBNGroups`), and
    /// the keys (and the Mixer's feature maps) are all-gathered and un-shuffled, so every rank holds
    /// every key and enqueues the same N keys. Queries, mixing (pairs inside the shard) and the Mixer
    /// branch use the rank's shard, as each GPU of the reference. Plain MoCo over N ranks with G
    /// groups computes what one process computes with N·G groups.
    public func step(viewQ gq: Tensor, viewK gk: Tensor, indices globalIndices: [Int]? = nil, rng: inout SplitMix64,
                     group: ProcessGroup = .single) throws -> SSLStepOutput {
        try requireShape(gq.rank == 4 && gq.shape == gk.shape, "MoCo: views \(gq.shape) and \(gk.shape) must match")
        let globalN = gq.shape[0], height = gq.shape[2], width = gq.shape[3]
        try require(globalN % group.size == 0, "the SSL batch of \(globalN) must be a multiple of the \(group.size) ranks")
        let rows = (globalN / group.size * group.rank)..<(globalN / group.size * (group.rank + 1))
        let n = rows.count
        try require(n >= 2, "MoCo needs batches of at least 2 images per rank")
        let xq = group.isDistributed ? try gq.narrow(axis: 0, start: rows.lowerBound, length: n) : gq
        let xk = group.isDistributed ? try gk.narrow(axis: 0, start: rows.lowerBound, length: n) : gk
        let indices = globalIndices.map { group.isDistributed ? Array($0[rows]) : $0 }
        let t = config.temperature, groups = config.shuffleBNGroups
        try momentumUpdate()
        train()
        var metrics: [(String, Double)] = []

        let q = try query.forward(xq, groups: groups).embedding
        // Keys of both views in one shuffle-BN pass (plain MoCo needs only view k).
        let needBoth: Bool
        if case .none = mix { needBoth = false } else { needBoth = true }
        var stageIndices = Set<Int>()   // the key feature maps the step uses (the mask layer may be the last stage)
        if let s = samixConfig {
            stageIndices.insert(s.maskLayer)
            if s.variant == .cluster { stageIndices.insert(query.backbone.stageCount - 1) }
        }
        func keyStage(_ i: Int, _ pass: KeyPass) throws -> Tensor {
            guard let t = pass.stages[i] else { throw SAMixError.invalidState("MoCo: key stage \(i) was not kept") }
            return t
        }
        let keyOut = try GradMode.withDisabled { () -> KeyPass in
            let x = needBoth ? try Tensor.concat([gq, gk], axis: 0) : gk
            return try keys(x, groups: groups, order: rng.permutation(x.shape[0]), stages: stageIndices, group: group)
        }
        // This rank's rows of the keys: view q at `rows`, view k at `rows` (+ N with both views).
        func own(_ t: Tensor, view: Int) throws -> Tensor {
            let start = view * globalN + rows.lowerBound
            return start == 0 && n == t.shape[0] ? t : try t.narrow(axis: 0, start: start, length: n)
        }
        let kkAll = needBoth ? try keyOut.embedding.narrow(axis: 0, start: globalN, length: globalN) : keyOut.embedding
        let kk = try own(keyOut.embedding, view: needBoth ? 1 : 0)
        let kq = needBoth ? try own(keyOut.embedding, view: 0) : nil
        let lossMoCo = try Contrastive.infoNCE(query: q, positive: kk, negatives: queue.keys, temperature: t)
        var total = lossMoCo
        var terms: [String: Tensor] = ["loss_moco": lossMoCo]
        metrics.append(("loss_moco", Double(lossMoCo.data[0])))

        switch mix {
        case .none:
            break
        case .mixup(let alpha):
            let lam = Float(rng.beta(alpha, alpha))
            let perm = rng.permutation(n)
            let x = try SSLMixing.crossViewMixup(viewQ: xq, viewK: xk, permutation: perm, lam: lam)
            let z = try query.forward(x, groups: groups).embedding
            let pos = try SSLMixing.crossViewPositives(keysQ: kq!, keysK: kk, permutation: perm)
            let l = try Contrastive.mixedInfoNCE(query: z, positiveA: pos.a, positiveB: pos.b, lam: lam,
                                                 negatives: queue.keys, temperature: t)
            total = try total + l
            terms["loss_bb"] = l
            metrics += [("loss_bb", Double(l.data[0])), ("lambda_bb", Double(lam))]
        case .samix(let s):
            guard let mixer else { throw SAMixError.invalidState("SAMix without a Mixer") }
            var labels: [Int]? = nil
            if s.variant == .cluster {
                guard let pl = pseudoLabels, let idx = indices else {
                    throw SAMixError.invalidState("SAMix-C needs pseudo-labels (setPseudoLabels) and the batch indices")
                }
                try require(idx.count == n && idx.allSatisfy { $0 >= 0 && $0 < pl.count }, "SAMix-C: bad batch indices")
                labels = idx.map { pl[$0] }
            }
            let maps = try keyStage(s.maskLayer, keyOut)
            let fq = try own(maps, view: 0), fk = try own(maps, view: 1)
            mixer.train()
            // The Mixer's share of the step (shared with supervised AutoMix/SAMix), on cross-view masks.
            let step = try MixerStep(batch: n, alpha: s.alpha, derange: false, maskLoss: s.maskLoss,
                                     maskLossWeight: s.maskLossWeight, rng: &rng) { lam, perm, rng in
                try SSLMixing.crossViewMask(mixer: mixer, featuresQ: fq, featuresK: fk, lam: lam, permutation: perm,
                                            imageHeight: height, imageWidth: width, rng: &rng)
            }
            let (lamMB, lamBB, permMB, permBB, maskMB, maskBB) = (step.lamMB, step.lamBB, step.permMB, step.permBB,
                                                                  step.maskMB, step.maskBB)
            let adjusted = try SSLMixing.adjust(partnerMask: maskBB, lam: lamBB, mode: s.maskAdjust, permutation: permBB,
                                                labels: labels, rng: &rng)
            let lossMask = step.lossMask
            let xBB = try GradMode.withDisabled {
                try SSLMixing.crossViewMix(viewQ: xq, viewK: xk, permutation: permBB, partnerMask: maskBB)
            }
            let xMB = try SSLMixing.crossViewMix(viewQ: xq, viewK: xk, permutation: permMB, partnerMask: maskMB)
            // Backbone (online) branch.
            let z = try query.forward(xBB, groups: groups).embedding
            let posBB = try SSLMixing.crossViewPositives(keysQ: kq!, keysK: kk, permutation: permBB)
            let lossBB = try Contrastive.mixedInfoNCE(query: z, positiveA: posBB.a, positiveB: posBB.b, lam: lamBB,
                                                      negatives: queue.keys, temperature: t)
            // Mixer branch through the frozen momentum encoder (one BN batch, as each reference GPU).
            if s.variant == .cluster, let head = clusterHead, let frozen = frozenClusterHead {
                try EMA.copy(target: frozen, source: head)   // head_clst_off ← head_clst every step
            }
            let branch = try mixerObjective(mixed: xMB, keysQ: kq!, keysK: kk, permutation: permMB, lam: lamMB,
                                            labels: labels, rng: &rng)
            let lossMB = branch.loss
            metrics += branch.metrics
            var lossClst: Tensor? = nil
            if s.variant == .cluster {
                guard let head = clusterHead, let y = labels, let pooled = branch.pooled else {
                    throw SAMixError.invalidState("SAMix-C without a cluster head")
                }
                let yb = permMB.map { y[$0] }
                let gQ = try GradMode.withDisabled {
                    try own(keyStage(query.backbone.stageCount - 1, keyOut), view: 0).globalAvgPool2d()
                }
                let mixedInput = s.detachClusterHeadMixedFeatures ? pooled.detached() : pooled
                let lc = try head(gQ).crossEntropy(labels: y)
                    + head(mixedInput).mixupCrossEntropy(labelsA: y, labelsB: yb, lam: lamMB)
                lossClst = lc
                metrics.append(("loss_clst", Double(lc.data[0])))
            }
            total = try total + lossBB + lossMB + lossMask
            if let lossClst { total = try total + lossClst }
            terms["loss_bb"] = lossBB
            terms["loss_mb"] = lossMB
            terms["loss_mask"] = lossMask
            terms["loss_clst"] = lossClst
            metrics += [("loss_bb", Double(lossBB.data[0])), ("loss_mb", Double(lossMB.data[0])),
                        ("loss_mask", Double(lossMask.data[0]))] + step.metrics + [("mask_adjusted_bb", Double(adjusted))]
        }
        metrics.insert(("loss", Double(total.data[0])), at: 0)
        return SSLStepOutput(loss: total, metrics: metrics, keys: try kkAll.copy(), terms: terms)
    }

    /// The key encoder's output for the global key batch x: embeddings [M, D] and the feature maps of
    /// `stages`, in x's row order.
    struct KeyPass {
        var stages: [Int: Tensor]
        var embedding: Tensor
    }

    /// Shuffle-BN keys of x (see `step`): one process encodes x permuted by `order` in `groups`
    /// chunks; several ranks each encode their contiguous chunk of the permuted batch and all-gather.
    func keys(_ x: Tensor, groups: Int, order: [Int], stages: Set<Int>, group: ProcessGroup) throws -> KeyPass {
        guard group.isDistributed else {
            let r = try key.forward(x, groups: groups, order: order)
            var maps: [Int: Tensor] = [:]
            for s in stages where s < r.stages.count { maps[s] = r.stages[s] }
            return KeyPass(stages: maps, embedding: r.embedding)
        }
        let m = x.shape[0]
        let chunk = Array(order[(m / group.size * group.rank)..<(m / group.size * (group.rank + 1))])
        let r = try key.forward(try x.gatherRows(chunk), groups: groups)
        var inverse = [Int](repeating: 0, count: m)
        for (j, i) in order.enumerated() { inverse[i] = j }
        func gathered(_ t: Tensor) throws -> Tensor { try group.allgatherRows(t).gatherRows(inverse) }
        var maps: [Int: Tensor] = [:]
        for s in stages where s < r.stages.count { maps[s] = try gathered(r.stages[s]) }
        return KeyPass(stages: maps, embedding: try gathered(r.embedding))
    }
}
