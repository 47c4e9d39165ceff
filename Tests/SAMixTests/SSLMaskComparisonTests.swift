import XCTest
import SAMix
@testable import SAMixCore
@testable import SAMixOps
@testable import SAMixNN
@testable import SAMixData
@testable import SAMixMixing
@testable import SAMixTraining

/// `SSLMaskComparison`: the masks it compares, its determinism, that it leaves the model untouched,
/// and its errors.
final class SSLMaskComparisonTests: XCTestCase {
    private func model(_ variant: SAMixSSLConfig.Variant) throws -> MoCo {
        let s = try SAMixSSLConfig(variant: variant, maskLayer: 1, clusters: 3)
        let cfg = try MoCoConfig(architecture: "resnet20", neckHidden: 16, embeddingDim: 8, queueSize: 16, seed: 3)
        return try MoCo(config: cfg, mix: .samix(s))
    }

    private func data() throws -> ImageDataset {
        try DataFixtures.dataset(labels: (0..<10).map { $0 % 2 }, channels: 3, height: 8, width: 8, classCount: 2, seed: 4)
    }

    private func snapshot(_ m: MoCo) -> [[Float]] {
        (m.query.stateDict() + m.key.stateDict() + m.mixer!.stateDict()).map { $0.1.scalars } + [m.queue.keys.scalars]
    }

    func testRowsAreDeterministicConsistentAndLeaveTheModelUntouched() throws {
        for variant in SAMixSSLConfig.Variant.allCases {
            let m = try model(variant), ds = try data()
            if variant == .cluster { try m.setPseudoLabels((0..<10).map { $0 % 3 }) }
            let norm = Normalization.computed(from: ds)
            let aug = try SSLAugmentation.mocoV2(height: 8, width: 8)
            m.key.eval()   // restored afterwards, like every buffer
            let before = snapshot(m)
            func run(_ seed: UInt64) throws -> [SSLMaskComparison.Row] {
                try SSLMaskComparison.run(model: m, dataset: ds, augmentation: aug, normalization: norm, batches: 3,
                                          batchSize: 6, seed: seed)
            }
            let a = try run(1)
            XCTAssertEqual(snapshot(m), before, "\(variant): the comparison changed the model")
            XCTAssertFalse(m.key.isTraining)
            XCTAssertEqual(try run(1), a, "\(variant)")
            XCTAssertNotEqual(try run(2), a, "\(variant)")
            XCTAssertEqual(a.map(\.mask), SSLMaskComparison.maskKinds)
            let row = Dictionary(uniqueKeysWithValues: a.map { ($0.mask, $0) })
            for r in a {
                XCTAssertTrue(r.loss.isFinite && r.loss > 0, "\(variant) \(r.mask)")
                XCTAssertEqual(r.local == nil, variant == .cluster)
            }
            if variant == .instance {
                for r in a {
                    // local ≥ H(λ) (its minimum), and shares are shares.
                    XCTAssertGreaterThanOrEqual(r.localExcess!, -1e-5)
                    XCTAssertTrue((0...1).contains(r.dominantCorrect!))
                }
            }
            // The shuffled rows reuse the Mixer's masks: same means and spatial std.
            XCTAssertEqual(row["mixer-shuffled"]!.ownShare, row["mixer"]!.ownShare, accuracy: 1e-6)
            XCTAssertEqual(row["mixer-shuffled"]!.spatialStd, row["mixer"]!.spatialStd, accuracy: 1e-6)
            XCTAssertEqual(row["mixup"]!.spatialStd, 0, accuracy: 1e-7)
            // CutMix boxes keep about λ of the original (truncated sides: a little more).
            XCTAssertGreaterThanOrEqual(row["cutmix"]!.ownShare, row["mixup"]!.ownShare - 1e-6)
            XCTAssertLessThan(row["cutmix"]!.ownShare - row["mixup"]!.ownShare, 0.3)
            XCTAssertGreaterThan(row["cutmix"]!.spatialStd, 0.2)
        }
    }

    func testMasksOfEveryKind() throws {
        let m = try model(.instance)
        let fq = try TestData.uniform([4, 32, 4, 4], seed: 1), fk = try TestData.uniform([4, 32, 4, 4], seed: 2)
        var rng = SplitMix64(seed: 5)
        let masks = try GradMode.withDisabled {
            try SSLMaskComparison.makeMasks(mixer: m.mixer!, featuresQ: fq, featuresK: fk, lam: 0.75,
                                            permutation: [1, 2, 3, 0], height: 8, width: 8, rng: &rng)
        }
        XCTAssertEqual(masks.count, 4)
        let (learned, shuffled, constant, box) = (masks[0], masks[1], masks[2], masks[3])
        for i in 0..<4 {   // mask of pair i + 1 on pair i
            XCTAssertEqual(Array(shuffled.scalars[(i * 64)..<(i * 64 + 64)]),
                           Array(learned.scalars[(((i + 1) % 4) * 64)..<(((i + 1) % 4) * 64 + 64)]))
        }
        XCTAssertTrue(constant.scalars.allSatisfy { $0 == 0.25 })
        for i in 0..<4 {   // one 4×4 box (⌊8·√0.25⌋ = 4) of ones, inside the image
            let s = Array(box.scalars[(i * 64)..<(i * 64 + 64)])
            XCTAssertEqual(s.filter { $0 == 1 }.count, 16)
            XCTAssertEqual(s.filter { $0 == 0 }.count, 48)
            let rows = Set((0..<64).filter { s[$0] == 1 }.map { $0 / 8 })
            let cols = Set((0..<64).filter { s[$0] == 1 }.map { $0 % 8 })
            XCTAssertEqual(rows.count, 4); XCTAssertEqual(cols.count, 4)
            XCTAssertEqual(rows.max()! - rows.min()!, 3); XCTAssertEqual(cols.max()! - cols.min()!, 3)
        }
    }

    func testHelpers() throws {
        XCTAssertEqual(SSLMaskComparison.binaryEntropy(0.5), log(2), accuracy: 1e-12)
        XCTAssertEqual(SSLMaskComparison.binaryEntropy(0), 0)
        XCTAssertEqual(SSLMaskComparison.binaryEntropy(1), 0)
        XCTAssertEqual(SSLMaskComparison.binaryEntropy(0.2), -(0.2 * log(0.2) + 0.8 * log(0.8)), accuracy: 1e-12)
        let z = try Tensor([1, 0, 0, 1, 1, 0], shape: [3, 2])
        let a = try Tensor([1, 0, 1, 0, 0, 1], shape: [3, 2]), b = try Tensor([0, 1, 0, 1, 1, 0], shape: [3, 2])
        // z·a > z·b for rows 0 and 1? row 0: 1 > 0 yes; row 1: 0 > 1 no; row 2: 0 > 1 no.
        XCTAssertEqual(try SSLMaskComparison.dominantShare(z: z, a: a, b: b, lam: 0.7)!, 1.0 / 3, accuracy: 1e-12)
        XCTAssertEqual(try SSLMaskComparison.dominantShare(z: z, a: a, b: b, lam: 0.3)!, 2.0 / 3, accuracy: 1e-12)
        XCTAssertNil(try SSLMaskComparison.dominantShare(z: z, a: a, b: b, lam: 0.5))
    }

    func testErrors() throws {
        let ds = try data(), norm = Normalization.computed(from: ds)
        let aug = try SSLAugmentation.mocoV2(height: 8, width: 8)
        let cfg = try MoCoConfig(architecture: "resnet20", neckHidden: 16, embeddingDim: 8, queueSize: 16, seed: 3)
        func run(_ m: MoCo, batches: Int = 1, batchSize: Int = 4) throws {
            _ = try SSLMaskComparison.run(model: m, dataset: ds, augmentation: aug, normalization: norm,
                                          batches: batches, batchSize: batchSize, seed: 0)
        }
        XCTAssertThrowsError(try run(try MoCo(config: cfg, mix: .mixup(alpha: 1)))) { e in
            guard case SAMixError.invalidState = e else { return XCTFail("\(e)") }
        }
        XCTAssertThrowsError(try run(try model(.cluster))) { e in   // no pseudo-labels yet
            guard case SAMixError.invalidState = e else { return XCTFail("\(e)") }
        }
        XCTAssertThrowsError(try run(try model(.instance), batches: 0))
        XCTAssertThrowsError(try run(try model(.instance), batchSize: 1))
        XCTAssertThrowsError(try run(try model(.instance), batchSize: 11))
    }
}
