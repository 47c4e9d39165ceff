import XCTest
import SAMix
@testable import SAMixCore
@testable import SAMixOps
@testable import SAMixNN
@testable import SAMixData
@testable import SAMixMixing
@testable import SAMixTraining

/// The AutoMix/SAMix training step: gradient routing, finite differences through the frozen
/// momentum network, EMA, training behaviour, SAMix^P and the registry.
final class LearnedMixingObjectiveTests: XCTestCase {
    /// Small class-structured images: class c has a bright bar at a class-specific place and a
    /// class-specific colour balance, plus noise.
    private func data(count: Int, classes: Int, size: Int, seed: UInt64) throws -> (Tensor, [Int]) {
        var rng = SplitMix64(seed: seed)
        let x = try Tensor(zeros: [count, 3, size, size])
        var labels: [Int] = []
        for i in 0..<count {
            let c = i % classes
            labels.append(c)
            for ch in 0..<3 { for y in 0..<size { for xx in 0..<size {
                var v = Float(rng.normal()) * 0.3 + (ch == c % 3 ? 0.5 : -0.2)
                if (c < 2 ? y : xx) / (size / 2) == c % 2 { v += 1 }
                x.data[((i * 3 + ch) * size + y) * size + xx] = v
            } } }
        }
        return (x, labels)
    }

    private func setup(_ config: LearnedMixConfig, batch n: Int = 4, size: Int = 8,
                       seed: UInt64 = 1) throws -> (ImageClassifier, LearnedMixObjective, Batch) {
        let model = try ModelZoo.make("resnet20", numClasses: 4, seed: seed)
        let objective = LearnedMixObjective(config: config)
        try objective.prepare(model: model)
        let (x, y) = try data(count: n, classes: 4, size: size, seed: seed &+ 100)
        return (model, objective, Batch(images: x, labels: y, indices: Array(0..<n), epoch: 0, index: 0))
    }

    private func smallSAMix(initStd: Float = 0.01, maskLoss: MaskLoss? = nil) throws -> LearnedMixConfig {
        var c = try LearnedMixConfig.samix()
        c.maskLayer = 1                       // ResNet-20 stage 2: 32 channels, 4×4 maps on 8×8 images
        c.mixer.initStd = initStd
        if let maskLoss { c.maskLoss = maskLoss }
        return c
    }

    private func gradientMass(_ m: Module) -> Double {
        m.parameters().reduce(0.0) { acc, p in acc + (p.grad?.scalars.reduce(0.0) { $0 + Double(abs($1)) } ?? 0) }
    }

    private func clearGrads(_ modules: [Module]) { for m in modules { m.zeroGrad() } }

    // MARK: gradient routing

    func testEachLossReachesOnlyItsModules() throws {
        for config in [try smallSAMix(), try { var c = try LearnedMixConfig.automix(); c.maskLayer = 1; return c }()] {
            let (model, obj, batch) = try setup(config)
            let mixer = try XCTUnwrap(obj.mixer), mixHead = try XCTUnwrap(obj.mixHead)
            let momentum = try XCTUnwrap(obj.momentumModel), momentumMix = try XCTUnwrap(obj.momentumMixModel)
            XCTAssertTrue(momentum.parameters().allSatisfy { !$0.requiresGrad })
            XCTAssertTrue(momentumMix.head.parameters().allSatisfy { !$0.requiresGrad })
            let all: [Module] = [model, mixer, mixHead, momentum, momentumMix]
            typealias Pick = (LearnedMixLosses) -> Tensor?
            let terms: [(String, Pick)] = [("cls", { $0.classifierMixed }), ("one", { $0.classifierClean }),
                                          ("gen", { $0.mixer }), ("mask", { $0.mask })]
            for (name, pick) in terms {
                clearGrads(all)
                var ctx = StepContext(step: 0, totalSteps: 10, epoch: 0, rng: SplitMix64(seed: 5))
                let losses = try obj.losses(model: model, batch: batch, context: &ctx)
                // Masks avoid the λ-margin fallback so the online branch really uses the Mixer.
                XCTAssertFalse(losses.backboneMaskDegenerate)
                try XCTUnwrap(pick(losses), name).backward()
                let onBackbone = gradientMass(model.backbone), onHeadOne = gradientMass(model.head)
                let onMixHead = gradientMass(mixHead), onMixer = gradientMass(mixer)
                XCTAssertEqual(gradientMass(momentum) + gradientMass(momentumMix.head), 0, "\(config.name) \(name)")
                switch name {
                case "cls":
                    XCTAssertGreaterThan(onBackbone, 0); XCTAssertGreaterThan(onMixHead, 0)
                    XCTAssertEqual(onMixer, 0, "\(config.name): L_cls reached the Mixer"); XCTAssertEqual(onHeadOne, 0)
                case "one":
                    XCTAssertGreaterThan(onBackbone, 0); XCTAssertGreaterThan(onHeadOne, 0)
                    XCTAssertEqual(onMixer, 0); XCTAssertEqual(onMixHead, 0)
                default: // gen, mask: the Mixer only
                    XCTAssertGreaterThan(onMixer, 0, "\(config.name) \(name)")
                    XCTAssertEqual(onBackbone + onHeadOne + onMixHead, 0, "\(config.name): L_\(name) reached the online network")
                }
            }
        }
    }

    // MARK: finite differences through mask → mixed image → frozen network → loss

    func testMixerGradientThroughFrozenMomentumNetwork() throws {
        // A larger Mixer init gives a non-trivial mask. Output: the logits of head_mix_k on x_mb
        // (projected on random weights by the checker), which depend on the Mixer only through
        // mask → mixed image → frozen backbone_k (train-mode BN) → frozen head_mix_k.
        var config = try smallSAMix(initStd: 0.3)
        config.permutationsWithoutFixedPoints = true   // with 2 images π must swap them
        let (model, obj, batch) = try setup(config, batch: 2)
        let mixer = try XCTUnwrap(obj.mixer), kNet = try XCTUnwrap(obj.momentumMixModel)
        let conv2 = try XCTUnwrap(mixer.value.conv2).weight            // [1, 16, 1, 1]
        let keyBias = try XCTUnwrap(mixer.attention.key?.bias)         // [16]
        let f: ([Tensor]) throws -> Tensor = { _ in
            var ctx = StepContext(step: 3, totalSteps: 10, epoch: 0, rng: SplitMix64(seed: 9))
            let l = try obj.losses(model: model, batch: batch, context: &ctx)
            let xMB = try batch.images.mixed(withPartners: l.permutationMixer, partnerMask: l.mixerMask)
            return try kNet(xMB)
        }
        let report = try GradCheck(eps: 5e-4, rtol: 5e-2, atol: 3e-4).run([conv2, keyBias], f)
        // Finite differences through ~10⁴ ReLUs: a perturbation occasionally moves a pre-activation
        // across 0, so allow at most 2 of the 32 elements to miss (a wrong backward misses most).
        let head = report.mismatches.prefix(3).map(\.description).joined(separator: "; ")
        XCTAssertEqual(report.checked, 32)
        XCTAssertLessThanOrEqual(report.mismatches.count, 2, "\(report.mismatches.count)/\(report.checked) mismatches: \(head)")
        // The check is meaningful: the gradient is well above the tolerance.
        conv2.requiresGrad = true
        let out = try f([])
        try out.backward(gradient: try Tensor(repeating: 1, shape: out.shape))
        let g = try XCTUnwrap(conv2.grad).scalars.map { abs($0) }.max() ?? 0
        XCTAssertGreaterThan(g, 1e-2)
    }

    // MARK: EMA

    func testMomentumScheduleValues() throws {
        let s = try LearnedMixConfig.samix().momentum
        XCTAssertEqual(s, try LearnedMixConfig.automix().momentum)
        let total = 200_000 // 400 epochs × 500 iterations (docs/method.md §2.3)
        XCTAssertEqual(s.value(step: 0, total: total), 0.999)
        XCTAssertEqual(s.value(step: 19_999, total: total), 0.999)
        XCTAssertEqual(s.value(step: 20_000, total: total), 0.9990244, accuracy: 5e-8)
        XCTAssertEqual(s.value(step: 50_000, total: total), 0.9991463, accuracy: 5e-8)
        XCTAssertEqual(s.value(step: 100_000, total: total), 0.9994995, accuracy: 5e-8)
        XCTAssertEqual(s.value(step: 150_000, total: total), 0.9998527, accuracy: 5e-8)
        XCTAssertEqual(s.value(step: total, total: total), 0.999999, accuracy: 1e-12)
    }

    func testMomentumScaledToRunLength() throws {
        let c = try LearnedMixConfig.samix()
        XCTAssertEqual(c.momentumReferenceSteps, 200_000)
        // Identical to the literal schedule for a 200,000-step run.
        for t in [0, 20_000, 100_000, 199_999] {
            XCTAssertEqual(c.momentumValue(step: t, total: 200_000), c.momentum.value(step: t, total: 200_000), accuracy: 1e-12)
        }
        // A 2,000-step run: 1 − m is 100× larger (time constant 10 steps instead of 1,000).
        XCTAssertEqual(c.momentumValue(step: 0, total: 2_000), 0.9, accuracy: 1e-9)
        XCTAssertEqual(c.momentumValue(step: 1_000, total: 2_000), 1 - (1 - 0.9994995) * 100, accuracy: 1e-6)
        XCTAssertEqual(c.momentumValue(step: 2_000, total: 2_000), 1 - 1e-6 * 100, accuracy: 1e-9)
        // Very short runs clamp at 0 (k = q after every step).
        XCTAssertEqual(c.momentumValue(step: 0, total: 100), 0)
        var literal = c
        literal.momentumReferenceSteps = nil
        XCTAssertEqual(literal.momentumValue(step: 0, total: 2_000), 0.999)
    }

    func testAfterStepAppliesEMAToParametersOnly() throws {
        var config = try smallSAMix()
        config.momentumReferenceSteps = nil
        let (model, obj, _) = try setup(config)
        let momentum = try XCTUnwrap(obj.momentumModel), momentumMix = try XCTUnwrap(obj.momentumMixModel)
        let mixHead = try XCTUnwrap(obj.mixHead)
        // Make q differ from k (parameters and BN buffers).
        for p in model.parameters() + mixHead.parameters() { for i in 0..<p.count { p.data[i] += 0.5 } }
        for (_, b) in model.namedBuffers() { for i in 0..<b.count { b.data[i] += 0.25 } }
        let kBefore = (momentum.parameters() + momentumMix.head.parameters()).map(\.scalars)
        let kBuffers = momentum.namedBuffers().map { $0.1.scalars }
        let q = (model.backbone.parameters() + model.head.parameters() + mixHead.parameters()).map(\.scalars)
        let k = momentum.backbone.parameters() + momentum.head.parameters() + momentumMix.head.parameters()
        XCTAssertEqual(q.count, k.count)
        let ctx = StepContext(step: 100, totalSteps: 200, epoch: 0, rng: SplitMix64(seed: 0))
        try obj.afterStep(model: model, context: ctx)
        let m = try XCTUnwrap(obj.lastMomentum)
        XCTAssertEqual(m, 0.9994995, accuracy: 5e-8)
        let a = Float(m), b = Float(1 - m)
        for (j, t) in k.enumerated() {
            for i in 0..<t.count { XCTAssertEqual(t.data[i], a * kBefore[j][i] + b * q[j][i], accuracy: 1e-6) }
        }
        XCTAssertEqual(momentum.namedBuffers().map { $0.1.scalars }, kBuffers, "BN buffers must not be averaged")
    }

    // MARK: training behaviour

    func testMixerTrainingMovesMaskMeanTowardLambda() throws {
        // A few SGD steps on the Mixer's objective alone (L_gen through the frozen momentum network
        // + w·L_mask, exactly the terms that reach the Mixer) at a fixed λ on a small structured
        // batch: the own-image share of the mask, 0.5 at init, must move toward λ.
        for lam: Float in [0.2, 0.8] {
            let (_, obj, batch) = try setup(try smallSAMix(), batch: 8)
            let config = obj.config
            let mixer = try XCTUnwrap(obj.mixer), kNet = try XCTUnwrap(obj.momentumMixModel)
            let opt = try SGD(mixer.namedParameters(), lr: 0.2, momentum: 0.9)
            let perm = [3, 2, 1, 0, 7, 6, 5, 4]
            let partners = perm.map { batch.labels[$0] }
            var rng = SplitMix64(seed: 1)
            var shares: [Double] = []
            for _ in 0..<40 {
                opt.zeroGrad()
                let f = try GradMode.withDisabled {
                    try LearnedMixing.stageFeatures(kNet.backbone, batch.images, stage: config.maskLayer)
                }
                let out = try mixer(features: f, lam: lam, permutation: perm, imageHeight: 8, imageWidth: 8, rng: &rng)
                let m = out.partnerMask
                shares.append(1 - Double(m.scalars.reduce(0, +)) / Double(m.count))
                let z = try kNet(try batch.images.mixed(withPartners: perm, partnerMask: m))
                let loss = try config.mixerLoss(logits: z, labelsA: batch.labels, labelsB: partners, lam: lam)
                    + (try config.maskLoss(partnerMask: m, lam: lam)) * config.maskLossWeight
                try loss.backward()
                try opt.step()
            }
            // SGD with momentum oscillates: judge the mean of the last 10 steps, which must have closed
            // the gap to λ by at least 0.05 (a Mixer without gradient stays at 0.5 ± noise).
            let first = try XCTUnwrap(shares.first), last = shares.suffix(10).reduce(0, +) / 10
            XCTAssertEqual(first, 0.5, accuracy: 0.02)
            XCTAssertLessThan(abs(last - Double(lam)), abs(first - Double(lam)) - 0.05,
                              "λ = \(lam): own-image share \(shares.map { String(format: "%.3f", $0) })")
        }
    }

    // MARK: SAMix^P and the registry

    func testPretrainedMixerRoundTripAndFrozenReuse() throws {
        let (model, obj, batch) = try setup(try smallSAMix(initStd: 0.3), batch: 4)
        let path = "/tmp/samix-mixer-test-\(getpid()).bin"
        defer { unlink(path) }
        try obj.checkpoint(model: model).save(to: path)
        let loaded = try MixerCheckpoint.load(from: path)
        XCTAssertEqual(loaded.mixerConfig, obj.mixer?.config)
        XCTAssertEqual(loaded.maskLayer, 1)
        XCTAssertEqual(loaded.encoderArchitecture, "resnet20")
        let pre = try PretrainedMixerObjective(checkpoint: loaded)
        // A new classifier (another "dataset": 6 classes).
        let target = try ModelZoo.make("resnet20", numClasses: 6, seed: 8)
        let opt = try Trainer.sgd(model: target, objective: pre, lr: 0.05)
        XCTAssertEqual(opt.namedParameters.count, target.namedParameters().count, "the frozen Mixer must not be optimised")
        let perm = [1, 2, 3, 0]
        var rng = SplitMix64(seed: 0)
        let fromFile = try pre.masks(images: batch.images, lam: 0.3, permutation: perm, rng: &rng)
        let fromRun = try obj.masks(model: model, images: batch.images, lam: 0.3, permutation: perm)
        XCTAssertEqual(fromFile.scalars, fromRun.scalars)
        let mixer = try XCTUnwrap(pre.mixer), encoder = try XCTUnwrap(pre.encoder)
        XCTAssertTrue((mixer.parameters() + encoder.parameters()).allSatisfy { !$0.requiresGrad })
        let frozenBefore = (mixer.parameters() + encoder.parameters()).map(\.scalars)
        let targetBefore = target.parameters().map(\.scalars)
        let labels = [0, 5, 2, 3]
        let source = try ArrayBatchSource(images: batch.images, labels: labels, batchSize: 4, shuffle: false)
        let trainer = Trainer(model: target, objective: pre, optimizer: opt, seed: 1)
        try trainer.fit(source, epochs: 2)
        XCTAssertEqual((mixer.parameters() + encoder.parameters()).map(\.scalars), frozenBefore)
        XCTAssertNotEqual(target.parameters().map(\.scalars), targetBefore)
        XCTAssertTrue(trainer.history.allSatisfy { $0.trainLoss.isFinite })
        // A corrupt file is rejected.
        let bad = fopen(path, "wb"); fputs("SAMIXMX1", bad); fclose(bad)
        XCTAssertThrowsError(try MixerCheckpoint.load(from: path))
    }

    func testRegistryAndTrainerIntegration() throws {
        for name in ["automix", "samix"] {
            let obj = try XCTUnwrap(try ObjectiveRegistry.make(name) as? LearnedMixObjective)
            XCTAssertEqual(obj.name, name)
            XCTAssertEqual(obj.config.alpha, 2)
            XCTAssertEqual(obj.config.maskLayer, 2)
            XCTAssertEqual(obj.config.maskLossWeight, 0.1)
            XCTAssertEqual(obj.config.lambdaMargin, 0.08)
            XCTAssertEqual(obj.config.mixerLoss, name == "samix" ? .etaBalanced(eta: 0.5) : .mixupCrossEntropy)
            XCTAssertEqual(obj.config.mixer.upsampling, name == "samix" ? [.bilinear] : [.nearest])
            // One epoch on 16×16 images: ResNet-20 stage 3 is 4×4, upsampled ×4.
            let model = try ModelZoo.make("resnet20", numClasses: 4, seed: 2)
            let (x, y) = try data(count: 8, classes: 4, size: 16, seed: 5)
            let source = try ArrayBatchSource(images: x, labels: y, batchSize: 4, shuffle: true, seed: 1)
            let trainer = Trainer(model: model, objective: obj, optimizer: try Trainer.sgd(model: model, objective: obj, lr: 0.05),
                                  seed: 3)
            let history = try trainer.fit(source, epochs: 1, test: source)
            let record = try XCTUnwrap(history.first)
            XCTAssertNotNil(record.evaluation["online"])
            XCTAssertNotNil(record.evaluation["momentum"])
            for key in ["loss_gen", "loss_mask", "loss_cls", "loss_one", "mask_gap_mb", "momentum"] {
                XCTAssertTrue(record.metrics[key]?.isFinite ?? false, "\(name): metric \(key) = \(String(describing: record.metrics[key]))")
            }
            // The Mixer and head_mix_q are optimised; the momentum network is not.
            let names = Set(trainer.optimizer.namedParameters.map(\.0))
            XCTAssertTrue(names.contains { $0.hasPrefix("mixer.") })
            XCTAssertTrue(names.contains { $0.hasPrefix("head_mix.") })
            XCTAssertEqual(names.count, model.namedParameters().count + obj.extraModules.reduce(0) { $0 + $1.1.namedParameters().count })
        }
    }
}
