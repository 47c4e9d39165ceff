import XCTest
import SAMix
@testable import SAMixCore
@testable import SAMixOps
@testable import SAMixNN
@testable import SAMixData
@testable import SAMixMixing
@testable import SAMixTraining

/// Architectures: parameter counts of the published models, stage shapes, state dicts, determinism.
final class ModelTests: XCTestCase {
    func testParameterCountsMatchPublishedArchitectures() throws {
        // He et al. ResNet-20 (option A): 269,722 (0.27 M); ResNet-56: 853,018 (0.85 M);
        // kuangliu CIFAR ResNet-18 with a 10-class head: 11,173,962.
        XCTAssertEqual(try ModelZoo.make("resnet20", numClasses: 10).parameterCount, 269_722)
        XCTAssertEqual(try ModelZoo.make("resnet18", numClasses: 10).parameterCount, 11_173_962)
        XCTAssertEqual(try ModelZoo.make("resnet56", numClasses: 10).parameterCount, 853_018)
        // WRN-28-2 for CIFAR-10: 1.47 M (Zagoruyko & Komodakis, Table 1 family; WRN-28-10 is 36.5 M).
        XCTAssertEqual(Double(try ModelZoo.make("wrn28_2", numClasses: 10).parameterCount) / 1e6, 1.47, accuracy: 0.005)
    }

    func testStageShapesAndLogits() throws {
        for (name, stages) in [("resnet20", [[16, 8, 8], [32, 4, 4], [64, 2, 2]]),
                               ("resnet18", [[64, 8, 8], [128, 4, 4], [256, 2, 2], [512, 1, 1]]),
                               ("preactresnet18", [[64, 8, 8], [128, 4, 4], [256, 2, 2], [512, 1, 1]]),
                               ("wrn28_2", [[32, 8, 8], [64, 4, 4], [128, 2, 2]])] {
            let net = try ModelZoo.make(name, numClasses: 5, inChannels: 1, seed: 0)
            let x = try Tensor(repeating: 0.5, shape: [3, 1, 8, 8])
            let (logits, feats) = try net.forwardWithFeatures(x)
            XCTAssertEqual(logits.shape, [3, 5], name)
            XCTAssertEqual(feats.map { Array($0.shape.dropFirst()) }, stages, name)
        }
    }

    func testSameSeedSameWeightsDifferentSeedDifferent() throws {
        let a = try ModelZoo.make("resnet20", numClasses: 10, seed: 5)
        let b = try ModelZoo.make("resnet20", numClasses: 10, seed: 5)
        let c = try ModelZoo.make("resnet20", numClasses: 10, seed: 6)
        XCTAssertEqual(a.parameters()[0].scalars, b.parameters()[0].scalars)
        XCTAssertNotEqual(a.parameters()[0].scalars, c.parameters()[0].scalars)
    }

    func testKaimingInitStatistics() throws {
        let net = try ModelZoo.make("resnet18", numClasses: 10, seed: 0)
        // layer3.0.conv2: 256×256×3×3, fan_out = 256·9, std = √(2/2304) ≈ 0.02946.
        let w = net.namedParameters().first { $0.0 == "backbone.layer3.0.conv2.weight" }!.1
        let v = w.scalars.map(Double.init)
        let mean = v.reduce(0, +) / Double(v.count)
        let std = (v.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(v.count)).squareRoot()
        XCTAssertEqual(std, (2.0 / 2304).squareRoot(), accuracy: 0.0005)
        XCTAssertEqual(mean, 0, accuracy: 0.0005)
    }

    func testStateDictNamesAndStrictLoading() throws {
        let a = try ModelZoo.make("resnet20", numClasses: 10, seed: 1)
        let names = a.stateDict().map { $0.0 }
        XCTAssertTrue(names.contains("backbone.layer2.0.conv1.weight"))
        XCTAssertTrue(names.contains("backbone.bn1.running_var"))
        XCTAssertTrue(names.contains("head.fc.bias"))
        XCTAssertEqual(Set(names).count, names.count, "names are unique")
        let b = try ModelZoo.make("resnet20", numClasses: 10, seed: 2)
        try b.loadStateDict(Dictionary(uniqueKeysWithValues: a.stateDict()))
        XCTAssertEqual(a.parameters().last?.scalars, b.parameters().last?.scalars)
        var partial = Dictionary(uniqueKeysWithValues: a.stateDict())
        partial["backbone.conv1.weight"] = nil
        XCTAssertThrowsError(try b.loadStateDict(partial))
        let wrong = try ModelZoo.make("resnet20", numClasses: 7, seed: 2)
        XCTAssertThrowsError(try wrong.loadStateDict(Dictionary(uniqueKeysWithValues: a.stateDict())))
    }

    func testBadInputsThrow() throws {
        let net = try ModelZoo.make("resnet20", numClasses: 10)
        XCTAssertThrowsError(try net(try Tensor(zeros: [2, 1, 32, 32])), "wrong channel count")
        XCTAssertThrowsError(try net(try Tensor(zeros: [2, 3, 32])), "wrong rank")
        XCTAssertThrowsError(try net(try Tensor(zeros: [0, 3, 32, 32])), "empty batch")
        XCTAssertThrowsError(try ModelZoo.make("resnet21", numClasses: 10))
        XCTAssertThrowsError(try ModelZoo.make("resnet20", numClasses: 0))
    }

    func testEvalModeUsesRunningStatistics() throws {
        let net = try ModelZoo.make("resnet20", numClasses: 3, seed: 0)
        let x = try Tensor(uninitializedShape: [4, 3, 8, 8])
        var rng = SplitMix64(seed: 9)
        for i in 0..<x.count { x.data[i] = Float(rng.normal()) }
        net.eval()
        let a = try GradMode.withDisabled { try net(x) }.scalars
        // A single image gives the same logits in eval mode (no batch statistics involved).
        let one = try Tensor(storage: x.storage, shape: [1, 3, 8, 8])
        let b = try GradMode.withDisabled { try net(one) }.scalars
        for i in 0..<3 { XCTAssertEqual(a[i], b[i], accuracy: 1e-5) }
        net.train()
        let c = try net(x).scalars
        XCTAssertNotEqual(a, c, "train mode uses batch statistics")
    }
}
