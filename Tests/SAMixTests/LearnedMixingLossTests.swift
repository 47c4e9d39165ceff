import XCTest
import SAMix
@testable import SAMixCore
@testable import SAMixOps
@testable import SAMixNN
@testable import SAMixData
@testable import SAMixMixing
@testable import SAMixTraining

/// R_k, the mask loss, the η-balanced Mixer objective and the masked mixing op.
final class LearnedMixingLossTests: XCTestCase {
    // MARK: R_k (docs/method.md §3.2 test vectors)

    func testLambdaRescaleVectors() {
        let lams = [0.1, 0.25, 0.5, 0.75, 0.9]
        let expected: [Double: [Double]] = [
            0.25: [0.1823, 0.3571, 0.5, 0.6429, 0.8177],
            0.5: [0.1576, 0.325, 0.5, 0.675, 0.8424],
            1: [0.136, 0.2969, 0.5, 0.7031, 0.864],
        ]
        for (k, values) in expected {
            for (lam, want) in zip(lams, values) {
                XCTAssertEqual(LambdaRescale.rescale(lam, k: k), want, accuracy: 6e-5, "k=\(k) λ=\(lam)")
            }
            // Fixed points and slope at 0: k'/(k' − 2/3).
            XCTAssertEqual(LambdaRescale.rescale(0, k: k), 0, accuracy: 1e-12)
            XCTAssertEqual(LambdaRescale.rescale(1, k: k), 1, accuracy: 1e-12)
            let kp = k + 1
            XCTAssertEqual(LambdaRescale.rescale(1e-6, k: k) / 1e-6, kp / (kp - 2.0 / 3.0), accuracy: 1e-4)
        }
        XCTAssertEqual(LambdaRescale.rescale(0.1, k: 0.25), (4.0 / 3 * 0.001 - 0.02 + 0.125) / (1.25 - 2.0 / 3), accuracy: 1e-12)
        XCTAssertEqual(LambdaRescale.rescale(0.3, k: -1), 0.3)
        // k is clipped at 10.
        XCTAssertEqual(LambdaRescale.rescale(0.2, k: 50), LambdaRescale.rescale(0.2, k: 10))
    }

    // MARK: mask loss

    /// Sample 0: [0, 1, 0, 1] (mean 0.5, variance 0.25); sample 1: [0.2 × 4] (mean 0.2, variance 0).
    private func handMask() throws -> Tensor {
        try Tensor([0, 1, 0, 1, 0.2, 0.2, 0.2, 0.2], shape: [2, 1, 2, 2])
    }

    func testMaskLossHandComputedValues() throws {
        let m = try handMask(), lam: Float = 0.25
        func value(_ mode: MaskLoss.Mode, _ scope: MaskLoss.Scope) throws -> Float {
            try MaskLoss(mode: mode, scope: scope)(partnerMask: m, lam: lam).data[0]
        }
        // Per sample: r₀ = 1 − 0.5 − 0.25 = 0.25, r₁ = 1 − 0.2 − 0.25 = 0.55.
        XCTAssertEqual(try value(.l1, .sample), (0.15 + 0.45) / 2, accuracy: 1e-6)
        XCTAssertEqual(try value(.l1Variance, .sample), ((0.15 - 2 * 0.25) + 0.45) / 2, accuracy: 1e-6)
        XCTAssertEqual(try value(.l2Variance, .sample), ((0.0625 - 0.01 - 0.5) + (0.3025 - 0.01)) / 2, accuracy: 1e-6)
        XCTAssertEqual(try value(.sparsity, .sample), (0 + (0.16 - 0.1)) / 2, accuracy: 1e-6)
        // Whole batch (OpenMixup): m̄ = 0.35, r = 0.4, Var = 1.18 / 8.
        XCTAssertEqual(try value(.l1, .batch), 0.3, accuracy: 1e-6)
        XCTAssertEqual(try value(.l1Variance, .batch), 0.3 - 2 * 0.1475, accuracy: 1e-6)
        // Inside the margin: r = 1 − 0.35 − 0.6 = 0.05 < 0.1 → only the variance term.
        XCTAssertEqual(try MaskLoss(mode: .l1Variance, scope: .batch)(partnerMask: m, lam: 0.6).data[0], -0.295, accuracy: 1e-6)
        XCTAssertEqual(try MaskLoss(mode: .l1, margin: 0.3, scope: .batch)(partnerMask: m, lam: 0.25).data[0], 0.1, accuracy: 1e-6)
    }

    func testConstantMaskOneMinusLambdaGivesZero() throws {
        for lam: Float in [0.1, 0.37, 0.5, 0.9] {
            let m = try Tensor(repeating: 1 - lam, shape: [3, 1, 4, 4])
            for mode in [MaskLoss.Mode.l1, .l1Variance, .l2Variance] {
                for scope in [MaskLoss.Scope.sample, .batch] {
                    let v = try MaskLoss(mode: mode, scope: scope)(partnerMask: m, lam: lam).data[0]
                    XCTAssertEqual(v, 0, accuracy: 1e-6, "\(mode) \(scope) λ=\(lam)")
                }
            }
        }
    }

    func testMaskStatisticsOfTheTrainingRecords() throws {
        // Sample 0 binary half/half (spatial std 0.5, own share 0.5), sample 1 constant 0.2 (std 0, own 0.8).
        let m1 = try Tensor([0, 1, 0, 1, 0.2, 0.2, 0.2, 0.2], shape: [2, 1, 2, 2])
        XCTAssertEqual(LearnedMixing.meanSpatialStd(m1), 0.25, accuracy: 1e-7)
        XCTAssertEqual(LearnedMixing.meanAbsGap(m1, lam: 0.6), (0.1 + 0.2) / 2, accuracy: 1e-6)
    }

    func testMaskLossGradients() throws {
        // Values in (0.05, 0.95), λ chosen so that no group sits on the margin kink.
        for mode in MaskLoss.Mode.allCases {
            for scope in [MaskLoss.Scope.sample, .batch] {
                let loss = try MaskLoss(mode: mode, scope: scope)
                let m = try TestData.uniform([3, 1, 3, 3], seed: 41, lo: 0.05, hi: 0.95)
                assertGradients([m], checker: GradCheck(eps: 1e-3, rtol: 1e-2, atol: 1e-4)) {
                    try loss(partnerMask: $0[0], lam: 0.15)
                }
            }
        }
    }

    // MARK: η-balanced Mixer objective

    func testLocalTermHandValue() throws {
        let z = try Tensor([2, 0, 1, 0.5, -1, 3], shape: [2, 3])
        // Row 0: a = 0, b = 2, d = 1: 0.7·softplus(−1) + 0.3·softplus(1); row 1: a = b → 0.
        let v = try z.pairwiseMixupCrossEntropy(labelsA: [0, 1], labelsB: [2, 1], lam: 0.7).data[0]
        let sp = { (x: Double) in log(1 + exp(x)) }
        XCTAssertEqual(Double(v), (0.7 * sp(-1) + 0.3 * sp(1)) / 2, accuracy: 1e-6)
        // The local term is the two-class softmax CE: −0.7·log p_a − 0.3·log p_b.
        let pa = 1 / (1 + exp(-1.0))
        XCTAssertEqual(Double(v) * 2, -0.7 * log(pa) - 0.3 * log(1 - pa), accuracy: 1e-6)
    }

    func testMixerObjectiveModes() throws {
        let z = try TestData.uniform([4, 5], seed: 7, lo: -2, hi: 2)
        let a = [0, 1, 2, 3], b = [4, 1, 0, 2], lam: Float = 0.35
        let global = try z.mixupCrossEntropy(labelsA: a, labelsB: b, lam: lam).data[0]
        let local = try z.pairwiseMixupCrossEntropy(labelsA: a, labelsB: b, lam: lam).data[0]
        XCTAssertEqual(try MixerObjectiveLoss.mixupCrossEntropy(logits: z, labelsA: a, labelsB: b, lam: lam).data[0], global)
        XCTAssertEqual(try MixerObjectiveLoss.etaBalanced(eta: 0.5)(logits: z, labelsA: a, labelsB: b, lam: lam).data[0],
                       local + 0.5 * global, accuracy: 1e-6)
        XCTAssertEqual(try MixerObjectiveLoss.etaBalanced(eta: 0)(logits: z, labelsA: a, labelsB: b, lam: lam).data[0],
                       local, accuracy: 1e-7)
        // BCE by hand for row 0 (a = 0, b = 4) of a one-row batch.
        let row = try z.narrow(axis: 0, start: 0, length: 1)
        let bce = try row.mixupSigmoidBCE(labelsA: [0], labelsB: [4], lam: lam, negativeWeight: 0.5).data[0]
        var want = 0.0
        for c in 0..<5 {
            let x = Double(row.data[c]), sp = log(1 + exp(x))
            if c == 0 { want += sp - 0.35 * x } else if c == 4 { want += sp - 0.65 * x } else { want += 0.5 * sp }
        }
        XCTAssertEqual(Double(bce), want, accuracy: 1e-5)
    }

    func testMixerObjectiveGradients() throws {
        let a = [0, 1, 2, 3, 1], b = [4, 1, 0, 2, 3]
        let z = try TestData.uniform([5, 5], seed: 8, lo: -2, hi: 2)
        let c = GradCheck(eps: 1e-3, rtol: 1e-2, atol: 1e-4)
        assertGradients([z], checker: c) { try $0[0].pairwiseMixupCrossEntropy(labelsA: a, labelsB: b, lam: 0.3) }
        assertGradients([z], checker: c) {
            try MixerObjectiveLoss.etaBalanced(eta: 0.5)(logits: $0[0], labelsA: a, labelsB: b, lam: 0.8)
        }
        assertGradients([z], checker: c) { try $0[0].mixupSigmoidBCE(labelsA: a, labelsB: b, lam: 0.6, negativeWeight: 0.5) }
    }

    // MARK: mixing with a partner mask

    func testMaskedMixingValuesAndGradients() throws {
        let x = try TestData.uniform([3, 2, 2, 2], seed: 9)
        let m = try TestData.uniform([3, 1, 2, 2], seed: 10, lo: 0, hi: 1)
        let perm = [2, 0, 1]
        let y = try x.mixed(withPartners: perm, partnerMask: m)
        for n in 0..<3 { for c in 0..<2 { for p in 0..<4 {
            let own = x.data[(n * 2 + c) * 4 + p], partner = x.data[(perm[n] * 2 + c) * 4 + p], w = m.data[n * 4 + p]
            XCTAssertEqual(y.data[(n * 2 + c) * 4 + p], own * (1 - w) + partner * w, accuracy: 1e-6)
        } } }
        assertGradients([x, m]) { try $0[0].mixed(withPartners: perm, partnerMask: $0[1]) }
        // A constant mask M₁ ≡ 1 − λ is Mixup.
        let lam: Float = 0.3
        let c = try x.mixed(withPartners: perm, partnerMask: try Tensor(repeating: 1 - lam, shape: [3, 1, 2, 2]))
        let mix = try x * lam + (try x.gatherRows(perm)) * (1 - lam)
        for i in 0..<c.count { XCTAssertEqual(c.data[i], mix.data[i], accuracy: 1e-6) }
    }
}
