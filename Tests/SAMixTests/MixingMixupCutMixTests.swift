import XCTest
import SAMix
@testable import SAMixCore
@testable import SAMixOps
@testable import SAMixNN
@testable import SAMixData
@testable import SAMixMixing
@testable import SAMixTraining

final class MixingMixupCutMixTests: XCTestCase {
    func testMixupProperties() throws {
        for batch in [1, 2, 7, 16] {
            try checkMixPolicy(try Mixup(alpha: 1), batch: batch, seed: UInt64(batch))
            try checkMixPolicy(try Mixup(alpha: 0.4, perSample: true), batch: batch, seed: UInt64(batch) + 50)
            try checkMixPolicy(try Mixup(alpha: 1, partner: .flip), batch: batch, seed: UInt64(batch) + 99)
        }
        try checkSeedsDiffer(try Mixup())
    }

    func testMixupFixedLambdaEndpoints() throws {
        let s = try ImageBatchShape(batch: 4, channels: 2, height: 3, width: 5)
        let x = MixRef.images(s.elementCount, seed: 9)
        var y = x
        var rng = SplitMix64(seed: 1)
        var r = try Mixup().mix(&y, shape: s, lambda: 1, rng: &rng)
        XCTAssertEqual(y, x)                        // λ = 1: unchanged, exactly
        XCTAssertEqual(r.lambda, [1, 1, 1, 1])
        y = x
        r = try Mixup().mix(&y, shape: s, lambda: 0, rng: &rng)
        let n = s.imageElements
        for i in 0..<4 { XCTAssertEqual(Array(y[(i * n)..<((i + 1) * n)]), Array(x[(r.partner[i] * n)..<((r.partner[i] + 1) * n)])) }
        let t = try r.softTargets(labels: [0, 1, 2, 3], numClasses: 4)
        for i in 0..<4 { XCTAssertEqual(t[i * 4 + r.partner[i]], 1) }
    }

    func testMixupLambdaIsBetaDistributed() throws {
        let s = try ImageBatchShape(batch: 1, channels: 1, height: 1, width: 1)
        var x: [Float] = [0]
        for alpha in [0.2, 1.0, 2.0] {
            var rng = SplitMix64(seed: 77)
            var lams: [Double] = []
            let m = try Mixup(alpha: alpha)
            for _ in 0..<2000 { lams.append(Double(try m.mix(&x, shape: s, rng: &rng).lambda[0])) }
            let d = MixRef.ksStatistic(lams, cdf: { MixRef.betaCDF($0, alpha, alpha) })
            XCTAssertLessThan(d, MixRef.ksCritical(2000), "α = \(alpha)")
            // and it is not Beta of another α
            let wrong = MixRef.ksStatistic(lams, cdf: { MixRef.betaCDF($0, alpha * 3, alpha * 3) })
            XCTAssertGreaterThan(wrong, MixRef.ksCritical(2000))
        }
    }

    func testCutMixProperties() throws {
        for batch in [1, 2, 7, 16] {
            try checkMixPolicy(try CutMix(alpha: 1), batch: batch, seed: UInt64(batch) + 7)
            try checkMixPolicy(try CutMix(alpha: 0.2, perSample: true), batch: batch, seed: UInt64(batch) + 8)
            try checkMixPolicy(try CutMix(alpha: 1, minMax: (0.2, 0.8), partner: .flip, perSample: true),
                               batch: batch, height: 10, width: 12, seed: UInt64(batch) + 9)
            try checkMixPolicy(try CutMix(alpha: 1, correctLambda: false, partner: .derangement), batch: batch, seed: 3)
        }
        try checkSeedsDiffer(try CutMix(alpha: 1))
    }

    func testCutMixBoxRuleAndClipping() {
        // Interior box: side 2·⌊cut/2⌋.
        XCTAssertEqual(MixBox.centered(cy: 16, cx: 16, cutH: 11, cutW: 11, height: 32, width: 32),
                       MixBox(y0: 11, y1: 21, x0: 11, x1: 21))
        // Partially outside top-left and bottom-right: clipped to the image.
        let b1 = MixBox.centered(cy: 2, cx: 1, cutH: 10, cutW: 10, height: 32, width: 32)
        XCTAssertEqual(b1, MixBox(y0: 0, y1: 7, x0: 0, x1: 6))
        XCTAssertEqual(b1.area, 42)
        let b2 = MixBox.centered(cy: 31, cx: 30, cutH: 20, cutW: 8, height: 32, width: 32)
        XCTAssertEqual(b2, MixBox(y0: 21, y1: 32, x0: 26, x1: 32))
        // Non-square image.
        XCTAssertEqual(MixBox.centered(cy: 0, cx: 9, cutH: 4, cutW: 4, height: 3, width: 10),
                       MixBox(y0: 0, y1: 2, x0: 7, x1: 10))
    }

    func testCutMixLambdaCorrectionAndGeometry() throws {
        let s = try ImageBatchShape(batch: 3, channels: 1, height: 32, width: 32)
        var rng = SplitMix64(seed: 5)
        var hitBorder = false
        for _ in 0..<200 {
            var x = [Float](repeating: 0, count: s.elementCount)
            let l = rng.uniformDouble()
            let r = try CutMix(alpha: 1, correctLambda: true).mix(&x, shape: s, lambda: l, rng: &rng)
            guard case .box(let b) = r.ops[0] else { return XCTFail("expected a box") }
            let cut = Int(32 * (1 - l).squareRoot())
            XCTAssertLessThanOrEqual(b.y1 - b.y0, 2 * (cut / 2))
            XCTAssertLessThanOrEqual(b.x1 - b.x0, 2 * (cut / 2))
            if b.y1 - b.y0 < 2 * (cut / 2) { hitBorder = true }
            XCTAssertEqual(r.lambda[0], Float(1 - Double(b.area) / 1024), accuracy: 1e-7)
            XCTAssertEqual(r.labelLambda, r.lambda)
            XCTAssertEqual(r.ops[1], r.ops[0])   // one box per batch
            // correct_lam = false: the label keeps the sampled λ.
            var y = [Float](repeating: 0, count: s.elementCount)
            let r2 = try CutMix(alpha: 1, correctLambda: false).mix(&y, shape: s, lambda: l, rng: &rng)
            XCTAssertEqual(r2.labelLambda[0], Float(l))
        }
        XCTAssertTrue(hitBorder, "no clipped box in 200 draws")
        // λ = 1 → empty box; λ = 0 → box of the full side (clipped by the centre position).
        var x = MixRef.images(s.elementCount, seed: 1)
        let x0 = x
        var r = try CutMix().mix(&x, shape: s, lambda: 1, rng: &rng)
        XCTAssertEqual(x, x0)
        XCTAssertEqual(r.lambda, [1, 1, 1])
        r = try CutMix().mix(&x, shape: s, lambda: 0, rng: &rng)
        guard case .box(let b) = r.ops[0] else { return XCTFail() }
        XCTAssertGreaterThanOrEqual(b.area, 16 * 16)
    }

    func testCutMixMinMaxBoxes() throws {
        let H = 20, W = 30
        var rng = SplitMix64(seed: 11)
        for _ in 0..<500 {
            let b = CutMix.sampleBox(lambda: 0.5, height: H, width: W, minMax: (0.25, 0.75), rng: &rng)
            XCTAssertTrue(b.y1 - b.y0 >= 5 && b.y1 - b.y0 < 15)
            XCTAssertTrue(b.x1 - b.x0 >= 7 && b.x1 - b.x0 < 22)
            XCTAssertTrue(b.y0 >= 0 && b.y1 <= H && b.x0 >= 0 && b.x1 <= W)
        }
    }

    func testCutMixSampledLambdaIsBetaDistributed() throws {
        // With correct_lam = false the label weight is the raw Beta draw.
        let s = try ImageBatchShape(batch: 1, channels: 1, height: 4, width: 4)
        var x = [Float](repeating: 0, count: 16)
        var rng = SplitMix64(seed: 123)
        let c = try CutMix(alpha: 0.2, correctLambda: false)
        var lams: [Double] = []
        for _ in 0..<2000 { lams.append(Double(try c.mix(&x, shape: s, rng: &rng).labelLambda[0])) }
        XCTAssertLessThan(MixRef.ksStatistic(lams, cdf: { MixRef.betaCDF($0, 0.2, 0.2) }), MixRef.ksCritical(2000))
    }
}
