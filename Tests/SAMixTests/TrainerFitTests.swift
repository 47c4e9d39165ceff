import XCTest
import SAMix
@testable import SAMixCore
@testable import SAMixOps
@testable import SAMixNN
@testable import SAMixData
@testable import SAMixMixing
@testable import SAMixTraining

/// `Trainer.fit(_:epochs:evaluations:…)`, the one fit loop of the C ABI, Python and the CLI: records
/// per step and per epoch, evaluations of every named set, a clean stop at the next step that
/// continues exactly, and the JSON the C ABI sends.
final class TrainerFitTests: XCTestCase {
    private func make(seed: UInt64, mix: String = "mixup") throws -> (Trainer, ArrayBatchSource, ArrayBatchSource) {
        var rng = SplitMix64(seed: 1)
        let x = try Tensor(zeros: [48, 1, 8, 8])
        for i in 0..<(48 * 64) { x.data[i] = Float(rng.normal()) }
        let y = (0..<48).map { $0 % 2 }
        let src = try ArrayBatchSource(images: x, labels: y, batchSize: 8, seed: seed)   // 6 batches
        let val = try ArrayBatchSource(images: x, labels: y, batchSize: 16, shuffle: false, training: false)
        let net = try ModelZoo.make("resnet20", numClasses: 2, inChannels: 1, seed: seed)
        let obj = try ObjectiveRegistry.make(mix)
        let opt = try Trainer.sgd(model: net, objective: obj, lr: 0.05)
        let t = Trainer(model: net, objective: obj, optimizer: opt,
                        schedule: try LearningRateSchedule(.cosine(minLR: 0), baseLR: 0.05), seed: seed)
        return (t, src, val)
    }

    func testRecordsEveryStepAndEpochWithEvaluations() throws {
        let (t, src, val) = try make(seed: 3)
        var steps: [StepRecord] = []
        var epochs: [EpochRecord] = []
        let h = try t.fit(src, epochs: 2, evaluations: [FitEvaluation("val", val)],
                          onStep: { steps.append($0); return true }, onEpoch: { epochs.append($0); return true })
        XCTAssertEqual(h, epochs)
        XCTAssertEqual(steps.map(\.epoch), Array(repeating: 1, count: 6) + Array(repeating: 2, count: 6))
        XCTAssertEqual(steps.map(\.step), Array(0..<6) + Array(0..<6))
        XCTAssertTrue(steps.allSatisfy { $0.steps == 6 && $0.loss.isFinite })
        XCTAssertEqual(epochs.map(\.epoch), [1, 2])
        XCTAssertEqual(epochs.map(\.stepsDone), [6, 12])
        for r in epochs {
            XCTAssertEqual(r.evaluations["val"]?["online"]?.count, 48)
            XCTAssertEqual(r.evaluation, [:], "no set named test")
        }
        XCTAssertEqual(t.epochsDone, 2)
    }

    func testStopAtAStepContinuesExactlyAndSkipsEvaluationAtTheLastStep() throws {
        let (ref, refSrc, refVal) = try make(seed: 5)
        let refHistory = try ref.fit(refSrc, epochs: 2, evaluations: [FitEvaluation("val", refVal)])

        let (t, src, val) = try make(seed: 5)
        var n = 0
        // Stop after the 3rd step: the epoch is not counted, nothing is recorded, the call returns.
        var h = try t.fit(src, epochs: 2, evaluations: [FitEvaluation("val", val)], onStep: { _ in n += 1; return n < 3 })
        XCTAssertEqual(h, [])
        XCTAssertEqual(t.epochsDone, 0)
        XCTAssertEqual(t.stepsDone, 3)
        XCTAssertEqual(t.partialEpoch?.nextBatch, 3)
        // Stop asked at the epoch's last step: the epoch finishes and is recorded without evaluation.
        h = try t.fit(src, epochs: 2, evaluations: [FitEvaluation("val", val)], onStep: { $0.step < 5 })
        XCTAssertEqual(h.count, 1)
        XCTAssertEqual(h[0].evaluations, [:])
        XCTAssertEqual(h[0].trainLoss, refHistory[0].trainLoss)
        XCTAssertEqual(t.epochsDone, 1)
        // An epoch callback returning false stops after that epoch; the rest continues exactly.
        h = try t.fit(src, epochs: 2, evaluations: [FitEvaluation("val", val)], onEpoch: { _ in false })
        XCTAssertEqual(h.count, 2)
        XCTAssertEqual(h[1].evaluations, refHistory[1].evaluations)
        XCTAssertEqual(t.stepsDone, ref.stepsDone)
        for (a, b) in zip(t.model.parameters(), ref.model.parameters()) {
            XCTAssertEqual(a.scalars.map(\.bitPattern), b.scalars.map(\.bitPattern))
        }
    }

    func testLearnedObjectiveEvaluatesEveryNetwork() throws {
        let (t, src, val) = try make(seed: 1, mix: "automix")
        let h = try t.fit(src, epochs: 1, evaluations: [FitEvaluation("val", val), FitEvaluation("test", val)])
        XCTAssertEqual(Set(h[0].evaluations.keys), ["val", "test"])
        XCTAssertEqual(Set(h[0].evaluations["val"]!.keys), ["online", "momentum"])
        XCTAssertEqual(h[0].evaluation, h[0].evaluations["test"]!)
    }

    func testJSONRecords() throws {
        let step = StepRecord(epoch: 2, step: 0, steps: 6, loss: 0.5, learningRate: 0.1)
        XCTAssertEqual(FitRecordJSON.encode(step), #"{"type":"step","epoch":2,"step":0,"steps":6,"loss":0.5,"lr":0.1}"#)
        let r = EpochRecord(epoch: 1, trainLoss: 1.25, learningRate: 0.05,
                            evaluations: ["val": ["online": Evaluation(loss: .nan, accuracy: 0.5, count: 4)]],
                            seconds: 2, metrics: ["b\"x": 1, "a": .infinity], stepsDone: 6)
        let text = FitRecordJSON.encode(r)
        XCTAssertEqual(text, #"{"type":"epoch","epoch":1,"loss":1.25,"lr":0.05,"seconds":2.0,"steps_done":6,"#
                       + #""metrics":{"a":null,"b\"x":1.0},"evaluations":{"val":{"online":{"loss":null,"accuracy":0.5,"count":4}}}}"#)
        XCTAssertEqual(try JSON.parse(text)["evaluations"]?["val"]?["online"]?["count"]?.int, 4)   // valid JSON
    }
}

/// `TrainerConfig`: the `config.*` checkpoint metadata round-trips, and bad values name the key.
final class TrainerConfigTests: XCTestCase {
    func testMetadataRoundTripAndErrors() throws {
        let c = TrainerConfig(mix: "mixup", alpha: 0.7, labelSmoothing: 0.1, optimizer: "sgd", learningRate: 0.05,
                              momentum: 0.9, weightDecay: 5e-4, nesterov: true, schedule: "cosine", warmupSteps: 3)
        XCTAssertEqual(c.metadata["alpha"], "0.7")
        XCTAssertEqual(c.metadata["nesterov"], "1")
        XCTAssertEqual(try TrainerConfig(metadata: c.metadata), c)
        var learned = c
        (learned.alpha, learned.learnedMethod, learned.learnedOptions) = (nil, "samix", "eta=0.5")
        XCTAssertEqual(learned.metadata["alpha"], "default")
        XCTAssertEqual(try TrainerConfig(metadata: learned.metadata), learned)
        XCTAssertEqual(learned.json["alpha"], .null)
        XCTAssertEqual(learned.json["nesterov"], .bool(true))
        var bad = c.metadata
        bad["lr"] = "nan"
        XCTAssertThrowsError(try TrainerConfig(metadata: bad)) { XCTAssertTrue("\($0)".contains("config.lr"), "\($0)") }
        bad = c.metadata
        bad["mix"] = nil
        XCTAssertThrowsError(try TrainerConfig(metadata: bad)) { XCTAssertTrue("\($0)".contains("config.mix"), "\($0)") }
    }
}
