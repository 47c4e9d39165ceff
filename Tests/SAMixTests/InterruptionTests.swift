import XCTest
import SAMix
@testable import SAMixCore
@testable import SAMixTraining

/// `Interruption`: the calling thread's check stops evaluations, kNN and the linear probe between
/// batches with `SAMixError.interrupted`, restores what the call changed, and leaves other threads
/// and later calls alone.
final class InterruptionTests: XCTestCase {
    /// A check that asks to stop on its `stopAt`-th call (counting every call).
    private final class Counter {
        var calls = 0
        let stopAt: Int
        init(stopAt: Int) { self.stopAt = stopAt }
        func check() -> Bool { calls += 1; return calls >= stopAt }
    }

    private func isInterrupted(_ error: Error) -> Bool {
        if case SAMixError.interrupted = error { return true }
        return false
    }

    func testCheckpointThrowsOnlyWhenTheCheckAsksAndNestingRestores() throws {
        XCTAssertNil(Interruption.current)
        XCTAssertNoThrow(try Interruption.checkpoint("nothing"))
        let outer = Counter(stopAt: 100), inner = Counter(stopAt: 1)
        try Interruption.withCheck(outer.check) {
            XCTAssertNoThrow(try Interruption.checkpoint("outer"))
            XCTAssertEqual(outer.calls, 1)
            try Interruption.withCheck(inner.check) {
                XCTAssertThrowsError(try Interruption.checkpoint("the inner loop")) { e in
                    XCTAssertEqual(e as? SAMixError, .interrupted("the inner loop was interrupted"))
                }
            }
            XCTAssertNoThrow(try Interruption.checkpoint("outer"))   // the outer check is back
            XCTAssertEqual(outer.calls, 2)
            // Another thread has no check.
            let other = Thread { XCTAssertNil(Interruption.current) }
            other.start()
            while !other.isFinished { usleep(1000) }
        }
        XCTAssertNil(Interruption.current)
    }

    func testEvaluationStopsAtTheRequestedBatchAndRestoresTrainingMode() throws {
        var rng = SplitMix64(seed: 2)
        let x = try Tensor(zeros: [40, 1, 8, 8])
        for i in 0..<x.count { x.data[i] = Float(rng.normal()) }
        let src = try ArrayBatchSource(images: x, labels: (0..<40).map { $0 % 2 }, batchSize: 4, seed: 0)
        let net = try ModelZoo.make("resnet20", numClasses: 2, inChannels: 1, seed: 1)
        net.train()
        let reference = try Trainer.evaluate(net, on: src)
        let counter = Counter(stopAt: 3)
        XCTAssertThrowsError(try Interruption.withCheck(counter.check) { try Trainer.evaluate(net, on: src) }) { e in
            XCTAssertTrue(self.isInterrupted(e), "\(e)")
        }
        XCTAssertEqual(counter.calls, 3, "one check per batch, stopped at the third")
        XCTAssertTrue(net.isTraining, "the model's mode is restored after an interrupted evaluation")
        let again = try Trainer.evaluate(net, on: src)
        XCTAssertEqual(again.loss, reference.loss)
        XCTAssertEqual(again.accuracy, reference.accuracy)
        // A check that never asks to stop is consulted once per batch and changes nothing.
        let never = Counter(stopAt: .max)
        let checked = try Interruption.withCheck(never.check) { try Trainer.evaluate(net, on: src) }
        XCTAssertEqual(never.calls, src.batchesPerEpoch)
        XCTAssertEqual(checked.loss, reference.loss)
    }

    func testKNNAndLinearProbeStop() throws {
        var rng = SplitMix64(seed: 3)
        let f = try Tensor(zeros: [600, 8])
        for i in 0..<f.count { f.data[i] = Float(rng.normal()) }
        let labels = (0..<600).map { $0 % 3 }
        let knnCounter = Counter(stopAt: 2)
        XCTAssertThrowsError(try Interruption.withCheck(knnCounter.check) {
            try KNNClassifier.accuracy(trainFeatures: f, trainLabels: labels, testFeatures: f, testLabels: labels, classes: 3)
        }) { e in XCTAssertTrue(self.isInterrupted(e), "\(e)") }
        XCTAssertEqual(knnCounter.calls, 2, "600 queries are 3 chunks of ≤ 256: stopped before the second")

        let probe = try LinearProbe(epochs: 50, batchSize: 100)
        let reference = try probe.fit(trainFeatures: f, trainLabels: labels, testFeatures: f, testLabels: labels, classes: 3)
        let probeCounter = Counter(stopAt: 7)
        XCTAssertThrowsError(try Interruption.withCheck(probeCounter.check) {
            try probe.fit(trainFeatures: f, trainLabels: labels, testFeatures: f, testLabels: labels, classes: 3)
        }) { e in XCTAssertTrue(self.isInterrupted(e), "\(e)") }
        XCTAssertEqual(probeCounter.calls, 7)
        let again = try probe.fit(trainFeatures: f, trainLabels: labels, testFeatures: f, testLabels: labels, classes: 3)
        XCTAssertEqual(again.testAccuracy, reference.testAccuracy)
    }
}
