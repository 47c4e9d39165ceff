import XCTest
import SAMix
@testable import SAMixCore
@testable import SAMixOps
@testable import SAMixNN
@testable import SAMixData
@testable import SAMixMixing
@testable import SAMixTraining

/// The training loop: learning on a toy problem, determinism, schedules, objectives.
final class TrainerTests: XCTestCase {
    /// Two classes of 8×8 images: bright square top-left vs bottom-right, plus noise.
    private func toyData(count: Int, seed: UInt64) throws -> (Tensor, [Int]) {
        var rng = SplitMix64(seed: seed)
        let x = try Tensor(zeros: [count, 1, 8, 8])
        var y: [Int] = []
        for i in 0..<count {
            let c = i % 2
            y.append(c)
            let img = x.data + i * 64
            for p in 0..<64 { img[p] = Float(rng.normal()) * 0.3 }
            for r in 0..<4 { for q in 0..<4 { img[(r + 4 * c) * 8 + q + 4 * c] += 1.5 } }
        }
        return (x, y)
    }

    private func train(mix: String, seed: UInt64, epochs: Int = 3) throws -> (Trainer, [EpochRecord]) {
        let (x, y) = try toyData(count: 64, seed: 1)
        let (tx, ty) = try toyData(count: 32, seed: 2)
        let src = try ArrayBatchSource(images: x, labels: y, batchSize: 16, seed: seed)
        let test = try ArrayBatchSource(images: tx, labels: ty, batchSize: 32, shuffle: false)
        let net = try ModelZoo.make("resnet20", numClasses: 2, inChannels: 1, seed: seed)
        let obj = try ObjectiveRegistry.make(mix)
        let opt = try Trainer.sgd(model: net, objective: obj, lr: 0.05)
        let trainer = Trainer(model: net, objective: obj, optimizer: opt,
                              schedule: try LearningRateSchedule(.cosine(minLR: 0), baseLR: 0.05), seed: seed)
        let h = try trainer.fit(src, epochs: epochs, test: test)
        return (trainer, h)
    }

    func testVanillaLearnsToyProblem() throws {
        let (_, h) = try train(mix: "vanilla", seed: 0, epochs: 4)
        XCTAssertEqual(h.count, 4)
        XCTAssertLessThan(h.last!.trainLoss, h.first!.trainLoss)
        XCTAssertGreaterThanOrEqual(h.last!.evaluation["online"]!.accuracy, 0.9)
    }

    func testSameSeedBitIdenticalDifferentSeedDifferent() throws {
        for mix in ["vanilla", "cutmix", "manifoldmix"] {
            let (a, ha) = try train(mix: mix, seed: 3, epochs: 1)
            let (b, hb) = try train(mix: mix, seed: 3, epochs: 1)
            XCTAssertEqual(ha.map { $0.trainLoss }, hb.map { $0.trainLoss }, mix)
            XCTAssertEqual(a.model.parameters()[0].scalars, b.model.parameters()[0].scalars, mix)
            let (c, _) = try train(mix: mix, seed: 4, epochs: 1)
            XCTAssertNotEqual(a.model.parameters()[0].scalars, c.model.parameters()[0].scalars, mix)
        }
    }

    func testEveryRegisteredObjectiveTrains() throws {
        for name in ObjectiveRegistry.names {
            let (t, h) = try train(mix: name, seed: 1, epochs: 1)
            XCTAssertTrue(h[0].trainLoss.isFinite, name)
            XCTAssertEqual(t.stepsDone, 4, name)
        }
        XCTAssertThrowsError(try ObjectiveRegistry.make("nomix"))
        XCTAssertThrowsError(try ObjectiveRegistry.make("mixup", alpha: 0))
    }

    func testScheduleDrivesLearningRate() throws {
        let (t, h) = try train(mix: "vanilla", seed: 0, epochs: 2)
        // Cosine over 8 steps: the last step of epoch 1 is t = 3 → lr = 0.05·(1 + cos(3π/8))/2.
        XCTAssertEqual(h[0].learningRate, 0.05 * (1 + cos(3 * Double.pi / 8)) / 2, accuracy: 1e-6)
        XCTAssertEqual(t.epochsDone, 2)
        XCTAssertThrowsError(try t.trainEpoch(try ArrayBatchSource(images: try Tensor(zeros: [2, 1, 8, 8]), labels: [0, 1], batchSize: 2),
                                              totalEpochs: 2), "already finished")
    }

    func testManifoldMixRowsMixing() throws {
        let h = try Tensor([1, 2, 3, 4, 5, 6], shape: [3, 2])
        let m = try mixRows(h, lam: 0.25, permutation: [2, 0, 1])
        let x: [Float] = [1, 2, 3, 4, 5, 6], src = [4, 5, 0, 1, 2, 3]
        var expected: [Float] = []
        for i in 0..<6 { expected.append(0.25 * x[i] + 0.75 * x[src[i]]) }
        XCTAssertEqual(m.scalars, expected)
    }

    func testArrayBatchSourceCoversEveryImageOncePerEpoch() throws {
        let x = try Tensor(zeros: [10, 1, 2, 2])
        for i in 0..<10 { (x.data + i * 4).update(repeating: Float(i), count: 4) }
        let src = try ArrayBatchSource(images: x, labels: Array(0..<10), batchSize: 4, seed: 1)
        var seen: [Int] = []
        for b in 0..<src.batchesPerEpoch {
            let batch = try src.batch(b, epoch: 0)
            for (k, i) in batch.indices.enumerated() {
                XCTAssertEqual(batch.images.data[k * 4], Float(i))
                XCTAssertEqual(batch.labels[k], i)
            }
            seen += batch.indices
        }
        XCTAssertEqual(seen.sorted(), Array(0..<10))
    }
}
