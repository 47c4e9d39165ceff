import SAMixCore
import SAMixOps
import SAMixNN
import SAMixData
import SAMixMixing

/// SAMix^P (docs/method.md §6): train a new classifier with masks from a pre-trained, frozen Mixer, without
/// the online Mixer training (no momentum network, no Mixer objective) — the run costs one extra
/// no-grad encoder forward per step instead of SAMix's four network passes.
///
/// Per step: λ ~ Beta(α, α), π random; F = encoder(x)[mask_layer] (frozen, no graph);
/// M₁ = Mixer(F, λ, π) (frozen, no graph) → mask_adjust (probability p, with this λ) → lam_margin;
/// x̃ = x·(1 − M₁) + x[π]·M₁; L = mixupCE(model(x̃), y, y[π], λ). Defaults are OpenMixup's
/// `mix_args.samix`: α = 2, lam_margin = 0.08, mask_adjust = 0.
///
/// The frozen encoder and Mixer run with batch-statistics BN by default (`batchStatistics`), as
/// when the Mixer was trained (its inputs were always batch-normalised that way) and so that the
/// features adapt to a new dataset's statistics; `batchStatistics = false` uses the saved running
/// statistics instead.
public final class PretrainedMixerObjective: TrainingObjective {
    public let checkpoint: MixerCheckpoint
    public let alpha: Double
    public let lambdaMargin: Float
    public let maskAdjust: Double
    public let batchStatistics: Bool
    public let name: String
    public private(set) var mixer: Mixer?
    public private(set) var encoder: Backbone?

    public init(checkpoint: MixerCheckpoint, alpha: Double = 2, lambdaMargin: Float = 0.08, maskAdjust: Double = 0,
                batchStatistics: Bool = true, name: String = "samix-p") throws {
        try require(alpha > 0 && alpha.isFinite, "alpha must be a finite value > 0, got \(alpha)")
        try require(lambdaMargin >= 0 && lambdaMargin < 0.5, "lam_margin must be in [0, 0.5)")
        try require(maskAdjust >= 0 && maskAdjust <= 1, "mask_adjust must be a probability in [0, 1]")
        self.checkpoint = checkpoint
        self.alpha = alpha
        self.lambdaMargin = lambdaMargin
        self.maskAdjust = maskAdjust
        self.batchStatistics = batchStatistics
        self.name = name
    }

    /// Loads a checkpoint saved by `MixerCheckpoint.save` (e.g. after an online SAMix run).
    /// SAMix^P from a saved Mixer file; `alpha` nil and every other setting: `OptionSchema.pretrained`'s defaults.
    public convenience init(path: String, alpha: Double? = nil) throws {
        var o = try KeyValueOptions(pairs: [("path", path)] + (alpha.map { [("alpha", "\($0)")] } ?? []),
                                    context: "samix-p options")
        try self.init(options: &o)
    }

    /// SAMix^P from "key=value" options (`path` required; `alpha`, `lam_margin`, `mask_adjust`,
    /// `batch_statistics` default to `OptionSchema.pretrained`'s) — the parser of the C ABI and the CLI.
    public convenience init(options o: inout KeyValueOptions) throws {
        let context = o.context
        guard let path = o.take("path"), !path.isEmpty else {
            throw SAMixError.invalidArgument("\(context): SAMix^P needs the option path=<saved Mixer file>")
        }
        try o.applySchema(OptionSchema.pretrained, method: "samix-p")
        let alpha = try o.required("alpha") { try $0.double($1) }
        let margin = try o.required("lam_margin") { try $0.float($1) }
        let adjust = try o.required("mask_adjust") { try $0.double($1) }
        let batchStats = try o.required("batch_statistics") { try $0.bool($1) }
        try o.finish(known: OptionSchema.pretrained.options.map { $0.name })
        try self.init(checkpoint: try MixerCheckpoint.load(from: path), alpha: alpha, lambdaMargin: margin,
                      maskAdjust: adjust, batchStatistics: batchStats)
    }

    public func prepare(model: ImageClassifier) throws {
        try prepare(inChannels: model.inChannels)
    }

    /// Builds the frozen encoder and Mixer for images with `inChannels` channels (idempotent).
    public func prepare(inChannels: Int) throws {
        if mixer != nil { return }
        try require(inChannels == checkpoint.encoderInChannels,
                    "\(name): the images have \(inChannels) channels, the Mixer's encoder takes \(checkpoint.encoderInChannels)")
        encoder = try checkpoint.makeEncoder()
        mixer = try checkpoint.makeMixer()
    }

    /// The masks the frozen Mixer makes for the batch (partner masks M₁ [N, 1, H, W]).
    public func masks(images: Tensor, lam: Float, permutation: [Int], rng: inout SplitMix64) throws -> Tensor {
        guard let mixer, let encoder else { throw SAMixError.invalidState("\(name): prepare(model:) was not called") }
        encoder.train(batchStatistics)
        mixer.train(batchStatistics)
        return try GradMode.withDisabled {
            let f = try LearnedMixing.stageFeatures(encoder, images, stage: checkpoint.maskLayer)
            return try mixer(features: f, lam: lam, permutation: permutation,
                             imageHeight: images.shape[2], imageWidth: images.shape[3], rng: &rng).partnerMask
        }
    }

    public func loss(model: ImageClassifier, batch: Batch, context: inout StepContext) throws -> Tensor {
        let n = batch.size
        try require(n >= 2, "\(name) needs batches of at least 2 images")
        var rng = context.rng
        defer { context.rng = rng }
        let lam = Float(rng.beta(alpha, alpha))
        let perm = rng.permutation(n)
        let m1 = try masks(images: batch.images, lam: lam, permutation: perm, rng: &rng)
        if maskAdjust > 0 && rng.uniformDouble() < maskAdjust {
            try MaskAdjust.adjustMean(partnerMask: m1, lam: lam)
        }
        MaskAdjust.applyLambdaMargin(partnerMask: m1, lam: lam, margin: lambdaMargin)
        let mixed = try GradMode.withDisabled { try batch.images.mixed(withPartners: perm, partnerMask: m1) }
        context.metrics += [("lambda", Double(lam)), ("mask_gap", LearnedMixing.meanAbsGap(m1, lam: lam))]
        return try model(mixed).mixupCrossEntropy(labelsA: batch.labels, labelsB: perm.map { batch.labels[$0] }, lam: lam)
    }
}
