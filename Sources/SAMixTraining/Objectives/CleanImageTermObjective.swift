import SAMixCore
import SAMixOps
import SAMixNN
import SAMixData
import SAMixMixing

/// A hand-crafted mixing policy given AutoMix's clean-image term L_one (an ablation that separates
/// "learned masks" from "AutoMix/SAMix also train on clean images"). The online branch is built as
/// AutoMix's (docs/method.md §2.2): the mixed batch goes through the backbone and a second head `head_mix`
/// (N(0, 0.01²) init, like OpenMixup's heads), the clean batch through the same backbone and the
/// classifier's own head:
/// ```
/// L_one = CE(head(backbone(x)), y)                                  (clean images)
/// L_cls = Σᵢ λᵢ·CE(zᵢ, yᵢ) + (1 − λᵢ)·CE(zᵢ, y_π(i)) / N,  z = head_mix(backbone(x̃))   (the policy's mix)
/// L = L_cls + L_one
/// ```
/// The evaluated network is the classifier (backbone + head), as AutoMix's online `head_one_q`.
/// Two backbone forward/backward passes per step, like AutoMix's online network.
public final class CleanImageTermObjective: TrainingObjective {
    public let base: MixPolicyObjective
    /// Std of the N(0, σ²) init of `head_mix` (OpenMixup heads: 0.01).
    public let headInitStd: Float
    public var name: String { base.name + "+clean" }
    public private(set) var mixHead: ClassifierHead?
    private var onlineMix: ImageClassifier?
    private weak var preparedFor: ImageClassifier?
    private let seed: UInt64

    /// `base` must be an image-space policy objective (Mixup, CutMix, …; `MixPolicyObjective`).
    public init(wrapping base: TrainingObjective, headInitStd: Float = 0.01, seed: UInt64 = 0) throws {
        guard let b = base as? MixPolicyObjective else {
            throw SAMixError.invalidArgument("the clean-image term applies to image-space mixing policies (mixup, cutmix, …), not '\(base.name)'")
        }
        try require(headInitStd > 0 && headInitStd.isFinite, "head init std must be > 0")
        self.base = b
        self.headInitStd = headInitStd
        self.seed = seed
    }

    public func prepare(model: ImageClassifier) throws {
        if let p = preparedFor, p === model { return }
        var rng = SplitMix64(seed: seed).fork(index: 3)
        let m = try ImageClassifier(architecture: model.architecture, backbone: model.backbone,
                                    inChannels: model.inChannels, numClasses: model.numClasses, rng: &rng)
        Init.normal(m.head.fc.weight, std: headInitStd, rng: &rng)
        m.head.fc.bias?.fill(0)
        m.head.setRequiresGrad(true)
        onlineMix = m
        mixHead = m.head
        preparedFor = model
    }

    public var extraModules: [(String, Module)] {
        guard let mixHead else { return [] }
        return [("head_mix", mixHead)]
    }

    public func loss(model: ImageClassifier, batch: Batch, context: inout StepContext) throws -> Tensor {
        guard let p = preparedFor, p === model, let onlineMix else {
            throw SAMixError.invalidState("\(name): prepare(model:) was not called for this model")
        }
        let clean = try batch.images.copy()      // the policy mixes batch.images in place
        let lossOne = try model(clean).crossEntropy(labels: batch.labels)
        let lossCls = try base.loss(model: onlineMix, batch: batch, context: &context)
        context.metrics += [("loss_one", Double(lossOne.data[0])), ("loss_cls", Double(lossCls.data[0]))]
        return try lossCls + lossOne
    }
}
