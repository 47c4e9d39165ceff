import XCTest
import SAMix
@testable import SAMixCore
@testable import SAMixOps
@testable import SAMixNN
@testable import SAMixData
@testable import SAMixMixing
@testable import SAMixTraining

/// DecoupleMix's decoupled mixup cross-entropy: values and gradients.
final class ModelMixingLossTests: XCTestCase {
    func testDecoupledLossHandComputedValue() throws {
        // z = [1, 2, 0.5, −1], a = 0, b = 1, λ = 0.7, η = 0.1:
        //   mixup CE = 0.7·(lse − 1) + 0.3·(lse − 2)                    = 1.195181898085856
        //   term a   = −log(e¹ / (e¹ + e^0.5 + e^−1))                   = 0.5549569196419908
        //   term b   = −log(e² / (e² + e^0.5 + e^−1))                   = 0.24131129665715703
        //   total    = 1.195181898085856 + 0.1·(0.5549569… + 0.2413112…) = 1.2748087197157707
        let z = try Tensor([1, 2, 0.5, -1], shape: [1, 4])
        let cfg = try DecoupledMixupLoss(eta: 0.1)
        let l = try z.decoupledMixupCrossEntropy(labelsA: [0], labelsB: [1], lam: [0.7], config: cfg)
        XCTAssertEqual(Double(l.data[0]), 1.2748087197157707, accuracy: 1e-6)
        // 'pow' scaling with idx 1: η_a = 0.1·0.7, η_b = 0.1·0.3.
        let lp = try z.decoupledMixupCrossEntropy(labelsA: [0], labelsB: [1], lam: [0.7], config: try DecoupledMixupLoss(eta: 0.1, scale: .power(1)))
        XCTAssertEqual(Double(lp.data[0]), 1.195181898085856 + 0.07 * 0.5549569196419908 + 0.03 * 0.24131129665715703, accuracy: 1e-6)
        // 'less' / 'more' with thr 0.5 keep only the b / a term.
        let ll = try z.decoupledMixupCrossEntropy(labelsA: [0], labelsB: [1], lam: [0.7], config: try DecoupledMixupLoss(eta: 0.1, mode: .less))
        XCTAssertEqual(Double(ll.data[0]), 1.195181898085856 + 0.1 * 0.24131129665715703, accuracy: 1e-6)
        let lm = try z.decoupledMixupCrossEntropy(labelsA: [0], labelsB: [1], lam: [0.7], config: try DecoupledMixupLoss(eta: 0.1, mode: .more))
        XCTAssertEqual(Double(lm.data[0]), 1.195181898085856 + 0.1 * 0.5549569196419908, accuracy: 1e-6)
    }

    func testDecoupledLossFallsBackToMixupCE() throws {
        let z = try TestData.uniform([5, 6], seed: 3, lo: -2, hi: 2)
        let ya = [0, 1, 2, 3, 4], yb = [0, 2, 2, 1, 5]
        let lam: [Float] = [0.3, 0.5, 0.8, 0.0005, 0.9995]
        // Row 0 & 2: same class; row 1: λ = 0.5; rows 3, 4: one weight below 1e-3 → all plain mixup CE.
        let cfg = try DecoupledMixupLoss(eta: 0.7)
        let d = try z.decoupledMixupCrossEntropy(labelsA: ya, labelsB: yb, lam: lam, config: cfg)
        let m = try z.mixupCrossEntropy(labelsA: ya, labelsB: yb, lam: lam)
        XCTAssertEqual(d.data[0], m.data[0], accuracy: 1e-5)
        // η = 0 is the mixup CE for any row.
        let d0 = try z.decoupledMixupCrossEntropy(labelsA: ya, labelsB: [1, 0, 4, 5, 3], lam: [0.2, 0.3, 0.9, 0.6, 0.4],
                                                  config: try DecoupledMixupLoss(eta: 0))
        let m0 = try z.mixupCrossEntropy(labelsA: ya, labelsB: [1, 0, 4, 5, 3], lam: [0.2, 0.3, 0.9, 0.6, 0.4])
        XCTAssertEqual(d0.data[0], m0.data[0], accuracy: 1e-5)
        // With distinct classes and λ ≠ 0.5 the decoupled term adds a positive amount.
        let d1 = try z.decoupledMixupCrossEntropy(labelsA: ya, labelsB: [1, 0, 4, 5, 3], lam: [0.2, 0.3, 0.9, 0.6, 0.4], config: cfg)
        XCTAssertGreaterThan(d1.data[0], m0.data[0] + 0.1)
    }

    func testDecoupledLossGradientMatchesFiniteDifferences() throws {
        let z = try TestData.uniform([4, 5], seed: 9, lo: -2, hi: 2)
        for cfg in [try DecoupledMixupLoss(eta: 0.1), try DecoupledMixupLoss(eta: 0.8, scale: .power(0.5)),
                    try DecoupledMixupLoss(eta: 0.5, mode: .less)] {
            assertGradients([z], checker: GradCheck(eps: 1e-2, rtol: 1e-2, atol: 1e-3)) { inp in
                try inp[0].decoupledMixupCrossEntropy(labelsA: [0, 1, 2, 3], labelsB: [1, 1, 4, 0], lam: [0.7, 0.4, 0.2, 0.55],
                                                      config: cfg)
            }
        }
        // Composed with other ops (gradient scaling by the upstream value).
        assertGradients([z]) { inp in
            try (try inp[0] * 2).decoupledMixupCrossEntropy(labelsA: [0, 1, 2, 3], labelsB: [4, 3, 2, 1], lam: [0.9, 0.1, 0.3, 0.65],
                                                           config: try DecoupledMixupLoss(eta: 0.3)) * 3
        }
    }

    func testDecoupledLossRejectsBadArguments() throws {
        let z = try Tensor(zeros: [2, 3])
        let cfg = try DecoupledMixupLoss()
        XCTAssertThrowsError(try DecoupledMixupLoss(eta: -1))
        XCTAssertThrowsError(try DecoupledMixupLoss(eta: .nan))
        XCTAssertThrowsError(try DecoupledMixupLoss(scale: .power(-1)))
        XCTAssertThrowsError(try z.decoupledMixupCrossEntropy(labelsA: [0, 3], labelsB: [1, 1], lam: [0.5, 0.5], config: cfg))
        XCTAssertThrowsError(try z.decoupledMixupCrossEntropy(labelsA: [0], labelsB: [1, 1], lam: [0.5, 0.5], config: cfg))
        XCTAssertThrowsError(try z.decoupledMixupCrossEntropy(labelsA: [0, 1], labelsB: [1, 1], lam: [1.5, 0.5], config: cfg))
        XCTAssertThrowsError(try Tensor(zeros: [3]).decoupledMixupCrossEntropy(labelsA: [0], labelsB: [0], lam: [1], config: cfg))
    }

    func testMixupLossEnumDispatch() throws {
        let z = try TestData.uniform([3, 4], seed: 1)
        let ya = [0, 1, 2], yb = [3, 2, 1], lam: [Float] = [0.2, 0.7, 0.9]
        XCTAssertEqual(try MixupLoss.mixupCE(logits: z, labelsA: ya, labelsB: yb, lam: lam).data[0],
                       try z.mixupCrossEntropy(labelsA: ya, labelsB: yb, lam: lam).data[0])
        let cfg = try DecoupledMixupLoss(eta: 0.2)
        XCTAssertEqual(try MixupLoss.decoupled(cfg)(logits: z, labelsA: ya, labelsB: yb, lam: lam).data[0],
                       try z.decoupledMixupCrossEntropy(labelsA: ya, labelsB: yb, lam: lam, config: cfg).data[0])
        XCTAssertThrowsError(try AlignMixObjective(loss: .crossEntropy(labelSmoothing: 1)))
    }
}
