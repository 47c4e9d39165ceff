import XCTest
import SAMix
@testable import SAMixCore
@testable import SAMixOps
@testable import SAMixNN
@testable import SAMixData
@testable import SAMixMixing
@testable import SAMixTraining

/// Up-front memory checks and the release of cached memory after a failure.
final class MemoryBudgetTests: XCTestCase {
    func testEstimateScalesWithBatchAndLeavesTheModelUntouched() throws {
        let m = try ModelZoo.make("resnet20", numClasses: 10, inChannels: 3, seed: 0)
        let before = m.stateDict().map { $0.1.scalars }
        let one = try m.estimatedPeakBytes(batch: 1, height: 32, width: 32, training: false)
        let two = try m.estimatedPeakBytes(batch: 2, height: 32, width: 32, training: false)
        let perSample = two - one
        XCTAssertGreaterThanOrEqual(perSample, 16 * 32 * 32 * 4, "at least one 16-channel activation map per image")
        XCTAssertLessThan(perSample, 16 * 32 * 32 * 4 * 40, "per-image cost of a ResNet-20 pass is well under 2.6 MB")
        XCTAssertEqual(try m.estimatedPeakBytes(batch: 101, height: 32, width: 32, training: false), one + 100 * perSample)
        XCTAssertEqual(try m.estimatedPeakBytes(batch: 101, height: 32, width: 32, training: true), 4 * (one + 100 * perSample))
        XCTAssertTrue(m.isTraining)
        XCTAssertTrue(m.stateDict().map { $0.1.scalars } == before, "the probe changed weights or BN statistics")
    }

    func testImpossibleCallsFailBeforeAllocating() throws {
        let available = try XCTUnwrap(MemoryBudget.availableBytes(), "/proc/meminfo is readable on Linux")
        XCTAssertGreaterThan(available, 0)
        XCTAssertNoThrow(try MemoryBudget.require(1 << 20, for: "a small call"))
        do {
            try MemoryBudget.require(Int.max / 2, for: "a huge call")
            XCTFail("accepted")
        } catch SAMixError.outOfMemory(let msg) {
            XCTAssertTrue(msg.contains("a huge call needs about"), msg)
        }
        let m = try ModelZoo.make("resnet20", numClasses: 10, inChannels: 3, seed: 0)
        let live = BufferPool.shared.statistics.live
        XCTAssertThrowsError(try m.requireMemory(batch: 1 << 40, height: 32, width: 32, training: true))
        XCTAssertEqual(BufferPool.shared.statistics.live, live, "nothing allocated")
    }

    func testReleaseCachedMemoryEmptiesThePool() throws {
        let p = try XCTUnwrap(BufferPool.shared.allocate(1 << 16))
        BufferPool.shared.release(p, count: 1 << 16)
        XCTAssertGreaterThan(BufferPool.shared.statistics.cached, 0)
        Engine.releaseCachedMemory()
        XCTAssertEqual(BufferPool.shared.statistics.cached, 0)
    }
}
