import XCTest
import SAMix
@testable import SAMixCore
@testable import SAMixOps
@testable import SAMixNN
@testable import SAMixData
@testable import SAMixMixing
@testable import SAMixTraining

/// Cross-view mixing (docs/method.md §5.2): which pixels and which positive keys each mixed sample gets, the
/// single-permutation Mixer call, and where the SAMix losses send their gradients.
final class SSLMixingTests: XCTestCase {
    /// Image i of view v is filled with the id 10·i + v; key of (i, v) is the one-hot vector e_{2i+v}.
    /// With a binary mask, every pixel of mixed sample i must come from (i, q) where M₁ = 0 and from
    /// (π(i), k) where M₁ = 1, and the positive of each part must be the key of the same image in
    /// the *other* view: (i, k) for the λ part and (π(i), q) for the 1 − λ part.
    func testMixedSamplesGetTheOtherViewKeysOfTheirSources() throws {
        let n = 5, h = 4, w = 4
        let perm = [2, 0, 4, 1, 3]
        var q = [Float](), k = [Float]()
        for i in 0..<n {
            q += [Float](repeating: Float(10 * i), count: 3 * h * w)
            k += [Float](repeating: Float(10 * i + 1), count: 3 * h * w)
        }
        let xq = try Tensor(q, shape: [n, 3, h, w]), xk = try Tensor(k, shape: [n, 3, h, w])
        func keys(view v: Int) throws -> Tensor {
            var data = [Float](repeating: 0, count: n * 2 * n)
            for i in 0..<n { data[i * 2 * n + 2 * i + v] = 1 }
            return try Tensor(data, shape: [n, 2 * n])
        }
        let kq = try keys(view: 0), kk = try keys(view: 1)
        // Binary mask: left half from the partner.
        var m = [Float](repeating: 0, count: n * h * w)
        for i in 0..<n { for y in 0..<h { for x in 0..<(w / 2) { m[i * h * w + y * w + x] = 1 } } }
        let mask = try Tensor(m, shape: [n, 1, h, w])
        let mixed = try SSLMixing.crossViewMix(viewQ: xq, viewK: xk, permutation: perm, partnerMask: mask)
        let pos = try SSLMixing.crossViewPositives(keysQ: kq, keysK: kk, permutation: perm)
        func keyID(_ t: Tensor, _ i: Int) -> Int {
            (0..<(2 * n)).first { t.data[i * 2 * n + $0] == 1 }!
        }
        for i in 0..<n {
            let own = mixed.data[i * 3 * h * w + 0 * w + (w - 1)]   // right half: M₁ = 0
            let partner = mixed.data[i * 3 * h * w + 0]             // left half: M₁ = 1
            let ownImage = Int(own) / 10, ownView = Int(own) % 10
            let partnerImage = Int(partner) / 10, partnerView = Int(partner) % 10
            XCTAssertEqual(ownImage, i); XCTAssertEqual(ownView, 0)
            XCTAssertEqual(partnerImage, perm[i]); XCTAssertEqual(partnerView, 1)
            // Positive A: same image as the λ part, other view.
            XCTAssertEqual(keyID(pos.a, i), 2 * ownImage + (1 - ownView))
            // Positive B: same image as the 1 − λ part, other view.
            XCTAssertEqual(keyID(pos.b, i), 2 * partnerImage + (1 - partnerView))
        }
        // Mixup (constant mask) uses the same sources.
        let mix = try SSLMixing.crossViewMixup(viewQ: xq, viewK: xk, permutation: perm, lam: 0.25)
        for i in 0..<n {
            XCTAssertEqual(mix.data[i * 3 * h * w], 0.25 * Float(10 * i) + 0.75 * Float(10 * perm[i] + 1), accuracy: 1e-4)
        }
    }

    private func mixer(channels: Int, seed: UInt64 = 5) throws -> Mixer {
        let m = try Mixer(channels: channels, config: try .samix(), seed: seed)
        // A larger init than the reference's 0.01 so masks are far from constant.
        var rng = SplitMix64(seed: seed)
        for p in m.parameters() where p.rank > 1 { Init.normal(p, std: 0.5, rng: &rng) }
        return m
    }

    /// The stacked 2N call equals the Mixer's own call whenever both views have the same features,
    /// i.e. pair i uses Fk[π(i)] exactly once (no double shuffle, docs/method.md §5.6).
    func testCrossViewMaskUsesASinglePermutation() throws {
        let n = 4, c = 6
        let mx = try mixer(channels: c)
        let f = try TestData.uniform([n, c, 2, 2], seed: 21)
        let perm = [1, 3, 0, 2]
        var r1 = SplitMix64(seed: 1), r2 = SplitMix64(seed: 1)
        let direct = try GradMode.withDisabled {
            try mx(features: f, lam: 0.3, permutation: perm, imageHeight: 8, imageWidth: 8, rng: &r1).partnerMask
        }
        let cross = try GradMode.withDisabled {
            try SSLMixing.crossViewMask(mixer: mx, featuresQ: f, featuresK: f, lam: 0.3, permutation: perm,
                                        imageHeight: 8, imageWidth: 8, rng: &r2)
        }
        XCTAssertEqual(cross.shape, [n, 1, 8, 8])
        var maxDiff: Float = 0
        for i in 0..<direct.count { maxDiff = max(maxDiff, abs(direct.data[i] - cross.data[i])) }
        XCTAssertLessThan(maxDiff, 1e-5)
        // A double shuffle (Fk[π][π]) would give a different mask.
        let twice = perm.map { perm[$0] }
        var r3 = SplitMix64(seed: 1)
        let leaky = try GradMode.withDisabled {
            try mx(features: f, lam: 0.3, permutation: twice, imageHeight: 8, imageWidth: 8, rng: &r3).partnerMask
        }
        var leakDiff: Float = 0
        for i in 0..<leaky.count { leakDiff = max(leakDiff, abs(leaky.data[i] - cross.data[i])) }
        XCTAssertGreaterThan(leakDiff, 1e-3)
        // Pair i's mask depends on Fq only through Fq[i].
        let fq2 = try f.copy()
        for j in 0..<(c * 4) { fq2.data[2 * c * 4 + j] += 1 }   // change image 2 of view q
        var r4 = SplitMix64(seed: 1)
        let cross2 = try GradMode.withDisabled {
            try SSLMixing.crossViewMask(mixer: mx, featuresQ: fq2, featuresK: f, lam: 0.3, permutation: perm,
                                        imageHeight: 8, imageWidth: 8, rng: &r4)
        }
        for i in 0..<n {
            var d: Float = 0
            for p in 0..<64 { d = max(d, abs(cross.data[i * 64 + p] - cross2.data[i * 64 + p])) }
            if i == 2 { XCTAssertGreaterThan(d, 1e-4) } else { XCTAssertLessThan(d, 1e-6) }
        }
    }

    /// The stacked call's mask gradient matches finite differences (the discarded half and the
    /// duplicated value-BN rows must not distort it).
    func testCrossViewMaskGradientWrtFeatures() throws {
        let mx = try mixer(channels: 4, seed: 8)
        let fq = try TestData.uniform([3, 4, 2, 2], seed: 31), fk = try TestData.uniform([3, 4, 2, 2], seed: 32)
        assertGradients([fq, fk], checker: GradCheck(eps: 1e-2, rtol: 3e-2, atol: 3e-3)) { t in
            var r = SplitMix64(seed: 2)
            return try SSLMixing.crossViewMask(mixer: mx, featuresQ: t[0], featuresK: t[1], lam: 0.6,
                                               permutation: [2, 0, 1], imageHeight: 4, imageWidth: 4, rng: &r)
        }
    }

    /// The SSL Mixer saved as a `MixerCheckpoint` is the Mixer fed by the *key* encoder: a frozen
    /// SAMix^P objective built from the file makes exactly the masks the MoCo model's Mixer makes on
    /// key-encoder features. Models without a Mixer refuse to save one.
    func testMixerCheckpointReproducesTheMasksOfTheKeyEncoderAndMixer() throws {
        for variant in SAMixSSLConfig.Variant.allCases {
            let m = try samixModel(variant)
            // Make the key encoder differ from the query encoder and the Mixer from its init, so the
            // comparison fails if the wrong encoder or stale weights are saved.
            for (i, p) in (m.key.backbone.parameters() + m.mixer!.parameters()).enumerated() {
                p.data[0] += 0.3 * Float(1 + i % 3)
            }
            let path = "/tmp/samix-ssl-mixer-\(variant.rawValue)-\(getpid()).bin"
            defer { unlink(path) }
            try m.mixerCheckpoint().save(to: path)
            let p = try PretrainedMixerObjective(path: path)
            try p.prepare(inChannels: 3)
            let x = try TestData.uniform([6, 3, 8, 8], seed: 70), perm = [3, 0, 5, 1, 2, 4]
            var r1 = SplitMix64(seed: 9), r2 = SplitMix64(seed: 9)
            let saved = try p.masks(images: x, lam: 0.3, permutation: perm, rng: &r1)
            m.key.backbone.train(); m.mixer!.train()
            let direct = try GradMode.withDisabled { () -> Tensor in
                let f = try LearnedMixing.stageFeatures(m.key.backbone, x, stage: 1)
                return try m.mixer!(features: f, lam: 0.3, permutation: perm, imageHeight: 8, imageWidth: 8,
                                    rng: &r2).partnerMask
            }
            XCTAssertEqual(saved.shape, [6, 1, 8, 8])
            XCTAssertEqual(saved.scalars, direct.scalars, "\(variant)")
            let q = try GradMode.withDisabled { () -> Tensor in
                var r3 = SplitMix64(seed: 9)
                let f = try LearnedMixing.stageFeatures(m.query.backbone, x, stage: 1)
                return try m.mixer!(features: f, lam: 0.3, permutation: perm, imageHeight: 8, imageWidth: 8,
                                    rng: &r3).partnerMask
            }
            XCTAssertNotEqual(saved.scalars, q.scalars, "\(variant): the query encoder's masks")
        }
        let cfg = try MoCoConfig(architecture: "resnet20", neckHidden: 16, embeddingDim: 8, queueSize: 16, seed: 7)
        for mix in [SSLMix.none, .mixup(alpha: 1)] {
            XCTAssertThrowsError(try MoCo(config: cfg, mix: mix).mixerCheckpoint()) { e in
                guard case SAMixError.invalidState(let msg) = e else { return XCTFail("\(e)") }
                XCTAssertTrue(msg.contains("no Mixer"), msg)
            }
        }
    }

    private func samixModel(_ variant: SAMixSSLConfig.Variant) throws -> MoCo {
        let s = try SAMixSSLConfig(variant: variant, maskLayer: 1, clusters: 3)
        let cfg = try MoCoConfig(architecture: "resnet20", neckHidden: 16, embeddingDim: 8, queueSize: 16, seed: 7)
        let m = try MoCo(config: cfg, mix: .samix(s))
        if variant == .cluster { try m.setPseudoLabels([0, 1, 2, 0, 1, 2]) }
        return m
    }

    private func grads(_ mods: [Module]) -> (some: Bool, all: Bool) {
        let ps = mods.flatMap { $0.parameters() }
        let nonzero = ps.map { p in p.grad.map { g in (0..<g.count).contains { g.data[$0] != 0 } } ?? false }
        return (nonzero.contains(true), !nonzero.contains(false))
    }

    private func clearGrads(_ m: MoCo) {
        m.query.zeroGrad(); m.key.zeroGrad(); m.mixer?.zeroGrad(); m.clusterHead?.zeroGrad()
    }

    /// L_mb and L_mask reach only the Mixer (through the frozen momentum encoder); L_bb and L_moco
    /// reach only the query encoder; SAMix-C's head loss reaches head_clst and — through its mixup
    /// term on f_k(x_mb), as the reference — the Mixer, never the query encoder.
    func testGradientFlowOfTheSAMixTerms() throws {
        for variant in SAMixSSLConfig.Variant.allCases {
            let m = try samixModel(variant)
            XCTAssertTrue(m.key.parameters().allSatisfy { !$0.requiresGrad })
            let xq = try TestData.uniform([6, 3, 8, 8], seed: 40), xk = try TestData.uniform([6, 3, 8, 8], seed: 41)
            let idx = Array(0..<6)
            var checks: [(String, [Module], [Module])] = [
                ("loss_mb", [m.mixer!], [m.query]),
                ("loss_mask", [m.mixer!], [m.query]),
                ("loss_bb", [m.query], [m.mixer!]),
                ("loss_moco", [m.query], [m.mixer!]),
            ]
            if variant == .cluster { checks.append(("loss_clst", [m.clusterHead!, m.mixer!], [m.query])) }
            for (term, reach, avoid) in checks {
                var rng = SplitMix64(seed: 3)
                let out = try m.step(viewQ: xq, viewK: xk, indices: idx, rng: &rng)
                clearGrads(m)
                let loss = try XCTUnwrap(out.terms[term], "\(variant) \(term)")
                try loss.backward()
                XCTAssertTrue(grads(reach).some, "\(variant): \(term) must reach \(reach.map { type(of: $0) })")
                XCTAssertFalse(grads(avoid).some, "\(variant): \(term) must not reach \(avoid.map { type(of: $0) })")
                XCTAssertTrue(m.key.parameters().allSatisfy { $0.grad == nil }, "\(variant): \(term) touched the key encoder")
                if let f = m.frozenClusterHead { XCTAssertTrue(f.parameters().allSatisfy { $0.grad == nil }) }
                if term == "loss_mb" {
                    // The attention path is connected too (not only the value branch).
                    XCTAssertTrue(grads([m.mixer!.attention.query]).some, "\(variant): no gradient to the Mixer's attention")
                    XCTAssertTrue(grads([m.mixer!.value]).some, "\(variant): no gradient to the Mixer's value network")
                }
                if variant == .cluster && term == "loss_mb" {
                    XCTAssertFalse(grads([m.clusterHead!]).some, "the Mixer objective uses the frozen head copy")
                }
            }
        }
    }

    /// The Mixer's only route to L_mb is through the momentum encoder's input: when the key neck's
    /// output no longer depends on its input (last layer zeroed), the Mixer gets exactly no gradient.
    func testMixerGradientNeedsTheKeyEncoderPath() throws {
        let m = try samixModel(.instance)
        // Zero the key neck's last layer: z' no longer depends on x_mb.
        m.key.neck.fc2.weight.fill(0)
        m.query.neck.fc2.weight.fill(0)
        m.key.neck.fc2.bias?.fill(0.1)
        m.query.neck.fc2.bias?.fill(0.1)
        let xq = try TestData.uniform([6, 3, 8, 8], seed: 50), xk = try TestData.uniform([6, 3, 8, 8], seed: 51)
        var rng = SplitMix64(seed: 4)
        let out = try m.step(viewQ: xq, viewK: xk, rng: &rng)
        try out.terms["loss_mb"]!.backward()
        XCTAssertFalse(grads([m.mixer!]).some)
    }

    func testPositiveExtensionShapesAndModes() throws {
        let kq = try GradMode.withDisabled { try TestData.uniform([4, 5], seed: 60).l2NormalizedRows() }
        let kk = try GradMode.withDisabled { try TestData.uniform([4, 5], seed: 61).l2NormalizedRows() }
        let perm = [1, 2, 3, 0]
        var rng = SplitMix64(seed: 1)
        let off = try SSLMixing.extendedPositives(keysQ: kq, keysK: kk, permutation: perm, mode: .off, rng: &rng)
        XCTAssertEqual(off.a.scalars, kk.scalars)
        XCTAssertEqual(off.b.scalars, try kq.gatherRows(perm).scalars)
        for mode in [SSLMixing.PositiveExtension.interpolate, .extrapolate, .both] {
            let e = try SSLMixing.extendedPositives(keysQ: kq, keysK: kk, permutation: perm, mode: mode, rng: &rng)
            XCTAssertEqual(e.a.shape, [4, 5]); XCTAssertEqual(e.b.shape, [4, 5])
            for i in 0..<4 {
                var s: Float = 0
                for j in 0..<5 { s += e.a.data[i * 5 + j] * e.a.data[i * 5 + j] }
                XCTAssertEqual(s, 1, accuracy: 1e-5)
            }
            if mode == .interpolate {
                // Interpolation stays between the two keys coordinate-wise before normalisation:
                // the extended key is closer to both views than they are to each other's negation.
                for i in 0..<4 {
                    var dq: Float = 0, dk: Float = 0
                    for j in 0..<5 { dq += e.a.data[i * 5 + j] * kq.data[i * 5 + j]; dk += e.a.data[i * 5 + j] * kk.data[i * 5 + j] }
                    var qk: Float = 0
                    for j in 0..<5 { qk += kq.data[i * 5 + j] * kk.data[i * 5 + j] }
                    XCTAssertGreaterThanOrEqual(min(dq, dk), qk - 1e-4)
                }
            }
        }
    }

    func testMaskAdjustAutoOnlyTouchesFarSamplesAndLabelModeUsesConstantMasks() throws {
        let n = 3, p = 4
        // Own shares: 0.9 (far from λ = 0.5), 0.55 (within margin), 0.2 (far).
        let partner: [[Float]] = [[0.1, 0.1, 0.1, 0.1], [0.45, 0.45, 0.45, 0.45], [0.7, 0.9, 0.8, 0.8]]
        let m = try Tensor(partner.flatMap { $0 }, shape: [n, 1, 2, 2])
        var rng = SplitMix64(seed: 0)
        let changed = try SSLMixing.adjust(partnerMask: m, lam: 0.5, mode: .auto(meanMargin: 0.1), permutation: [1, 2, 0], rng: &rng)
        XCTAssertEqual(changed, 2)
        for i in 0..<n {
            let own = 1 - (0..<p).reduce(Float(0)) { $0 + m.data[i * p + $1] } / Float(p)
            if i == 1 { XCTAssertEqual(own, 0.55, accuracy: 1e-6) } else { XCTAssertEqual(own, 0.5, accuracy: 1e-5) }
        }
        let m2 = try Tensor(partner.flatMap { $0 }, shape: [n, 1, 2, 2])
        let changed2 = try SSLMixing.adjust(partnerMask: m2, lam: 0.35, mode: .autoLabel(meanMargin: 0.1),
                                            permutation: [1, 2, 0], labels: [4, 4, 7], rng: &rng)
        XCTAssertEqual(changed2, 3)
        for k in 0..<p { XCTAssertEqual(m2.data[k], 0.65, accuracy: 1e-6) }   // pair (0, 1) shares label 4
    }
}
