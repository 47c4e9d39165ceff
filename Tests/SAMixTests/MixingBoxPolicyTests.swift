import XCTest
import SAMix
@testable import SAMixCore
@testable import SAMixOps
@testable import SAMixNN
@testable import SAMixData
@testable import SAMixMixing
@testable import SAMixTraining

final class MixingBoxPolicyTests: XCTestCase {
    // MARK: SaliencyMix

    func testSaliencyMixProperties() throws {
        for batch in [1, 2, 7] {
            try checkMixPolicy(try SaliencyMix(alpha: 1), batch: batch, seed: UInt64(batch) + 60)
            try checkMixPolicy(try SaliencyMix(alpha: 0.2, perSample: true), batch: batch, height: 12, width: 9, seed: 61)
        }
        try checkSeedsDiffer(try SaliencyMix(alpha: 1))
    }

    func testSaliencyPeakFindsTheSpot() throws {
        // Constant grey images with one bright 2×2 spot at a different place per image.
        let s = try ImageBatchShape(batch: 3, channels: 3, height: 32, width: 32)
        var x = [Float](repeating: 0.5, count: s.elementCount)
        let spots = [(4, 27), (20, 3), (30, 30)]
        for (b, (y, xx)) in spots.enumerated() {
            for c in 0..<3 { for dy in 0..<2 { for dx in 0..<2 where y + dy < 32 && xx + dx < 32 {
                x[b * 3072 + c * 1024 + (y + dy) * 32 + xx + dx] = 3
            } } }
        }
        for b in 0..<3 {
            let p = try x.withUnsafeBufferPointer { try Saliency.peak($0.baseAddress!, shape: s, index: b) }
            XCTAssertTrue(abs(p.y - spots[b].0) <= 2 && abs(p.x - spots[b].1) <= 2, "image \(b): peak \(p)")
        }
        // Constant image: (0, 0).
        let flat = [Float](repeating: 1, count: 3 * 32 * 32)
        let s1 = try ImageBatchShape(batch: 1, channels: 3, height: 32, width: 32)
        let p = try flat.withUnsafeBufferPointer { try Saliency.peak($0.baseAddress!, shape: s1, index: 0) }
        XCTAssertTrue(p == (0, 0))
        // The batch box is centred on the peak of the first partner; per-sample boxes on each partner.
        var rng = SplitMix64(seed: 3)
        var y = x
        let r = try SaliencyMix(partner: .explicit([1, 2, 0])).mix(&y, shape: s, lambda: 0.75, rng: &rng)
        let peak1 = try x.withUnsafeBufferPointer { try Saliency.peak($0.baseAddress!, shape: s, index: 1) }
        XCTAssertEqual(r.ops[0], .box(MixBox.centered(cy: peak1.y, cx: peak1.x, cutH: 16, cutW: 16, height: 32, width: 32)))
        XCTAssertEqual(r.ops[2], r.ops[0])
        var z = x
        let rp = try SaliencyMix(partner: .explicit([1, 2, 0]), perSample: true).mix(&z, shape: s, lambda: 0.75, rng: &rng)
        for i in 0..<3 {
            let pk = try x.withUnsafeBufferPointer { try Saliency.peak($0.baseAddress!, shape: s, index: rp.partner[i]) }
            XCTAssertEqual(rp.ops[i], .box(MixBox.centered(cy: pk.y, cx: pk.x, cutH: 16, cutW: 16, height: 32, width: 32)))
        }
    }

    func testSaliencyMapIsCentreSurroundContrast() throws {
        // 1-D step edge: saliency is largest next to the edge and zero far from it.
        let H = 16, W = 16
        var img = [Float](repeating: 0, count: H * W)
        for y in 0..<H { for x in 8..<W { img[y * W + x] = 1 } }
        let sal = try Saliency.fineGrained(intensity: img, height: H, width: W)
        XCTAssertGreaterThan(sal[8 * W + 7], sal[8 * W + 3])
        XCTAssertGreaterThan(sal[8 * W + 8], sal[8 * W + 12])
        XCTAssertEqual(sal[8 * W + 0], 0, accuracy: 1e-6)
        XCTAssertThrowsError(try Saliency.fineGrained(intensity: [1, 2, 3], height: 2, width: 2))
    }

    // MARK: ResizeMix

    func testResizeMixProperties() throws {
        for batch in [1, 2, 7] {
            try checkMixPolicy(try ResizeMix(), batch: batch, height: 16, width: 16, seed: UInt64(batch) + 70)
            try checkMixPolicy(try ResizeMix(useAlpha: false, perSample: true), batch: batch, height: 10, width: 13, seed: 71)
            try checkMixPolicy(try ResizeMix(partner: .explicit([Int](repeating: 0, count: batch))), batch: batch, seed: 72)
        }
        try checkSeedsDiffer(try ResizeMix())
    }

    func testResizeMixBoxScaleAndEndpoints() throws {
        let s = try ImageBatchShape(batch: 2, channels: 1, height: 32, width: 32)
        var rng = SplitMix64(seed: 12)
        for _ in 0..<300 {
            var x = [Float](repeating: 0, count: s.elementCount)
            let r = try ResizeMix(useAlpha: false).mix(&x, shape: s, rng: &rng)
            guard case .resizedBox(let b) = r.ops[0] else { return XCTFail() }
            XCTAssertLessThanOrEqual(b.y1 - b.y0, 2 * (Int(32 * 0.8) / 2))
            XCTAssertEqual(r.lambda[0], Float(1 - Double(b.area) / 1024), accuracy: 1e-7)
        }
        var x = MixRef.images(s.elementCount, seed: 2)
        let x0 = x
        var r = try ResizeMix().mix(&x, shape: s, lambda: 1, rng: &rng)
        XCTAssertEqual(x, x0)
        r = try ResizeMix().mix(&x, shape: s, lambda: 0, rng: &rng)  // τ = 1: box of side up to 32
        guard case .resizedBox(let b) = r.ops[0] else { return XCTFail() }
        XCTAssertGreaterThanOrEqual(b.area, 256)
    }

    func testResizeMixSelfPairedInPlace() throws {
        // A sample paired with itself gets a shrunken copy of itself: in place must read the original.
        let s = try ImageBatchShape(batch: 1, channels: 2, height: 9, width: 9)
        let x = MixRef.images(s.elementCount, seed: 5)
        var y = x
        var rng = SplitMix64(seed: 1)
        let r = try ResizeMix().mix(&y, shape: s, lambda: 0.5, rng: &rng)
        XCTAssertEqual(y, MixRef.mix(x, s, r))
    }
}
