import XCTest
import SAMix
@testable import SAMixCore
@testable import SAMixOps
@testable import SAMixNN
@testable import SAMixData
@testable import SAMixMixing
@testable import SAMixTraining

/// Pins every default that reproduces OpenMixup (docs/method.md §2.6, §3.7, §5, §7) and every named project
/// option that departs from it (issue 14): changing a default makes one of these fail.
final class ReferenceDefaultsTests: XCTestCase {
    // MARK: mask loss

    /// One mean and variance over the whole batch (docs/method.md §3.7): per-sample means far from λ that
    /// average to 1 − λ cost nothing with the default, but do per sample.
    func testMaskLossDefaultsToWholeBatchStatistics() throws {
        XCTAssertEqual(try MaskLoss(mode: .l1).scope, .batch)
        XCTAssertEqual(try LearnedMixConfig.automix().maskLoss.scope, .batch)
        XCTAssertEqual(try LearnedMixConfig.samix().maskLoss.scope, .batch)
        XCTAssertEqual(try SAMixSSLConfig().maskLoss.scope, .batch)
        // Sample 0 all 0.2, sample 1 all 0.8: batch mean 0.5 = 1 − λ for λ = 0.5.
        let m = try Tensor((0..<8).map { $0 < 4 ? Float(0.2) : 0.8 }, shape: [2, 1, 2, 2])
        XCTAssertEqual(try MaskLoss(mode: .l1)(partnerMask: m, lam: 0.5).data[0], 0, accuracy: 1e-7)
        XCTAssertEqual(try MaskLoss(mode: .l1, scope: .sample)(partnerMask: m, lam: 0.5).data[0], 0.2, accuracy: 1e-6)
        // The other reference mask-loss settings: margin 0.1, variance weight 2, weight 0.1, modes.
        let a = try LearnedMixConfig.automix(), s = try LearnedMixConfig.samix()
        XCTAssertEqual(a.maskLoss.mode, .l1)
        XCTAssertEqual(s.maskLoss.mode, .l1Variance)
        for c in [a, s] {
            XCTAssertEqual(c.maskLoss.margin, 0.1)
            XCTAssertEqual(c.maskLoss.varianceWeight, 2)
            XCTAssertEqual(c.maskLossWeight, 0.1)
        }
    }

    // MARK: AutoMix / SAMix configs

    func testLearnedMixConfigsFollowTheCIFARConfigs() throws {
        for c in [try LearnedMixConfig.automix(), try LearnedMixConfig.samix()] {
            XCTAssertEqual(c.alpha, 2)
            XCTAssertEqual(c.maskLayer, 2)
            XCTAssertEqual(c.lambdaMargin, 0.08)
            XCTAssertEqual(c.maskAdjust, 0)
            XCTAssertFalse(c.maskAdjustUsesMixerLambda)
            XCTAssertEqual(c.momentum, try MomentumSchedule(start: 0.999, end: 0.999999, constantFraction: 0.1))
            XCTAssertEqual(c.switchOff, 0)
            XCTAssertFalse(c.permutationsWithoutFixedPoints)
            XCTAssertEqual(c.headInitStd, 0.01)
            XCTAssertFalse(c.momentumStopsAtMaskLayer, "the reference runs backbone_k over every stage")
        }
        let a = try LearnedMixConfig.automix(), s = try LearnedMixConfig.samix()
        XCTAssertEqual(a.mixerLoss, .mixupCrossEntropy)
        XCTAssertEqual(a.mixer, try MixerConfig.automix())
        XCTAssertEqual(a.mixer.upsampling, [.nearest])
        // Project choice, kept on purpose (README "differences from the reference"): the η-balanced objective.
        XCTAssertEqual(s.mixerLoss, .etaBalanced(eta: 0.5))
        XCTAssertEqual(s.mixer, try MixerConfig.samix(lamMulK: [0.25], dropout: 0))
        XCTAssertEqual(s.mixer.upsampling, [.bilinear])
        // Project choice: the EMA schedule is rescaled to the run length (OpenMixup's 200,000 steps).
        XCTAssertEqual(a.momentumReferenceSteps, 200_000)
        XCTAssertEqual(s.momentumReferenceSteps, 200_000)
    }

    /// With the default the momentum encoder's clean forward runs every stage, so the BN statistics
    /// of ResNet-18's last stage (after mask layer 2) also see clean images; stopping early changes them.
    func testMomentumCleanForwardRunsEveryStage() throws {
        func lastStageRunningMean(stopEarly: Bool) throws -> [Float] {
            var c = try LearnedMixConfig.automix()
            c.momentumStopsAtMaskLayer = stopEarly
            let model = try ModelZoo.make("resnet18", numClasses: 4, seed: 3)
            let obj = LearnedMixObjective(config: c)
            try obj.prepare(model: model)
            let x = try TestData.uniform([4, 3, 32, 32], seed: 5)
            var ctx = StepContext(step: 0, totalSteps: 10, epoch: 0, rng: SplitMix64(seed: 9))
            _ = try obj.losses(model: model, batch: Batch(images: x, labels: [0, 1, 2, 3], indices: [0, 1, 2, 3],
                                                          epoch: 0, index: 0), context: &ctx)
            let buffers = try XCTUnwrap(obj.momentumModel).backbone.namedBuffers()
            let last = try XCTUnwrap(buffers.last { $0.0.contains("running_mean") })
            return last.1.scalars
        }
        XCTAssertNotEqual(try lastStageRunningMean(stopEarly: false), try lastStageRunningMean(stopEarly: true))
    }

    // MARK: Mixer objective: one builder for the CLI and the C ABI

    func testMixerObjectiveByNameUsesEta() throws {
        XCTAssertEqual(try MixerObjectiveLoss.named("bce", eta: 0.3), .sigmoidBCE(negativeWeight: 0.3))
        XCTAssertEqual(try MixerObjectiveLoss.named("bce"), .sigmoidBCE(negativeWeight: 0.5))
        XCTAssertEqual(try MixerObjectiveLoss.named("eta", eta: 0.2), .etaBalanced(eta: 0.2))
        XCTAssertEqual(try MixerObjectiveLoss.named("official", eta: 0.2), .mixupCrossEntropy)
        XCTAssertThrowsError(try MixerObjectiveLoss.named("bce", eta: -1))
        XCTAssertThrowsError(try MixerObjectiveLoss.named("hinge"))
    }

    /// The CLI passes its flags as (key, value) pairs, the C ABI as "key=value" text; both go through
    /// `LearnedMixOptions.config`, so `--mixer-loss bce --eta 0.3` and `mixer_loss=bce\neta=0.3` build
    /// the same objective (the old CLI hard-coded the BCE negative weight 1).
    func testCLIAndABIOptionFormsBuildTheSameObjective() throws {
        for (method, flags) in [("samix", [("eta", "0.3"), ("mixer_loss", "bce")]),
                                ("automix", [("eta", "0.3"), ("mixer_loss", "bce")]),
                                ("automix", [("mixer_loss", "eta")]),
                                ("samix", [("mask_loss_scope", "sample"), ("mask_loss", "0")])] {
            let cli = try LearnedMixOptions.config(method: method, pairs: flags)
            let abi = try LearnedMixOptions.config(method: method, text: flags.map { "\($0.0)=\($0.1)" }.joined(separator: "\n"))
            XCTAssertEqual(cli, abi, "\(method) \(flags)")
        }
        XCTAssertEqual(try LearnedMixOptions.config(method: "samix", text: "mixer_loss=bce\neta=0.3").mixerLoss,
                       .sigmoidBCE(negativeWeight: 0.3))
        XCTAssertEqual(try LearnedMixOptions.config(method: "automix", text: "mixer_loss=eta").mixerLoss,
                       .etaBalanced(eta: 0.5), "AutoMix with SAMix's objective")
        XCTAssertEqual(try LearnedMixOptions.config(method: "samix", text: "eta=0.2").mixerLoss, .etaBalanced(eta: 0.2))
        XCTAssertEqual(try LearnedMixOptions.config(method: "samix", text: "mask_loss_scope=sample").maskLoss.scope, .sample)
        XCTAssertEqual(try LearnedMixOptions.config(method: "samix", text: ""), try LearnedMixConfig.samix())
        XCTAssertEqual(try LearnedMixOptions.config(method: "automix", text: ""), try LearnedMixConfig.automix())
        XCTAssertThrowsError(try LearnedMixOptions.config(method: "samix", text: "etta=1"))
        XCTAssertThrowsError(try LearnedMixOptions.config(method: "samix", pairs: [("eta", "1"), ("eta", "2")]))
    }

    /// `defaults(method:)` describes the defaults `config` uses (what Python's signatures are tested against).
    func testOptionDefaultsDescribeTheConfigs() throws {
        let d = Dictionary(uniqueKeysWithValues: try LearnedMixOptions.defaults(method: "samix"))
        XCTAssertEqual(d["mask_loss_scope"], "batch")
        XCTAssertEqual(d["mixer_loss"], "eta_balanced")
        XCTAssertEqual(d["eta"], "0.5")
        XCTAssertEqual(d["lam_mul_k"], "0.25")
        XCTAssertEqual(d["mask_loss_mode"], "L1+Variance")
        let a = Dictionary(uniqueKeysWithValues: try LearnedMixOptions.defaults(method: "automix"))
        XCTAssertEqual(a["mixer_loss"], "official")
        XCTAssertEqual(a["lam_concat"], "0")
        // Round trip: the described defaults parse back to the default config.
        for m in ["automix", "samix"] {
            let text = try LearnedMixOptions.defaults(method: m).map { "\($0.0)=\($0.1)" }.joined(separator: "\n")
            XCTAssertEqual(try LearnedMixOptions.config(method: m, text: text),
                           try LearnedMixOptions.config(method: m, text: ""), m)
        }
    }

    // MARK: learning-rate floor

    func testCosineFloorIsTheReferenceMinLRForLearnedMixing() throws {
        let samix = LearnedMixObjective(config: try .samix()), automix = LearnedMixObjective(config: try .automix())
        let mixup = try ObjectiveRegistry.make("mixup")
        XCTAssertEqual(LearningRateSchedule.referenceFloorFraction(for: samix), 0.5)
        XCTAssertEqual(LearningRateSchedule.referenceFloorFraction(for: automix), 0.5)
        XCTAssertEqual(LearningRateSchedule.referenceFloorFraction(for: mixup), 0)
        XCTAssertEqual(LearningRateSchedule.referenceFloorFraction(for: try ObjectiveRegistry.make("vanilla")), 0)
        // lr 0.1 → 0.05 at the end for AutoMix/SAMix (OpenMixup min_lr=5e-2), → 0 for Mixup.
        let s = try LearningRateSchedule.cosine(baseLR: 0.1, minLR: nil, objective: samix)
        XCTAssertEqual(s.value(step: 1000, total: 1000), 0.05, accuracy: 1e-7)
        XCTAssertEqual(s.value(step: 0, total: 1000), 0.1, accuracy: 1e-7)
        XCTAssertEqual(try LearningRateSchedule.cosine(baseLR: 0.1, minLR: nil, objective: mixup).value(step: 1000, total: 1000), 0)
        XCTAssertEqual(try LearningRateSchedule.cosine(baseLR: 0.1, minLR: 0.01, objective: samix).value(step: 1000, total: 1000),
                       0.01, accuracy: 1e-7)
        // The C ABI's spec form.
        XCTAssertEqual(try LearningRateSchedule.named("cosine", baseLR: 0.1, objective: automix).kind, .cosine(minLR: 0.05))
        XCTAssertEqual(try LearningRateSchedule.named("cosine", baseLR: 0.1).kind, .cosine(minLR: 0))
        XCTAssertEqual(try LearningRateSchedule.named("cosine:min_lr=0.02", baseLR: 0.1, objective: samix).kind,
                       .cosine(minLR: 0.02))
        XCTAssertEqual(try LearningRateSchedule.named("constant", baseLR: 0.1).kind, .constant)
        for bad in ["cosine:min_lr=", "cosine:min_lr=0.5", "cosine:floor=0.1", "constant:min_lr=0", "linear"] {
            XCTAssertThrowsError(try LearningRateSchedule.named(bad, baseLR: 0.1), bad)
        }
        let spec = try LearningRateSchedule.cosine(baseLR: 0.1, minLR: nil, objective: samix).spec
        XCTAssertEqual(try LearningRateSchedule.named(spec, baseLR: 0.1).kind, .cosine(minLR: 0.05))
    }

    // MARK: pairing

    /// CutMix pastes a partner that is never the sample itself (OpenMixup's `_no_repeat_shuffle_idx`);
    /// Mixup keeps the plain randperm of `mixup.py`.
    func testCutMixPairsNoSampleWithItselfAndMixupUsesAPermutation() throws {
        XCTAssertEqual(try CutMix().partner, .derangement)
        XCTAssertEqual(try Mixup().partner, .permutation)
        let obj = try XCTUnwrap(try ObjectiveRegistry.make("cutmix") as? MixPolicyObjective)
        XCTAssertEqual(try XCTUnwrap(obj.policy as? CutMix).partner, .derangement)
        var rng = SplitMix64(seed: 1)
        let images = [Float](repeating: 0, count: 4 * 1 * 8 * 8)
        let shape = try ImageBatchShape(batch: 4, channels: 1, height: 8, width: 8)
        for _ in 0..<300 {
            let r = try images.withUnsafeBufferPointer {
                try CutMix().plan(images: $0.baseAddress!, shape: shape, lambda: 0.5, rng: &rng)
            }
            XCTAssertFalse(r.partner.enumerated().contains { $0.offset == $0.element }, "\(r.partner)")
        }
    }

    /// `mix_shuffle_no_repeat` of AutoMix/SAMix uses the engine's one derangement.
    func testLearnedNoRepeatPermutationIsTheEngineDerangement() throws {
        for n in [2, 3, 7] {
            var a = SplitMix64(seed: UInt64(n)), b = SplitMix64(seed: UInt64(n))
            for _ in 0..<50 {
                let p = LearnedMixing.permutation(n, withoutFixedPoints: true, rng: &a)
                XCTAssertEqual(p, try PartnerMode.derangement.draw(batch: n, rng: &b))
                XCTAssertFalse(p.enumerated().contains { $0.offset == $0.element })
            }
        }
    }

    // MARK: SAMix-C

    func testSAMixCDefaultsFollowTheReference() throws {
        let s = try SAMixSSLConfig(variant: .cluster)
        XCTAssertEqual(s.clusterFeatures, .query)
        XCTAssertEqual(s.clusterPCADimensions, 256)
        XCTAssertFalse(s.detachClusterHeadMixedFeatures)
        XCTAssertFalse(s.kmeansWarmStart)
        XCTAssertEqual(s.alpha, 2)
        XCTAssertEqual(s.maskLossWeight, 0.1)
        XCTAssertEqual(s.clusterHeadInitStd, 0.01)
    }

    /// The cluster head's mixup CE on f_k(x_mb) reaches the Mixer by default, not with the option.
    func testSAMixCClusterHeadMixupTermReachesTheMixer() throws {
        for detach in [false, true] {
            let s = try SAMixSSLConfig(variant: .cluster, maskLayer: 1, clusters: 3, detachClusterHeadMixedFeatures: detach)
            let cfg = try MoCoConfig(architecture: "resnet20", neckHidden: 16, embeddingDim: 8, queueSize: 16, seed: 7)
            let m = try MoCo(config: cfg, mix: .samix(s))
            try m.setPseudoLabels([0, 1, 2, 0, 1, 2])
            let xq = try TestData.uniform([6, 3, 8, 8], seed: 40), xk = try TestData.uniform([6, 3, 8, 8], seed: 41)
            var rng = SplitMix64(seed: 3)
            let out = try m.step(viewQ: xq, viewK: xk, indices: Array(0..<6), rng: &rng)
            m.mixer!.zeroGrad()
            try out.terms["loss_clst"]!.backward()
            let mass = m.mixer!.parameters().reduce(0.0) { acc, p in
                acc + (p.grad?.scalars.reduce(0.0) { $0 + Double(abs($1)) } ?? 0)
            }
            if detach { XCTAssertEqual(mass, 0) } else { XCTAssertGreaterThan(mass, 0) }
        }
    }

    /// Pseudo-labels come from the query encoder after PCA whitening by default: a trainer whose
    /// query and key encoders differ labels the data like k-means on the whitened query features.
    func testSAMixCPseudoLabelsClusterWhitenedQueryFeatures() throws {
        let data = try DataFixtures.dataset(labels: (0..<40).map { $0 % 4 }, height: 8, width: 8, classCount: 4, seed: 3)
        let norm = Normalization.standard(for: data)
        func labels(_ features: SAMixSSLConfig.ClusterFeatureSource, pca: Int?) throws -> ([Int], Tensor, Tensor) {
            let s = try SAMixSSLConfig(variant: .cluster, maskLayer: 1, clusters: 4, kmeansIterations: 5,
                                       clusterFeatures: features, clusterPCADimensions: pca)
            let cfg = try MoCoConfig(architecture: "resnet20", neckHidden: 16, embeddingDim: 8, queueSize: 16, seed: 7)
            let m = try MoCo(config: cfg, mix: .samix(s))
            var r = SplitMix64(seed: 11)
            for p in m.key.backbone.parameters() { for i in 0..<p.count { p.data[i] += Float(r.uniformDouble() - 0.5) * 0.5 } }
            let t = try SSLTrainer(model: m, config: try SSLTrainingConfig(epochs: 1, batchSize: 4),
                                   augmentation: try SSLAugmentation.mocoV2(height: 8, width: 8), normalization: norm)
            try t.refreshPseudoLabels(data, epoch: 0)
            let fq = try SSLFeatures.extract(m.query.backbone, dataset: data, normalization: norm)
            let fk = try SSLFeatures.extract(m.key.backbone, dataset: data, normalization: norm, l2Normalize: true)
            return (m.pseudoLabels!, fq, fk)
        }
        let (def, fq, _) = try labels(.query, pca: 256)
        let expected = try KMeans.fit(try PCAWhitening.apply(fq, dimensions: 256), clusters: 4, iterations: 5,
                                      seed: SplitMix64(seed: 0).fork(index: 77_000).state).assignments
        XCTAssertEqual(def, expected)
        let (old, _, fk) = try labels(.key, pca: nil)
        XCTAssertEqual(old, try KMeans.fit(fk, clusters: 4, iterations: 5,
                                           seed: SplitMix64(seed: 0).fork(index: 77_000).state).assignments)
    }

    func testPCAWhiteningWhitensAndNormalises() throws {
        // Correlated 3-d data with very different scales.
        var rng = SplitMix64(seed: 2)
        var rows: [Float] = []
        for _ in 0..<200 {
            let a = Float(rng.uniformDouble() - 0.5), b = Float(rng.uniformDouble() - 0.5), c = Float(rng.uniformDouble() - 0.5)
            rows += [10 * a, 3 * a + b, 0.2 * c + 0.5 * b]
        }
        let x = try Tensor(rows, shape: [200, 3])
        let y = try PCAWhitening.apply(x, dimensions: 256)
        XCTAssertEqual(y.shape, [200, 3])
        for i in 0..<200 {
            let n = (0..<3).reduce(Float(0)) { $0 + y.data[i * 3 + $1] * y.data[i * 3 + $1] }
            XCTAssertEqual(n, 1, accuracy: 1e-4)
        }
        // Full whitening is unique up to a rotation, so rescaling a column leaves every inner product
        // between output rows unchanged (without whitening they would change).
        var scaled = rows
        for i in 0..<200 { scaled[i * 3] *= 0.1 }
        let y2 = try PCAWhitening.apply(try Tensor(scaled, shape: [200, 3]), dimensions: 256)
        func dot(_ t: Tensor, _ i: Int, _ j: Int) -> Float { (0..<3).reduce(0) { $0 + t.data[i * 3 + $1] * t.data[j * 3 + $1] } }
        for (i, j) in [(0, 1), (2, 50), (7, 199), (100, 101)] { XCTAssertEqual(dot(y, i, j), dot(y2, i, j), accuracy: 2e-3) }
        // Fewer dimensions keep the top ones.
        XCTAssertEqual(try PCAWhitening.apply(x, dimensions: 2).shape, [200, 2])
        // Eigen-decomposition of a known matrix.
        let (vals, _) = PCAWhitening.symmetricEigen([2, 1, 0, 1, 2, 0, 0, 0, 5], 3)
        for (v, e) in zip(vals.sorted(), [1.0, 3, 5]) { XCTAssertEqual(v, e, accuracy: 1e-9) }
    }

    // MARK: validation split and the clean-image term

    func testValidationSplitIsBalancedDisjointAndDeterministic() throws {
        let labels = (0..<600).map { ($0 * 7) % 10 }
        let data = try DataFixtures.dataset(labels: labels, height: 2, width: 2, classCount: 10, seed: 4)
        let (train, val) = try data.validationSplit(count: 100)
        XCTAssertEqual(val.count, 100)
        XCTAssertEqual(train.count, 500)
        for c in 0..<10 { XCTAssertEqual(val.labels.filter { $0 == Int32(c) }.count, 10) }
        let held = try data.balancedSubsetIndices(count: 100, seed: 0)
        let heldSet = Set(held)
        let rest = (0..<600).filter { !heldSet.contains($0) }
        XCTAssertEqual(val.pixels, try data.subset(indices: held).pixels)
        XCTAssertEqual(train.pixels, try data.subset(indices: rest).pixels)
        XCTAssertTrue(heldSet.isDisjoint(with: rest))
        let (train2, val2) = try data.validationSplit(count: 100)
        XCTAssertEqual(val2.pixels, val.pixels)
        XCTAssertEqual(train2.labels, train.labels)
        XCTAssertNotEqual(try data.validationSplit(count: 100, seed: 1).validation.pixels, val.pixels)
        XCTAssertThrowsError(try data.validationSplit(count: 0))
        XCTAssertThrowsError(try data.validationSplit(count: 600))
    }

    func testCleanImageTermAddsCEOnCleanImagesThroughTheClassifierHead() throws {
        let model = try ModelZoo.make("resnet20", numClasses: 4, seed: 1)
        let obj = try CleanImageTermObjective(wrapping: try ObjectiveRegistry.make("mixup"), seed: 2)
        XCTAssertEqual(obj.name, "mixup+clean")
        try obj.prepare(model: model)
        let head = try XCTUnwrap(obj.mixHead)
        XCTAssertEqual(obj.extraModules.map(\.0), ["head_mix"])
        let x = try TestData.uniform([4, 3, 8, 8], seed: 3), y = [0, 1, 2, 3]
        let clean = try x.copy()
        var ctx = StepContext(step: 0, totalSteps: 1, epoch: 0, rng: SplitMix64(seed: 4))
        let loss = try obj.loss(model: model, batch: Batch(images: x, labels: y, indices: [0, 1, 2, 3], epoch: 0, index: 0),
                                context: &ctx)
        let metrics = Dictionary(uniqueKeysWithValues: ctx.metrics)
        let one = try XCTUnwrap(metrics["loss_one"]), cls = try XCTUnwrap(metrics["loss_cls"])
        XCTAssertEqual(Double(loss.data[0]), one + cls, accuracy: 1e-4)
        let expectedOne = try GradMode.withDisabled { try model(clean).crossEntropy(labels: y) }
        XCTAssertEqual(one, Double(expectedOne.data[0]), accuracy: 1e-4)
        model.zeroGrad(); head.zeroGrad()
        try loss.backward()
        for m in [model.head as Module, head] {
            XCTAssertTrue(m.parameters().contains { p in p.grad.map { g in (0..<g.count).contains { g.data[$0] != 0 } } ?? false })
        }
        XCTAssertThrowsError(try CleanImageTermObjective(wrapping: try ObjectiveRegistry.make("vanilla")))
        XCTAssertThrowsError(try CleanImageTermObjective(wrapping: try ObjectiveRegistry.make("samix")))
    }
}
