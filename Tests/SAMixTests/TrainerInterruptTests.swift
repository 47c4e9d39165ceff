import XCTest
import SAMix
@testable import SAMixCore
@testable import SAMixOps
@testable import SAMixNN
@testable import SAMixData
@testable import SAMixMixing
@testable import SAMixTraining

/// `Trainer.trainEpoch(…, shouldStop:)`: an epoch stopped early is not counted, keeps its progress in
/// `partialEpoch`, and the next call continues it so the run equals an uninterrupted one.
final class TrainerInterruptTests: XCTestCase {
    private func make(seed: UInt64) throws -> (Trainer, ArrayBatchSource) {
        var rng = SplitMix64(seed: 1)
        let x = try Tensor(zeros: [48, 1, 8, 8])
        for i in 0..<(48 * 64) { x.data[i] = Float(rng.normal()) }
        let y = (0..<48).map { $0 % 2 }
        let src = try ArrayBatchSource(images: x, labels: y, batchSize: 8, seed: seed)
        let net = try ModelZoo.make("resnet20", numClasses: 2, inChannels: 1, seed: seed)
        let obj = try ObjectiveRegistry.make("cutmix")
        let opt = try Trainer.sgd(model: net, objective: obj, lr: 0.05)
        let t = Trainer(model: net, objective: obj, optimizer: opt,
                        schedule: try LearningRateSchedule(.cosine(minLR: 0), baseLR: 0.05), seed: seed)
        return (t, src)
    }

    func testStoppedEpochIsNotCountedAndContinuesExactly() throws {
        let (ref, refSrc) = try make(seed: 5)
        let refEpoch = try ref.trainEpoch(refSrc, totalEpochs: 2)
        _ = try ref.trainEpoch(refSrc, totalEpochs: 2)

        let (t, src) = try make(seed: 5)
        var steps = 0
        XCTAssertThrowsError(try t.trainEpoch(src, totalEpochs: 2, onStep: { _, _ in steps += 1 },
                                              shouldStop: { steps == 2 })) { error in
            XCTAssertTrue(error is TrainingInterrupted, "\(error)")
        }
        XCTAssertEqual(t.epochsDone, 0)
        XCTAssertEqual(t.stepsDone, 2)
        XCTAssertEqual(t.partialEpoch?.nextBatch, 2)
        let first = try t.trainEpoch(src, totalEpochs: 2)   // continues at batch 2
        XCTAssertNil(t.partialEpoch)
        XCTAssertEqual(t.epochsDone, 1)
        XCTAssertEqual(t.stepsDone, 6)
        XCTAssertEqual(first.loss, refEpoch.loss)
        _ = try t.trainEpoch(src, totalEpochs: 2)
        XCTAssertEqual(t.stepsDone, ref.stepsDone)
        for (a, b) in zip(t.model.parameters(), ref.model.parameters()) { XCTAssertEqual(a.scalars, b.scalars) }
    }

    /// A checkpoint written right after an interrupt holds the stopped epoch: a fresh trainer loaded
    /// from it continues at the same batch and ends bit-identical to an uninterrupted run.
    func testCheckpointAfterInterruptResumesExactly() throws {
        let (ref, refSrc) = try make(seed: 7)
        _ = try ref.trainEpoch(refSrc, totalEpochs: 2)
        _ = try ref.trainEpoch(refSrc, totalEpochs: 2)

        let (t, src) = try make(seed: 7)
        var steps = 0
        XCTAssertThrowsError(try t.trainEpoch(src, totalEpochs: 2, onStep: { _, _ in steps += 1 }, shouldStop: { steps == 3 }))
        let dir = try TemporaryDirectory(prefix: "samix-interrupt")
        defer { dir.remove() }
        let path = dir.path + "/run.safetensors"
        try Checkpoint.save(t, to: path)
        let (resumed, src2) = try make(seed: 7)
        for p in resumed.model.parameters() { p.fill(0) }  // the checkpoint must restore everything
        try Checkpoint.load(into: resumed, from: path)
        XCTAssertEqual(resumed.partialEpoch?.nextBatch, 3)
        XCTAssertEqual(resumed.stepsDone, 3)
        _ = try resumed.trainEpoch(src2, totalEpochs: 2)
        _ = try resumed.trainEpoch(src2, totalEpochs: 2)
        XCTAssertEqual(resumed.stepsDone, ref.stepsDone)
        for (a, b) in zip(resumed.model.parameters(), ref.model.parameters()) {
            XCTAssertEqual(a.scalars.map(\.bitPattern), b.scalars.map(\.bitPattern))
        }
    }

    func testStopAskedAtTheLastStepFinishesTheEpoch() throws {
        let (t, src) = try make(seed: 2)   // 6 batches
        var asked = 0
        XCTAssertThrowsError(try t.trainEpoch(src, totalEpochs: 1, shouldStop: { asked += 1; return asked == 5 }))
        XCTAssertEqual(t.partialEpoch?.nextBatch, 5)
        _ = try t.trainEpoch(src, totalEpochs: 1, shouldStop: { true })  // only the last batch left: not asked
        XCTAssertEqual(t.epochsDone, 1)
        XCTAssertEqual(t.stepsDone, 6)
        XCTAssertEqual(asked, 5)
    }
}
