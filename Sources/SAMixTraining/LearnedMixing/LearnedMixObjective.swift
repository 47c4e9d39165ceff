import SAMixCore
import SAMixOps
import SAMixNN
import SAMixData
import SAMixMixing

/// Supervised AutoMix / SAMix training (OpenMixup's `AutoMixup`, docs/method.md §2.2), one objective for both
/// methods — they differ only in `LearnedMixConfig` (Mixer options, mask loss, Mixer objective).
///
/// Modules (built in `prepare(model:)` from the classifier being trained):
/// - online: `backbone_q` + `head_one_q` = the classifier itself; `head_mix_q` = a second head for
///   mixed images (trainable, an extra module).
/// - momentum: `backbone_k`, `head_one_k`, `head_mix_k` — EMA copies, parameters frozen
///   (`requiresGrad = false`), batch norm in training mode with its own running statistics.
/// - the `Mixer` (trainable, an extra module). No EMA copy.
///
/// One step, in the reference order:
/// ```
/// λ_mb, λ_bb ~ Beta(α, α); π_mb, π_bb random permutations (independent)
/// F    = backbone_k(x)[mask_layer]                 (no graph)
/// M_mb = Mixer(F, λ_mb, π_mb)                      (keeps its gradient)
/// M_bb = Mixer(F, λ_bb, π_bb)                      (no gradient) → mask_adjust → lam_margin
/// L_mask = w·MaskLoss(M_mb, λ_mb)
/// x_mb = x·(1 − M_mb) + x[π_mb]·M_mb ;  x_bb likewise with M_bb
/// L_gen = MixerLoss(head_mix_k(backbone_k(x_mb)), y, y[π_mb], λ_mb)   → Mixer only (k frozen)
/// L_one = CE(head_one_q(backbone_q(x)), y)                          → online network only
/// L_cls = mixupCE(head_mix_q(backbone_q(x_bb)), y, y[π_bb], λ_bb)  → online network only
/// L = L_cls + L_one + L_gen + L_mask
/// (trainer: backward, optimizer step) → afterStep: θ_k ← m_t·θ_k + (1 − m_t)·θ_q
/// ```
/// Labels enter only the losses; the Mixer sees features, λ and π.
///
/// Deviations from the reference, all deliberate (bugs listed in docs/method.md §9): mask_adjust uses λ_bb
/// (quirk 1; `maskAdjustUsesMixerLambda` reproduces it); SAMix's default Mixer objective is the
/// η-balanced loss the paper describes rather than the official configs' plain mixup CE (quirk 2;
/// `.mixupCrossEntropy` reproduces them). The mask loss uses whole-batch statistics as the
/// reference (`MaskLoss.Scope.sample` is the per-sample option).
public final class LearnedMixObjective: TrainingObjective {
    public let config: LearnedMixConfig
    public var name: String { config.name }

    public private(set) var mixer: Mixer?
    /// head_mix_q (trainable).
    public private(set) var mixHead: ClassifierHead?
    /// backbone_k + head_one_k: the network OpenMixup evaluates (`forward_inference`).
    public private(set) var momentumModel: ImageClassifier?
    /// backbone_k + head_mix_k (shares backbone_k with `momentumModel`).
    public private(set) var momentumMixModel: ImageClassifier?
    /// backbone_q + head_mix_q (shares the classifier's backbone).
    public private(set) var onlineMixModel: ImageClassifier?
    /// The momentum used by the last `afterStep`.
    public private(set) var lastMomentum: Double?
    private weak var preparedFor: ImageClassifier?

    public init(config: LearnedMixConfig) {
        self.config = config
    }

    // MARK: set-up

    public func prepare(model: ImageClassifier) throws {
        if let p = preparedFor, p === model { return }
        let stages = model.backbone.stageChannels
        try require(config.maskLayer < stages.count,
                    "\(name): mask_layer \(config.maskLayer) does not exist in a \(stages.count)-stage backbone")
        var rng = SplitMix64(seed: config.seed).fork(index: 1)
        // backbone_k: same architecture, k ← q (parameters and buffers), frozen.
        let bk = try ModelZoo.makeBackbone(model.architecture, inChannels: model.inChannels, rng: &rng)
        try EMA.copy(target: bk, source: model.backbone)
        let momentum = try ImageClassifier(architecture: model.architecture, backbone: bk, inChannels: model.inChannels,
                                           numClasses: model.numClasses, rng: &rng)
        let momentumMix = try ImageClassifier(architecture: model.architecture, backbone: bk,
                                              inChannels: model.inChannels, numClasses: model.numClasses, rng: &rng)
        let onlineMix = try ImageClassifier(architecture: model.architecture, backbone: model.backbone,
                                            inChannels: model.inChannels, numClasses: model.numClasses, rng: &rng)
        if config.reinitializeOnlineHead { Self.initHead(model.head, std: config.headInitStd, rng: &rng) }
        Self.initHead(onlineMix.head, std: config.headInitStd, rng: &rng)
        try EMA.copy(target: momentum.head, source: model.head)
        try EMA.copy(target: momentumMix.head, source: onlineMix.head)
        momentum.setRequiresGrad(false)
        momentumMix.head.setRequiresGrad(false)
        onlineMix.head.setRequiresGrad(true)
        mixer = try Mixer(channels: stages[config.maskLayer], config: config.mixer, seed: config.seed)
        mixHead = onlineMix.head
        momentumModel = momentum
        momentumMixModel = momentumMix
        onlineMixModel = onlineMix
        preparedFor = model
    }

    private static func initHead(_ head: ClassifierHead, std: Float, rng: inout SplitMix64) {
        Init.normal(head.fc.weight, std: std, rng: &rng)
        head.fc.bias?.fill(0)
    }

    public var extraModules: [(String, Module)] {
        guard let mixer, let mixHead else { return [] }
        return [("mixer", mixer), ("head_mix", mixHead)]
    }

    public var evaluationModels: [(String, ImageClassifier)] {
        guard let momentumModel else { return [] }
        var out = [("momentum", momentumModel)]
        if config.evaluateMixHeads, let mk = momentumMixModel, let mq = onlineMixModel {
            out += [("momentum_mix", mk), ("online_mix", mq)]
        }
        return out
    }

    private func modules(for model: ImageClassifier) throws -> (Mixer, ImageClassifier, ImageClassifier, ImageClassifier) {
        guard let p = preparedFor, p === model, let mixer, let mk = momentumModel, let mkm = momentumMixModel,
              let mq = onlineMixModel else {
            throw SAMixError.invalidState("\(name): prepare(model:) was not called for this model")
        }
        return (mixer, mk, mkm, mq)
    }

    // MARK: one step

    public func loss(model: ImageClassifier, batch: Batch, context: inout StepContext) throws -> Tensor {
        try losses(model: model, batch: batch, context: &context).total()
    }

    /// The four loss terms of one step (before summation), with the step's draws. `loss` is their
    /// sum; tests back-propagate each term alone to check where its gradient goes.
    public func losses(model: ImageClassifier, batch: Batch, context: inout StepContext) throws -> LearnedMixLosses {
        let (mixer, momentum, momentumMix, onlineMix) = try modules(for: model)
        let x = batch.images, y = batch.labels, n = batch.size
        try requireShape(x.rank == 4 && x.shape[0] == n, "\(name): images \(x.shape) for \(n) labels")
        try require(n >= 2, "\(name) needs batches of at least 2 images")
        let height = x.shape[2], width = x.shape[3]
        var rng = context.rng
        defer { context.rng = rng }
        momentum.train()
        mixer.train()
        // Stage features of the clean batch from the momentum encoder: no graph. All stages run (as
        // the reference) unless `momentumStopsAtMaskLayer`, so later stages' BN statistics see clean images.
        let features = try GradMode.withDisabled {
            config.momentumStopsAtMaskLayer
                ? try LearnedMixing.stageFeatures(momentum.backbone, x, stage: config.maskLayer)
                : try momentum.backbone.forwardStages(x)[config.maskLayer]
        }
        // Two independent (λ, π) draws — _mb trains the Mixer, _bb the classifier — and their masks.
        let step = try MixerStep(batch: n, alpha: config.alpha, derange: config.permutationsWithoutFixedPoints,
                                 maskLoss: config.maskLoss, maskLossWeight: config.maskLossWeight,
                                 groups: context.pairingGroups, rng: &rng) { lam, perm, rng in
            try mixer(features: features, lam: lam, permutation: perm, imageHeight: height, imageWidth: width, rng: &rng).partnerMask
        }
        let (lamMB, lamBB, permMB, permBB, maskBB) = (step.lamMB, step.lamBB, step.permMB, step.permBB, step.maskBB)
        if config.maskAdjust > 0 && rng.uniformDouble() < config.maskAdjust {
            try MaskAdjust.adjustMean(partnerMask: maskBB, lam: config.maskAdjustUsesMixerLambda ? lamMB : lamBB)
        }
        let degenerate = MaskAdjust.applyLambdaMargin(partnerMask: maskBB, lam: lamBB, margin: config.lambdaMargin)
        let lossMask = step.lossMask
        let xMB = try x.mixed(withPartners: permMB, partnerMask: step.maskMB)
        let xBB = try GradMode.withDisabled { try x.mixed(withPartners: permBB, partnerMask: maskBB) }
        // Mixer objective through the frozen momentum network (gradient reaches only the Mixer).
        var lossGen: Tensor? = nil
        if !(config.switchOff > 0 && rng.uniformDouble() > config.switchOff) {
            let zK = try momentumMix(xMB)
            lossGen = try config.mixerLoss(logits: zK, labelsA: y, labelsB: permMB.map { y[$0] }, lam: lamMB)
        }
        // Classifier objectives through the online network (M_bb carries no gradient).
        let lossOne = try model(x).crossEntropy(labels: y)
        let lossCls = try onlineMix(xBB).mixupCrossEntropy(labelsA: y, labelsB: permBB.map { y[$0] }, lam: lamBB)

        context.metrics += step.metrics + [
            ("loss_cls", Double(lossCls.data[0])), ("loss_one", Double(lossOne.data[0])),
            ("loss_gen", Double(lossGen?.data[0] ?? .nan)), ("loss_mask", Double(lossMask.data[0])),
            ("mask_gap_mb", LearnedMixing.meanAbsGap(step.maskMB, lam: lamMB)),
            ("mask_degenerate_bb", degenerate ? 1 : 0),
            ("momentum", config.momentumValue(step: context.step, total: context.totalSteps)),
        ]
        return LearnedMixLosses(classifierMixed: lossCls, classifierClean: lossOne, mixer: lossGen, mask: lossMask,
                                lambdaMixer: lamMB, lambdaBackbone: lamBB, permutationMixer: permMB,
                                permutationBackbone: permBB, mixerMask: step.maskMB, backboneMask: maskBB,
                                backboneMaskDegenerate: degenerate)
    }

    /// EMA of backbone_k ← backbone_q, head_one_k ← head_one_q, head_mix_k ← head_mix_q with m_t of
    /// the cosine schedule at this step (`LearnedMixConfig.momentumValue(step:total:)`; parameters only,
    /// BN buffers stay per copy).
    public func afterStep(model: ImageClassifier, context: StepContext) throws {
        let (_, momentum, momentumMix, onlineMix) = try modules(for: model)
        let m = config.momentumValue(step: context.step, total: context.totalSteps)
        try EMA.update(target: momentum.backbone, source: model.backbone, momentum: m)
        try EMA.update(target: momentum.head, source: model.head, momentum: m)
        try EMA.update(target: momentumMix.head, source: onlineMix.head, momentum: m)
        lastMomentum = m
    }

    // MARK: inspection and SAMix^P

    /// The partner masks M₁ [N, 1, H, W] the current Mixer makes for `images` with ratio λ and
    /// partners π (as the Mixer-training branch does, in training mode), without gradients and
    /// without changing any running statistics. For visualisation at any point of training.
    public func masks(model: ImageClassifier, images: Tensor, lam: Float, permutation: [Int],
                      seed: UInt64 = 0) throws -> Tensor {
        let (mixer, momentum, _, _) = try modules(for: model)
        try requireShape(images.rank == 4, "masks: images must be [N, C, H, W], got \(images.shape)")
        let saved = try (momentum.namedBuffers() + mixer.namedBuffers()).map { ($0.1, try $0.1.copy()) }
        let modes = (momentum.isTraining, mixer.isTraining)
        defer {
            for (t, c) in saved { try? t.assign(c) }
            momentum.train(modes.0)
            mixer.train(modes.1)
        }
        momentum.train()
        mixer.train()
        var rng = SplitMix64(seed: seed)
        return try GradMode.withDisabled {
            let f = try LearnedMixing.stageFeatures(momentum.backbone, images, stage: config.maskLayer)
            return try mixer(features: f, lam: lam, permutation: permutation,
                             imageHeight: images.shape[2], imageWidth: images.shape[3], rng: &rng).partnerMask
        }
    }

    /// The trained Mixer and the momentum encoder that feeds it, for SAMix^P (`MixerCheckpoint`).
    public func checkpoint(model: ImageClassifier) throws -> MixerCheckpoint {
        let (mixer, momentum, _, _) = try modules(for: model)
        return try MixerCheckpoint(mixer: mixer, maskLayer: config.maskLayer, encoder: momentum.backbone,
                                   encoderArchitecture: model.architecture, encoderInChannels: model.inChannels)
    }
}

/// Helpers shared by the learned-mixing objectives.
enum LearnedMixing {
    /// A random permutation; with `withoutFixedPoints` one with π(i) ≠ i for all i (n ≥ 2), drawn by
    /// `PartnerMode.derangement` (OpenMixup's `mix_shuffle_no_repeat` retries randperm and falls back
    /// to a cyclic shift; the engine has one derangement for every caller).
    static func permutation(_ n: Int, withoutFixedPoints: Bool, rng: inout SplitMix64) -> [Int] {
        guard withoutFixedPoints && n >= 2 else { return rng.permutation(n) }
        return (try? PartnerMode.derangement.draw(batch: n, rng: &rng)) ?? rng.permutation(n)
    }

    /// One permutation of n/groups drawn as above, applied inside each of `groups` equal contiguous
    /// groups (group g maps g·m + i to g·m + π(i), m = n/groups); groups = 1 is `permutation(n, …)`.
    static func permutation(_ n: Int, groups: Int, withoutFixedPoints: Bool, rng: inout SplitMix64) -> [Int] {
        let m = n / groups
        let p = permutation(m, withoutFixedPoints: withoutFixedPoints, rng: &rng)
        guard groups > 1 else { return p }
        return (0..<groups).flatMap { g in p.map { g * m + $0 } }
    }

    private struct StopForward: Error {}

    /// The output of backbone stage `stage` (0-based), stopping the forward pass there.
    static func stageFeatures(_ backbone: Backbone, _ x: Tensor, stage: Int) throws -> Tensor {
        try require(stage >= 0 && stage < backbone.stageCount,
                    "stage \(stage) does not exist in a \(backbone.stageCount)-stage backbone")
        if stage == backbone.stageCount - 1 { return try backbone.forwardStages(x)[stage] }
        var features: Tensor? = nil
        do {
            let all = try backbone.forwardStages(x) { k, h in
                if k == stage + 1 { features = h; throw StopForward() }
                return h
            }
            return all[stage]
        } catch is StopForward {
            guard let features else { throw SAMixError.invalidState("stage \(stage) features were not recorded") }
            return features
        }
    }

    /// Mean over samples of |mean(M₀ᵢ) − λ| for a partner mask M₁ [N, ...].
    static func meanAbsGap(_ m1: Tensor, lam: Float) -> Double {
        let n = m1.shape[0], size = m1.count / Swift.max(n, 1)
        var gap = 0.0
        for i in 0..<n {
            let own = 1 - Double(ReduceKernels.sum(m1.data + i * size, size)) / Double(size)
            gap += abs(own - Double(lam))
        }
        return gap / Double(Swift.max(n, 1))
    }

    /// Mean over samples of the spatial standard deviation of each partner mask `m1` [N, 1, H, W]: 0 for a
    /// constant (Mixup-like) mask, 0.5 for a binary half/half one — whether a Mixer produces spatial structure.
    static func meanSpatialStd(_ m1: Tensor) -> Double {
        let n = m1.shape[0], size = m1.count / Swift.max(n, 1)
        var total = 0.0
        for i in 0..<n {
            let row = m1.data + i * size
            let mean = Double(ReduceKernels.sum(row, size)) / Double(size)
            var v = 0.0
            for p in 0..<size { let d = Double(row[p]) - mean; v += d * d }
            total += (v / Double(size)).squareRoot()
        }
        return total / Double(Swift.max(n, 1))
    }
}

/// The terms of one AutoMix/SAMix step and what was drawn for it.
public struct LearnedMixLosses {
    /// L_cls: mixup CE of head_mix_q on x_bb (reaches the online network only).
    public let classifierMixed: Tensor
    /// L_one: CE of head_one_q on the clean batch (online network only).
    public let classifierClean: Tensor
    /// L_gen: the Mixer objective through the momentum network (Mixer only); nil when skipped
    /// by `switchOff`.
    public let mixer: Tensor?
    /// w·L_mask on M_mb (Mixer only).
    public let mask: Tensor
    public let lambdaMixer: Float, lambdaBackbone: Float
    public let permutationMixer: [Int], permutationBackbone: [Int]
    /// The Mixer-training partner mask M_mb [N, 1, H, W] (with its graph).
    public let mixerMask: Tensor
    /// The online-branch mask M_bb after mask_adjust / lam_margin (no gradient).
    public let backboneMask: Tensor
    public let backboneMaskDegenerate: Bool

    /// L = L_cls + L_one + L_gen + L_mask (head weights 1, as in every config).
    public func total() throws -> Tensor {
        var t = try classifierMixed + classifierClean
        if let mixer { t = try t + mixer }
        return try t + mask
    }
}
