import XCTest
import SAMix
@testable import SAMixCore
@testable import SAMixOps
@testable import SAMixNN
@testable import SAMixData
@testable import SAMixMixing
@testable import SAMixTraining

final class MixingTimmTests: XCTestCase {
    func cfg(_ mode: MixupConfig.Mode, mixup: Double = 1, cutmix: Double = 1, minmax: (Double, Double)? = nil,
             prob: Double = 1, switchProb: Double = 0.5, correct: Bool = true) throws -> TimmMixup {
        try TimmMixup(MixupConfig(numClasses: 10, mixupAlpha: mixup, cutmixAlpha: cutmix, cutmixMinMax: minmax, prob: prob,
                                  switchProb: switchProb, mode: mode, correctLam: correct, labelSmoothing: 0.1))
    }

    func testTimmProperties() throws {
        for mode in [MixupConfig.Mode.batch, .pair, .elem] {
            for batch in [1, 2, 7, 16] {
                try checkMixPolicy(try cfg(mode), batch: batch, seed: UInt64(batch) + 80)
                try checkMixPolicy(try cfg(mode, cutmix: 0), batch: batch, seed: UInt64(batch) + 81)
                try checkMixPolicy(try cfg(mode, mixup: 0), batch: batch, seed: UInt64(batch) + 82)
                try checkMixPolicy(try cfg(mode, minmax: (0.2, 0.9), prob: 0.7, correct: false), batch: batch, seed: 83)
            }
            try checkSeedsDiffer(try cfg(mode))
        }
    }

    func testFlipPairingAndModes() throws {
        let s = try ImageBatchShape(batch: 8, channels: 1, height: 8, width: 8)
        var rng = SplitMix64(seed: 4)
        var x = MixRef.images(s.elementCount, seed: 1)
        // batch: one op for everyone
        var r = try cfg(.batch).mix(&x, shape: s, rng: &rng)
        XCTAssertEqual(r.partner, [7, 6, 5, 4, 3, 2, 1, 0])
        XCTAssertTrue(r.ops.allSatisfy { $0 == r.ops[0] })
        // pair: i and B−1−i share op and λ; pairs differ from each other
        r = try cfg(.pair).mix(&x, shape: s, rng: &rng)
        for i in 0..<4 { XCTAssertEqual(r.ops[i], r.ops[7 - i]); XCTAssertEqual(r.lambda[i], r.lambda[7 - i]) }
        XCTAssertGreaterThan(Set(r.lambda).count, 1)
        // elem: per-sample λ
        r = try cfg(.elem).mix(&x, shape: s, rng: &rng)
        XCTAssertGreaterThan(Set(r.lambda).count, 4)
        // switch_prob = 1 → all CutMix; = 0 → all Mixup
        r = try cfg(.elem, switchProb: 1).mix(&x, shape: s, rng: &rng)
        XCTAssertTrue(r.ops.allSatisfy { if case .blend = $0 { return false }; return true })
        r = try cfg(.elem, switchProb: 0).mix(&x, shape: s, rng: &rng)
        XCTAssertTrue(r.ops.allSatisfy { if case .box = $0 { return false }; return true })
    }

    func testOddBatchMiddleSampleUnchanged() throws {
        let s = try ImageBatchShape(batch: 5, channels: 2, height: 4, width: 4)
        for mode in [MixupConfig.Mode.batch, .pair, .elem] {
            let x = MixRef.images(s.elementCount, seed: 3)
            var y = x
            var rng = SplitMix64(seed: 9)
            let t = try cfg(mode)(&y, shape: s, labels: [0, 1, 2, 3, 4], rng: &rng)
            XCTAssertEqual(Array(y[64..<96]), Array(x[64..<96]), "mode \(mode)")
            // target of the middle sample: its own smoothed one-hot
            for k in 0..<10 { XCTAssertEqual(t.targets[20 + k], k == 2 ? 0.91 : 0.01, accuracy: 1e-6) }
            if mode != .batch { XCTAssertEqual(t.result.lambda[2], 1) }
        }
        // batch size 1: unchanged
        let s1 = try ImageBatchShape(batch: 1, channels: 1, height: 3, width: 3)
        var one = MixRef.images(9, seed: 1)
        let o0 = one
        var rng = SplitMix64(seed: 1)
        _ = try cfg(.elem)(&one, shape: s1, labels: [4], rng: &rng)
        XCTAssertEqual(one, o0)
    }

    func testProbZeroAndDisabled() throws {
        let s = try ImageBatchShape(batch: 4, channels: 1, height: 4, width: 4)
        for mode in [MixupConfig.Mode.batch, .pair, .elem] {
            var x = MixRef.images(s.elementCount, seed: 7)
            let x0 = x
            var rng = SplitMix64(seed: 2)
            let (t, r) = try cfg(mode, prob: 0)(&x, shape: s, labels: [1, 2, 3, 4], rng: &rng)
            XCTAssertEqual(x, x0)
            XCTAssertEqual(r.lambda, [1, 1, 1, 1])
            XCTAssertEqual(t, MixRef.targets(labels: [1, 2, 3, 4], K: 10, eps: 0.1, lam: [1, 1, 1, 1], partner: [3, 2, 1, 0]))
            var m = try cfg(mode)
            m.enabled = false
            let r2 = try m.mix(&x, shape: s, rng: &rng)
            XCTAssertEqual(x, x0)
            XCTAssertEqual(r2.ops, [.keep, .keep, .keep, .keep])
        }
    }

    func testCorrectLamOffKeepsSampledLambdaForLabels() throws {
        let s = try ImageBatchShape(batch: 2, channels: 1, height: 16, width: 16)
        var rng = SplitMix64(seed: 31)
        var sawDifference = false
        for _ in 0..<50 {
            var x = [Float](repeating: 0, count: s.elementCount)
            let r = try cfg(.batch, mixup: 0, correct: false).mix(&x, shape: s, rng: &rng)
            if case .box(let b) = r.ops[0] {
                XCTAssertEqual(r.lambda[0], Float(1 - Double(b.area) / 256), accuracy: 1e-7)
                if abs(r.labelLambda[0] - r.lambda[0]) > 1e-3 { sawDifference = true }
            }
        }
        XCTAssertTrue(sawDifference)
    }

    func testElemLambdaIsBetaDistributed() throws {
        let s = try ImageBatchShape(batch: 2000, channels: 1, height: 1, width: 1)
        var x = [Float](repeating: 0, count: 2000)
        var rng = SplitMix64(seed: 5)
        let r = try cfg(.elem, mixup: 0.4, cutmix: 0).mix(&x, shape: s, rng: &rng)
        let d = MixRef.ksStatistic(r.lambda.map(Double.init), cdf: { MixRef.betaCDF($0, 0.4, 0.4) })
        XCTAssertLessThan(d, MixRef.ksCritical(2000))
    }

    func testConfigValidation() {
        XCTAssertThrowsError(try MixupConfig(numClasses: 0))
        XCTAssertThrowsError(try MixupConfig(numClasses: 10, mixupAlpha: 0, cutmixAlpha: 0))
        XCTAssertThrowsError(try MixupConfig(numClasses: 10, mixupAlpha: -1))
        XCTAssertThrowsError(try MixupConfig(numClasses: 10, cutmixMinMax: (0.8, 0.2)))
        XCTAssertThrowsError(try MixupConfig(numClasses: 10, prob: 1.5))
        XCTAssertThrowsError(try MixupConfig(numClasses: 10, switchProb: -0.1))
        XCTAssertThrowsError(try MixupConfig(numClasses: 10, labelSmoothing: 1))
        // minmax forces cutmix α = 1 (timm), even when cutmix_alpha = 0 was given
        XCTAssertEqual(try MixupConfig(numClasses: 10, mixupAlpha: 0, cutmixAlpha: 0, cutmixMinMax: (0.2, 0.8)).cutmixAlpha, 1)
        var x: [Float] = [1, 2]
        var rng = SplitMix64(seed: 1)
        XCTAssertThrowsError(try cfg(.batch)(&x, shape: try ImageBatchShape(batch: 2, channels: 1, height: 1, width: 1),
                                             labels: [0], rng: &rng))
        XCTAssertThrowsError(try cfg(.batch)(&x, shape: try ImageBatchShape(batch: 2, channels: 1, height: 1, width: 1),
                                             labels: [0, 10], rng: &rng))
    }
}
