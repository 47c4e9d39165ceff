import XCTest
import SAMix
@testable import SAMixCore
@testable import SAMixOps
@testable import SAMixNN
@testable import SAMixData
@testable import SAMixMixing
@testable import SAMixTraining

/// Contracts found by an independent check of the mixing API: timm's exact box rules, no silently
/// ignored λ, and masks that describe what was done to the pixels.
final class MixingContractTests: XCTestCase {
    /// timm `rand_bbox` (pinned commit aa4b5850): `cut = int(H·√(1−λ))`, corners `c ∓ cut // 2` clipped,
    /// so an unclipped box has side `2·(cut // 2)` (odd cuts give an even side, as in timm), never `cut`.
    func testLambdaBoxRuleIsTimmRandBbox() throws {
        var rng = SplitMix64(seed: 3)
        var unclipped = 0
        for _ in 0..<2000 {
            let lam = rng.uniformDouble()
            let b = CutMix.sampleBox(lambda: lam, height: 10, width: 12, minMax: nil, rng: &rng)
            let cutH = Int(10 * (1 - lam).squareRoot()), cutW = Int(12 * (1 - lam).squareRoot())
            XCTAssertTrue(b.y1 - b.y0 <= 2 * (cutH / 2) && b.x1 - b.x0 <= 2 * (cutW / 2))
            if b.y0 > 0 && b.y1 < 10 && b.x0 > 0 && b.x1 < 12 {
                unclipped += 1
                XCTAssertEqual(b.y1 - b.y0, 2 * (cutH / 2), "λ \(lam)")
                XCTAssertEqual(b.x1 - b.x0, 2 * (cutW / 2), "λ \(lam)")
            }
        }
        XCTAssertGreaterThan(unclipped, 100)
    }

    /// timm `rand_bbox_minmax`: sides from `randint(int(lo·H), int(hi·H))` (upper bound exclusive) and
    /// the corner from `randint(0, H − cut)` — exclusive too, so a box never touches the bottom/right
    /// edge (timm's own behaviour; samix.Mixup claims timm's semantics and keeps it).
    func testMinMaxBoxRuleIsTimmRandBboxMinmax() throws {
        var rng = SplitMix64(seed: 4)
        var sides = Set<Int>(), maxY0 = 0
        for _ in 0..<4000 {
            let b = CutMix.sampleBox(lambda: 0.5, height: 20, width: 20, minMax: (0.2, 0.6), rng: &rng)
            let h = b.y1 - b.y0, w = b.x1 - b.x0
            XCTAssertTrue((4..<12).contains(h) && (4..<12).contains(w), "side \(h)×\(w)")
            XCTAssertTrue(b.y0 >= 0 && b.y0 < 20 - h && b.x0 >= 0 && b.x0 < 20 - w, "corner (\(b.y0), \(b.x0)) for side \(h)×\(w)")
            XCTAssertLessThan(b.y1, 20)
            sides.insert(h)
            maxY0 = max(maxY0, b.y0 + h)
        }
        XCTAssertEqual(sides, Set(4..<12), "every side timm can draw is drawn")
        XCTAssertEqual(maxY0, 19, "boxes reach the last row timm allows")
    }

    func testSmoothMixRefusesAFixedLambda() throws {
        let s = try ImageBatchShape(batch: 4, channels: 1, height: 8, width: 8)
        var x = [Float](repeating: 0, count: s.elementCount)
        var rng = SplitMix64(seed: 1)
        XCTAssertThrowsError(try SmoothMix().plan(images: x, shape: s, lambda: 0.3, rng: &rng)) { e in
            XCTAssertTrue("\(e)".contains("SmoothMix cannot use a fixed λ"), "\(e)")
        }
        _ = try SmoothMix().mix(&x, shape: s, rng: &rng)
    }

    /// ResizeMix pastes a shrunken copy even when a sample is paired with itself: its mask marks the box.
    func testResizeMixSelfPairedMaskMarksThePastedBox() throws {
        let s = try ImageBatchShape(batch: 3, channels: 1, height: 16, width: 16)
        var x = (0..<s.elementCount).map { Float($0 % 97) }
        let before = x
        var rng = SplitMix64(seed: 2)
        let policy = try ResizeMix(partner: .explicit([0, 1, 2]))
        let r = try policy.mix(&x, shape: s, lambda: 0.5, rng: &rng)
        for i in 0..<3 {
            let m = try r.partnerWeightMap(sample: i)
            let changed = (0..<256).filter { x[i * 256 + $0] != before[i * 256 + $0] }
            XCTAssertGreaterThan(m.reduce(0, +), 0, "sample \(i): pixels changed but the mask is empty")
            for p in changed { XCTAssertEqual(m[p], 1, "changed pixel \(p) outside the mask") }
            XCTAssertEqual(Double(r.lambda[i]), 1 - Double(m.reduce(0, +)) / 256, accuracy: 1e-6)
        }
        // A self-paired CutMix box leaves the pixels unchanged, and its mask stays empty.
        var y = before
        let c = try CutMix(partner: .explicit([0, 1, 2])).mix(&y, shape: s, lambda: 0.5, rng: &rng)
        XCTAssertEqual(y, before)
        XCTAssertEqual(try c.partnerWeightMap(sample: 0).reduce(0, +), 0)
    }
}
