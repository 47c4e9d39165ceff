import XCTest
import SAMix
@testable import SAMixCore
@testable import SAMixOps
@testable import SAMixNN
@testable import SAMixData
@testable import SAMixMixing
@testable import SAMixTraining

/// Finite-difference gradient checks for every differentiable op.
final class OpsGradTests: XCTestCase {
    private func u(_ shape: [Int], _ seed: UInt64, lo: Float = -1, hi: Float = 1, away: Float = 0) throws -> Tensor {
        try TestData.uniform(shape, seed: seed, lo: lo, hi: hi, minMagnitude: away)
    }

    // MARK: existing elementwise / shape ops

    func testAddSubBroadcast() throws {
        assertGradients([try u([2, 3, 4], 1), try u([3, 1], 2)]) { try $0[0] + $0[1] }
        assertGradients([try u([4], 3), try u([2, 3, 4], 4)]) { try $0[0] - $0[1] }
        assertGradients([try u([2, 1, 4], 5), try u([1, 3, 1], 6)]) { try $0[0] - $0[1] }
    }

    func testMulDivBroadcast() throws {
        assertGradients([try u([2, 3, 4], 7), try u([3, 1], 8)]) { try $0[0] * $0[1] }
        assertGradients([try u([2, 3], 9), try u([3], 10, lo: 0.5, hi: 2)]) { try $0[0] / $0[1] }
        assertGradients([try u([1, 3], 11, lo: 0.5, hi: 2), try u([2, 1], 12, lo: 0.5, hi: 2)]) { try $0[0] / $0[1] }
        // Same tensor used twice: gradients must accumulate.
        assertGradients([try u([5], 13)]) { try $0[0] * $0[0] }
    }

    func testAffineAndScalarOps() throws {
        assertGradients([try u([3, 2], 14)]) { try $0[0].affine(scale: -1.5, shift: 0.3) }
        assertGradients([try u([3, 2], 15)]) { try (2 - $0[0]) / 4 }
    }

    func testReshapeFlattenPermute() throws {
        let w = try u([2, 12], 16)
        assertGradients([try u([2, 3, 4], 17)]) { try $0[0].reshaped([4, -1]).reshaped([2, 12]) * w }
        assertGradients([try u([2, 3, 2, 2], 18)]) { try $0[0].flattened() * w }
        assertGradients([try u([2, 3, 4, 5], 19)]) { try $0[0].permuted([0, 2, 3, 1]) }
        assertGradients([try u([3, 4], 20)]) { try $0[0].permuted([1, 0]) }
    }

    // MARK: activations

    func testActivations() throws {
        let c = GradCheck(eps: 1e-3)
        assertGradients([try u([2, 3, 4], 21, away: 0.05)], checker: c) { try $0[0].relu() }
        assertGradients([try u([2, 3, 4], 22, away: 0.05)], checker: c) { try $0[0].leakyRelu(slope: 0.2) }
        assertGradients([try u([2, 3, 4], 23, lo: -3, hi: 3, away: 0.05)], checker: c) { try $0[0].elu(alpha: 1.5) }
        assertGradients([try u([2, 3, 4], 24, lo: -4, hi: 4)]) { try $0[0].sigmoid() }
        assertGradients([try u([2, 3, 4], 25, lo: -2, hi: 2)]) { try $0[0].tanh() }
    }

    func testLargeActivationsParallelPath() throws {
        // Above the parallel threshold; compare backward against the closed form.
        let x = try u([1 << 17], 26, lo: -3, hi: 3)
        x.requiresGrad = true
        let y = try x.sigmoid()
        let g = try u([1 << 17], 27)
        try y.backward(gradient: g)
        let gx = try XCTUnwrap(x.grad)
        for i in stride(from: 0, to: x.count, by: 997) {
            let s = 1 / (1 + expf(-x.data[i]))
            XCTAssertEqual(gx.data[i], g.data[i] * s * (1 - s), accuracy: 1e-6)
        }
    }

    // MARK: reductions

    func testReductions() throws {
        assertGradients([try u([2, 3, 4], 30)]) { try $0[0].sum() }
        assertGradients([try u([2, 3, 4], 31)]) { try $0[0].mean() }
        for axis in [0, 1, 2, -1] {
            assertGradients([try u([2, 3, 4], 32)]) { try $0[0].sum(axis: axis) }
            assertGradients([try u([2, 3, 4], 33)]) { try $0[0].mean(axis: axis, keepDims: true) }
        }
    }

    // MARK: softmax

    func testSoftmax() throws {
        for axis in [0, 1, 2, -1] {
            assertGradients([try u([2, 3, 5], 40, lo: -2, hi: 2)]) { try $0[0].softmax(axis: axis) }
            assertGradients([try u([2, 3, 5], 41, lo: -2, hi: 2)]) { try $0[0].logSoftmax(axis: axis) }
        }
    }

    // MARK: losses

    func testCrossEntropy() throws {
        let labels = [0, 4, 2]
        assertGradients([try u([3, 5], 50, lo: -2, hi: 2)]) { try $0[0].crossEntropy(labels: labels) }
        assertGradients([try u([3, 5], 51, lo: -2, hi: 2)]) {
            try $0[0].crossEntropy(labels: labels, labelSmoothing: 0.2)
        }
    }

    func testMixupCrossEntropy() throws {
        let ya = [0, 4, 2], yb = [1, 4, 3]
        assertGradients([try u([3, 5], 52, lo: -2, hi: 2)]) {
            try $0[0].mixupCrossEntropy(labelsA: ya, labelsB: yb, lam: 0.3)
        }
        assertGradients([try u([3, 5], 53, lo: -2, hi: 2)]) {
            try $0[0].mixupCrossEntropy(labelsA: ya, labelsB: yb, lam: [0.1, 0.5, 0.9], labelSmoothing: 0.1)
        }
    }

    func testSoftTargetCrossEntropy() throws {
        let t = try u([3, 5], 54, lo: 0, hi: 1)
        assertGradients([try u([3, 5], 55, lo: -2, hi: 2), t]) { try $0[0].softTargetCrossEntropy(targets: $0[1]) }
    }

    func testBinaryCrossEntropyWithLogits() throws {
        assertGradients([try u([2, 3, 2], 56, lo: -3, hi: 3), try u([2, 3, 2], 57, lo: 0, hi: 1)]) {
            try $0[0].binaryCrossEntropyWithLogits(targets: $0[1])
        }
        assertGradients([try u([4], 58, lo: -3, hi: 3), try u([4], 59, lo: 0, hi: 1)]) {
            try $0[0].binaryCrossEntropyWithLogits(targets: $0[1], mean: false)
        }
    }

    // MARK: pooling

    func testMaxPool() throws {
        let c = GradCheck(eps: 1e-3)
        assertGradients([try TestData.distinct([2, 2, 6, 6], seed: 60)], checker: c) { try $0[0].maxPool2d(kernel: 2) }
        assertGradients([try TestData.distinct([1, 2, 7, 7], seed: 61)], checker: c) {
            try $0[0].maxPool2d(kernel: 3, stride: 2, padding: 1)
        }
        assertGradients([try TestData.distinct([1, 1, 5, 6], seed: 62)], checker: c) {
            try $0[0].maxPool2d(kernel: (2, 3), stride: (1, 2), padding: (1, 1))
        }
    }

    func testAvgPool() throws {
        assertGradients([try u([2, 2, 6, 6], 63)]) { try $0[0].avgPool2d(kernel: 2) }
        assertGradients([try u([1, 2, 7, 7], 64)]) { try $0[0].avgPool2d(kernel: 3, stride: 2, padding: 1) }
        assertGradients([try u([1, 2, 5, 5], 65)]) {
            try $0[0].avgPool2d(kernel: 3, stride: 2, padding: 1, countIncludePad: false)
        }
        assertGradients([try u([2, 3, 4, 5], 66)]) { try $0[0].globalAvgPool2d() }
    }

    // MARK: concat / narrow / split

    func testConcatNarrowSplit() throws {
        for axis in [0, 1, 3, -1] {
            var a = [2, 3, 2, 2], b = a
            a[(axis + 4) % 4] = 1
            b[(axis + 4) % 4] = 3
            assertGradients([try u(a, 70), try u(b, 71), try u(a, 72)]) {
                try Tensor.concat($0, axis: axis)
            }
        }
        // Only some inputs need gradients.
        assertGradients([try u([2, 1, 3], 73), try u([2, 2, 3], 74)], wrt: [1]) { try Tensor.concat($0, axis: 1) }
        assertGradients([try u([2, 5, 3], 75)]) { try $0[0].narrow(axis: 1, start: 1, length: 3) }
        assertGradients([try u([4, 3], 76)]) { try $0[0].narrow(axis: 0, start: 3, length: 1) }
        assertGradients([try u([2, 5, 3], 77)]) { inputs in
            let parts = try inputs[0].split(axis: 1, sizes: [2, 0, 3])
            return try parts[0].sum(axis: 1) * parts[2].mean(axis: 1)
        }
    }

    // MARK: matmul

    func testMatMul2D() throws {
        for tA in [false, true] {
            for tB in [false, true] {
                let a = try u(tA ? [4, 3] : [3, 4], 80), b = try u(tB ? [5, 4] : [4, 5], 81)
                assertGradients([a, b]) { try Tensor.matmul($0[0], $0[1], transposeA: tA, transposeB: tB) }
            }
        }
    }

    func testMatMulBatched() throws {
        for tA in [false, true] {
            for tB in [false, true] {
                let a = try u(tA ? [2, 4, 3] : [2, 3, 4], 82), b = try u(tB ? [2, 5, 4] : [2, 4, 5], 83)
                assertGradients([a, b]) { try $0[0].matmul($0[1], transposeA: tA, transposeB: tB) }
            }
        }
        // Gradient only for one side.
        assertGradients([try u([2, 3, 4], 84), try u([2, 4, 2], 85)], wrt: [1]) { try $0[0].matmul($0[1]) }
    }

    // MARK: upsampling

    func testUpsample() throws {
        assertGradients([try u([2, 2, 3, 4], 90)]) { try $0[0].upsampleNearest(factor: 2) }
        assertGradients([try u([1, 2, 2, 3], 91)]) { try $0[0].upsampleNearest(factorH: 3, factorW: 1) }
        assertGradients([try u([2, 2, 3, 4], 92)]) { try $0[0].upsampleBilinear(factor: 2) }
        assertGradients([try u([1, 1, 3, 2], 93)]) { try $0[0].upsampleBilinear(factorH: 3, factorW: 4) }
        assertGradients([try u([1, 2, 1, 1], 94)]) { try $0[0].upsampleBilinear(factor: 4) }
    }

    // MARK: dropout

    func testDropout() throws {
        // The generator is re-seeded inside the closure so every evaluation uses the same mask.
        assertGradients([try u([4, 50], 95)]) { inputs in
            var rng = SplitMix64(seed: 7)
            return try inputs[0].dropout(p: 0.4, training: true, rng: &rng)
        }
    }

    // MARK: composite graph

    func testSmallNetworkEndToEnd() throws {
        // pool → upsample → concat → softmax → matmul → cross-entropy, all through one backward pass.
        let labels = [1, 0]
        assertGradients([try u([2, 1, 4, 4], 96), try u([8, 3], 97)]) { inputs in
            let x = inputs[0], w = inputs[1]
            let pooled = try x.avgPool2d(kernel: 2)
            let up = try pooled.upsampleBilinear(factor: 2).tanh()
            let both = try Tensor.concat([x, up], axis: 1)               // [2, 2, 4, 4]
            let feat = try both.reshaped([2, 2, 16]).softmax(axis: 2).mean(axis: 2) * 4  // [2, 2]
            let wide = try Tensor.concat([feat, feat.sigmoid(), feat.elu(), feat.leakyRelu()], axis: 1)  // [2, 8]
            return try wide.matmul(w).crossEntropy(labels: labels, labelSmoothing: 0.1)
        }
    }
}
