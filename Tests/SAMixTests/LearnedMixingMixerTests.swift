import XCTest
import SAMix
@testable import SAMixCore
@testable import SAMixOps
@testable import SAMixNN
@testable import SAMixData
@testable import SAMixMixing
@testable import SAMixTraining

/// The Mixer / Mix Block: shapes, attention, parameter counts, gradients, mask post-processing.
final class LearnedMixingMixerTests: XCTestCase {
    private func features(_ n: Int, _ c: Int, _ h: Int, seed: UInt64 = 3) throws -> Tensor {
        try TestData.uniform([n, c, h, h], seed: seed, lo: -1, hi: 2)
    }

    func testParameterCountsMatchOpenMixup() throws {
        // Spec §3.6: AutoMix CIFAR R-18 (C = 256) 33,153 parameters; SAMix 164,480.
        XCTAssertEqual(try Mixer(channels: 256, config: .automix()).parameterCount, 33_153)
        XCTAssertEqual(try Mixer(channels: 256, config: .samix()).parameterCount, 164_480)
        // The λ channel adds one input channel to the shared query and to the value conv.
        XCTAssertEqual(try Mixer(channels: 256, config: try .automix(lambdaChannel: true)).parameterCount, 33_153 + 128 + 1)
    }

    func testMaskShapeRangeAndAttentionRows() throws {
        var configs: [MixerConfig] = [try .automix(), try .automix(lambdaChannel: true), try .samix(), try .samix(lamMulK: [-1], dropout: 0.1)]
        configs.append(try MixerConfig(lambdaEncoding: .multiply(factor: 1, residual: false, rescaleK: [0.25, 1]),
                                       attention: .concatSeparate, value: .linear, valueInputConcat: true,
                                       upsampling: [.nearest, .bilinear], initStd: 0.3))
        for config in configs {
            let mixer = try Mixer(channels: 6, config: config, seed: 5)
            var rng = SplitMix64(seed: 1)
            let out = try mixer(features: try features(4, 6, 4), lam: 0.3, permutation: [1, 3, 0, 2],
                                imageHeight: 16, imageWidth: 16, rng: &rng)
            XCTAssertEqual(out.partnerMask.shape, [4, 1, 16, 16])
            XCTAssertEqual(out.attention.shape, [4, 16, 16])
            XCTAssertEqual(out.logits.shape, [4, 1, 4, 4])
            XCTAssertTrue(out.partnerMask.scalars.allSatisfy { $0 > 0 && $0 < 1 })
            for row in 0..<(4 * 16) {
                var s: Float = 0
                for j in 0..<16 { s += out.attention.data[row * 16 + j] }
                XCTAssertEqual(s, 1, accuracy: 1e-5, "\(config) row \(row)")
            }
        }
    }

    func testLambdaEncodingValues() throws {
        // With the plain multiply encoding and k = 0.25, the encoded λ is R_0.25(λ).
        let mixer = try Mixer(channels: 4, config: .samix(), seed: 1)
        var rng = SplitMix64(seed: 1)
        let out = try mixer(features: try features(2, 4, 2), lam: 0.1, permutation: [1, 0],
                            imageHeight: 8, imageWidth: 8, rng: &rng)
        XCTAssertEqual(out.encodedLambda, 0.18229, accuracy: 1e-4)
        XCTAssertEqual(out.upsampling, .bilinear)
        let auto = try Mixer(channels: 4, config: .automix(), seed: 1)
        let o2 = try auto(features: try features(2, 4, 2), lam: 0.1, permutation: [1, 0], imageHeight: 8, imageWidth: 8, rng: &rng)
        XCTAssertEqual(o2.encodedLambda, 0.1)
        XCTAssertEqual(o2.upsampling, .nearest)
        // AutoMix CIFAR has no λ input: the mask does not depend on λ; SAMix's does.
        let o3 = try auto(features: try features(2, 4, 2), lam: 0.9, permutation: [1, 0], imageHeight: 8, imageWidth: 8, rng: &rng)
        XCTAssertEqual(o2.partnerMask.scalars, o3.partnerMask.scalars)
        let big = try Mixer(channels: 4, config: MixerConfig(lambdaEncoding: LambdaEncoding.samixCIFAR, attention: .concatSeparate,
                                                             value: .convNeck(dropout: 0), upsampling: [.bilinear], initStd: 0.5), seed: 2)
        let s1 = try big(features: try features(2, 4, 2), lam: 0.1, permutation: [1, 0], imageHeight: 8, imageWidth: 8, rng: &rng)
        let s2 = try big(features: try features(2, 4, 2), lam: 0.9, permutation: [1, 0], imageHeight: 8, imageWidth: 8, rng: &rng)
        XCTAssertNotEqual(s1.partnerMask.scalars, s2.partnerMask.scalars)
    }

    func testMixerGradientsToEveryParameter() throws {
        // Large init so the mask is far from constant; finite differences through attention,
        // the ConvNeck (BN in training mode, ELU), bilinear upsampling and the sigmoid.
        let samix = try MixerConfig(lambdaEncoding: .samixCIFAR, attention: .concatSeparate, value: .convNeck(dropout: 0),
                                    upsampling: [.bilinear], initStd: 0.5)
        let automix = try MixerConfig(lambdaEncoding: .concat(valueOnly: false), attention: .crossShared, value: .linear,
                                      upsampling: [.nearest], initStd: 0.5)
        for config in [samix, automix] {
            let mixer = try Mixer(channels: 4, config: config, seed: 11)
            let f = try features(3, 4, 2, seed: 12)
            let params = mixer.parameters()
            assertGradients(params, checker: GradCheck(eps: 1e-3, rtol: 2e-2, atol: 2e-4)) { _ in
                var rng = SplitMix64(seed: 4)
                return try mixer(features: f, lam: 0.35, permutation: [2, 0, 1], imageHeight: 4, imageWidth: 4,
                                 rng: &rng).partnerMask
            }
        }
    }

    func testMaskAdjustMakesPerSampleMeanLambda() throws {
        var rng = SplitMix64(seed: 21)
        // Sample 0: partner share small (own mean > λ); sample 1: partner share large (own mean < λ).
        let values: [Float] = (0..<16).map { _ in 0.1 + 0.2 * rng.uniform() } + (0..<16).map { _ in 0.7 + 0.25 * rng.uniform() }
        for lam: Float in [0.2, 0.5, 0.8] {
            let m = try Tensor(values, shape: [2, 1, 4, 4])
            try MaskAdjust.adjustMean(partnerMask: m, lam: lam)
            for i in 0..<2 {
                let own = (0..<16).reduce(0.0) { $0 + Double(1 - m.data[i * 16 + $1]) } / 16
                XCTAssertEqual(own, Double(lam), accuracy: 1e-5)
            }
            XCTAssertTrue(m.scalars.allSatisfy { $0 >= 0 && $0 <= 1 })
        }
        // Adjusting keeps the spatial ordering of the mask (a monotone rescale).
        let m = try Tensor(values, shape: [2, 1, 4, 4])
        try MaskAdjust.adjustMean(partnerMask: m, lam: 0.5)
        XCTAssertEqual((0..<16).max { values[$0] < values[$1] }, (0..<16).max { m.data[$0] < m.data[$1] })
    }

    func testLambdaMargin() throws {
        let m = try Tensor(repeating: 0.3, shape: [2, 1, 2, 2])
        XCTAssertFalse(MaskAdjust.applyLambdaMargin(partnerMask: m, lam: 0.5, margin: 0.08))
        XCTAssertEqual(m.scalars, [Float](repeating: 0.3, count: 8))
        XCTAssertTrue(MaskAdjust.applyLambdaMargin(partnerMask: m, lam: 0.05, margin: 0.08))
        XCTAssertEqual(m.scalars, [Float](repeating: 0.95, count: 8))
        XCTAssertTrue(MaskAdjust.applyLambdaMargin(partnerMask: m, lam: 0.93, margin: 0.08))
        XCTAssertEqual(m.scalars[0], 1 - 0.93, accuracy: 1e-7)
    }

    func testConfigValidation() {
        XCTAssertThrowsError(try MixerConfig(lambdaEncoding: .concat(valueOnly: false), attention: .concatSeparate,
                                             value: .linear, upsampling: [.nearest]))
        XCTAssertThrowsError(try MixerConfig(lambdaEncoding: .none, attention: .crossShared, value: .linear, upsampling: []))
        // The image size must be a multiple of the feature map.
        var rng = SplitMix64(seed: 0)
        do {
            _ = try Mixer(channels: 4, config: .automix())(features: Tensor(zeros: [2, 4, 3, 3]), lam: 0.5,
                                                           permutation: [1, 0], imageHeight: 8, imageWidth: 8, rng: &rng)
            XCTFail("8×8 images over 3×3 features were accepted")
        } catch {}
    }
}
