import SAMixCore
import SAMixOps
import SAMixNN
import SAMixData
import SAMixMixing

/// Every option of the supervised AutoMix / SAMix pipeline (OpenMixup's `AutoMixup`, docs/method.md §2).
/// OpenMixup's parameter names are given in brackets; defaults follow the CIFAR configs (§2.6).
public struct LearnedMixConfig: Equatable, Sendable {
    /// Name used in logs ("automix" / "samix").
    public var name: String
    /// λ ~ Beta(α, α) for both draws of a step [alpha = 2 in every config].
    public var alpha: Double
    /// Mixer / Mix Block architecture.
    public var mixer: MixerConfig
    /// 0-based backbone stage whose output feeds the Mixer [mask_layer = 2: the stride-4 stage on
    /// CIFAR — 8×8 maps of 32-px images; the 3rd stage of ResNet-18, the last of ResNet-20].
    public var maskLayer: Int
    /// Mask regulariser [mask_loss_mode, mask_loss_margin] and its weight [mask_loss = 0.1].
    public var maskLoss: MaskLoss
    public var maskLossWeight: Float
    /// Probability of rescaling the online-branch mask to mean λ [mask_adjust; 0 in CIFAR configs].
    public var maskAdjust: Double
    /// Use λ_mb instead of λ_bb in mask_adjust, reproducing the reference bug (docs/method.md §9 quirk 1).
    public var maskAdjustUsesMixerLambda: Bool
    /// Constant (Mixup) online mask when λ_bb or 1 − λ_bb ≤ margin [lam_margin = 0.08].
    public var lambdaMargin: Float
    /// The Mixer objective through the momentum network (`MixerObjectiveLoss`).
    public var mixerLoss: MixerObjectiveLoss
    /// EMA momentum m_t of the momentum encoder and heads [momentum 0.999 → 0.999999, scope 0.1].
    public var momentum: MomentumSchedule
    /// Run length the `momentum` schedule was tuned for, or nil to use it as is. When set, the EMA
    /// step size is rescaled to the actual run of T steps: m'_t = max(0, 1 − (1 − m_t)·R/T), so
    /// the momentum encoder's time constant keeps the same *fraction* of training. OpenMixup's
    /// CIFAR configs (m₀ = 0.999, a ~1000-iteration time constant) were tuned for 400 epochs × 500
    /// iterations = 200,000 steps (R); in a 1,500-step CPU run the unscaled momentum network would
    /// lag by most of training, so the Mixer would be trained through a near-initial network and
    /// the momentum evaluation would be meaningless. Identical to the reference when T = R.
    public var momentumReferenceSteps: Int?
    /// Skip the Mixer objective when U(0,1) > switchOff (0 = never skip) [switch_off].
    public var switchOff: Double
    /// Permutations without fixed points π(i) ≠ i [mix_shuffle_no_repeat; off in the CIFAR configs]
    /// (`PartnerMode.derangement`, the engine's one derangement).
    public var permutationsWithoutFixedPoints: Bool
    /// Std of the N(0, σ²) init of the mixup heads head_mix_q / head_mix_k (OpenMixup inits every
    /// head this way). The classifier's own head (head_one_q) keeps the model's init unless
    /// `reinitializeOnlineHead`.
    public var headInitStd: Float
    public var reinitializeOnlineHead: Bool
    /// Also report backbone_k + head_mix_k ("momentum_mix") and backbone_q + head_mix_q
    /// ("online_mix") after each epoch (OpenMixup's acc_mix_k / acc_mix_q).
    public var evaluateMixHeads: Bool
    /// Run the momentum encoder's clean-image forward only up to `maskLayer` (project option, off =
    /// the reference). The reference runs backbone_k over all stages on the clean batch
    /// (`out_indices=(2,3)`), so the BN running statistics of the stages after the mask layer (the
    /// last stage of ResNet-18) see clean as well as mixed images; stopping early saves that part
    /// of the forward but leaves those statistics fitted to mixed images only (no effect when the
    /// mask layer is the last stage, as on ResNet-20).
    public var momentumStopsAtMaskLayer: Bool
    /// Seed of the Mixer's and heads' initialisation.
    public var seed: UInt64

    public init(name: String, alpha: Double = 2, mixer: MixerConfig, maskLayer: Int = 2, maskLoss: MaskLoss,
                maskLossWeight: Float = 0.1, maskAdjust: Double = 0, maskAdjustUsesMixerLambda: Bool = false,
                lambdaMargin: Float = 0.08, mixerLoss: MixerObjectiveLoss,
                momentum: MomentumSchedule? = nil, momentumReferenceSteps: Int? = nil, switchOff: Double = 0,
                permutationsWithoutFixedPoints: Bool = false, headInitStd: Float = 0.01,
                reinitializeOnlineHead: Bool = false, evaluateMixHeads: Bool = false,
                momentumStopsAtMaskLayer: Bool = false, seed: UInt64 = 0) throws {
        try require(alpha > 0 && alpha.isFinite, "alpha must be a finite value > 0, got \(alpha)")
        try require(maskLayer >= 0, "mask_layer must be ≥ 0, got \(maskLayer)")
        try require(maskLossWeight >= 0 && maskLossWeight.isFinite, "mask loss weight must be ≥ 0")
        try require(maskAdjust >= 0 && maskAdjust <= 1, "mask_adjust must be a probability in [0, 1], got \(maskAdjust)")
        try require(lambdaMargin >= 0 && lambdaMargin < 0.5, "lam_margin must be in [0, 0.5), got \(lambdaMargin)")
        if let r = momentumReferenceSteps { try require(r >= 1, "momentum reference steps must be ≥ 1, got \(r)") }
        try require(switchOff >= 0 && switchOff <= 1, "switch_off must be in [0, 1], got \(switchOff)")
        try require(headInitStd > 0 && headInitStd.isFinite, "head init std must be > 0")
        switch mixerLoss {
        case .mixupCrossEntropy: break
        case .etaBalanced(let e), .sigmoidBCE(let e):
            try require(e >= 0 && e.isFinite, "η must be finite and ≥ 0, got \(e)")
        }
        self.name = name
        self.alpha = alpha
        self.mixer = mixer
        self.maskLayer = maskLayer
        self.maskLoss = maskLoss
        self.maskLossWeight = maskLossWeight
        self.maskAdjust = maskAdjust
        self.maskAdjustUsesMixerLambda = maskAdjustUsesMixerLambda
        self.lambdaMargin = lambdaMargin
        self.mixerLoss = mixerLoss
        self.momentum = try momentum ?? MomentumSchedule(start: 0.999, end: 0.999999, constantFraction: 0.1)
        self.momentumReferenceSteps = momentumReferenceSteps
        self.switchOff = switchOff
        self.permutationsWithoutFixedPoints = permutationsWithoutFixedPoints
        self.headInitStd = headInitStd
        self.reinitializeOnlineHead = reinitializeOnlineHead
        self.evaluateMixHeads = evaluateMixHeads
        self.momentumStopsAtMaskLayer = momentumStopsAtMaskLayer
        self.seed = seed
    }

    /// AutoMix on CIFAR (`cifar100/automix/basic/r18_l2_a2_near_L1_01_mlr5e_2.py`): Mix Block without
    /// λ channel, nearest upsampling, L1 mask loss (margin 0.1, weight 0.1), plain mixup CE as the
    /// Mixer objective, lam_margin 0.08, mask_adjust 0, EMA 0.999 → 0.999999 scaled to the run
    /// length (`momentumReferenceSteps` = 200,000; pass nil for the literal schedule).
    public static func automix(alpha: Double = 2, lambdaChannel: Bool = false,
                               momentumReferenceSteps: Int? = 200_000) throws -> LearnedMixConfig {
        try LearnedMixConfig(name: "automix", alpha: alpha, mixer: try .automix(lambdaChannel: lambdaChannel),
                             maskLoss: MaskLoss(mode: .l1), mixerLoss: .mixupCrossEntropy,
                             momentumReferenceSteps: momentumReferenceSteps)
    }

    /// The EMA momentum at step t of T (the schedule, rescaled when `momentumReferenceSteps` is set).
    public func momentumValue(step t: Int, total: Int) -> Double {
        let m = momentum.value(step: t, total: total)
        guard let r = momentumReferenceSteps, total > 0, m < 1 else { return m }
        return Swift.max(0, 1 - (1 - m) * Double(r) / Double(total))
    }

    /// SAMix on CIFAR (`cifar100/samix/basic/r18_l2_a2_bili_val_dp0_mul_x_cat_L1_var_01_mlr5e_2.py`):
    /// Mixer with R_0.25 λ encoding, mixing attention, ConvNeck value, bilinear upsampling;
    /// L1 + variance mask loss (whole-batch statistics, as the reference); the η-balanced Mixer
    /// objective with η = 0.5 (`eta`) — a project choice: it is the loss the paper describes, while
    /// the shipped configs compute plain mixup CE (`mixerLoss = .mixupCrossEntropy`, docs/method.md §4.2);
    /// lam_margin 0.08, mask_adjust 0, EMA 0.999 → 0.999999 scaled to the run length
    /// (`momentumReferenceSteps` = 200,000; pass nil for the literal schedule).
    public static func samix(alpha: Double = 2, eta: Float = 0.5, lamMulK: [Double] = [0.25],
                             momentumReferenceSteps: Int? = 200_000) throws -> LearnedMixConfig {
        try LearnedMixConfig(name: "samix", alpha: alpha, mixer: .samix(lamMulK: lamMulK),
                             maskLoss: MaskLoss(mode: .l1Variance), mixerLoss: .etaBalanced(eta: eta),
                             momentumReferenceSteps: momentumReferenceSteps)
    }
}
