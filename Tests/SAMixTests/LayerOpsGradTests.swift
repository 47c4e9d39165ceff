import XCTest
import SAMix
@testable import SAMixCore
@testable import SAMixOps
@testable import SAMixNN
@testable import SAMixData
@testable import SAMixMixing
@testable import SAMixTraining

/// Finite-difference checks of the ops written outside Ops/ core files by other engineers
/// (conv2d, batchNorm2d, linear, shortcutA, gatherRows).
final class LayerOpsGradTests: XCTestCase {
    private func u(_ shape: [Int], _ seed: UInt64, lo: Float = -1, hi: Float = 1) throws -> Tensor {
        try TestData.uniform(shape, seed: seed, lo: lo, hi: hi)
    }

    func testConv2d() throws {
        assertGradients([try u([2, 2, 5, 5], 1), try u([3, 2, 3, 3], 2), try u([3], 3)]) {
            try conv2d($0[0], weight: $0[1], bias: $0[2], stride: 1, padding: 1)
        }
        assertGradients([try u([1, 2, 6, 5], 4), try u([2, 2, 3, 3], 5)]) {
            try conv2d($0[0], weight: $0[1], stride: 2, padding: 1)
        }
        // Pointwise (1×1) path.
        assertGradients([try u([2, 3, 3, 3], 6), try u([4, 3, 1, 1], 7)]) {
            try conv2d($0[0], weight: $0[1], stride: 1, padding: 0)
        }
    }

    func testBatchNormTraining() throws {
        assertGradients([try u([3, 2, 2, 3], 10), try u([2], 11, lo: 0.5, hi: 1.5), try u([2], 12)],
                        checker: GradCheck(eps: 1e-3, rtol: 2e-2, atol: 3e-3)) {
            try batchNorm2d($0[0], gamma: $0[1], beta: $0[2], runningMean: nil, runningVar: nil, training: true)
        }
        assertGradients([try u([4, 3], 13)], checker: GradCheck(eps: 1e-3, rtol: 2e-2, atol: 3e-3)) {
            try batchNorm2d($0[0], gamma: nil, beta: nil, runningMean: nil, runningVar: nil, training: true)
        }
    }

    func testBatchNormWithFusedReLU() throws {
        // Inputs whose pre-activations stay ≥ 0.02 away from the ReLU kink (checked), so the ±eps
        // perturbations (moving them by ≤ eps·|x̂|) never cross it.
        let inputs = [try u([3, 2, 2, 3], 50), try u([2], 51, lo: 0.5, hi: 1.5), try u([2], 52)]
        let pre = try batchNorm2d(inputs[0], gamma: inputs[1], beta: inputs[2], runningMean: nil, runningVar: nil, training: true)
        XCTAssertGreaterThan(pre.scalars.map { abs($0) }.min() ?? 0, 0.02)
        assertGradients(inputs, checker: GradCheck(eps: 1e-3, rtol: 2e-2, atol: 3e-3)) {
            try batchNorm2d($0[0], gamma: $0[1], beta: $0[2], runningMean: nil, runningVar: nil, training: true, relu: true)
        }
        let rm = try u([2], 33), rv = try u([2], 34, lo: 0.5, hi: 2)
        let evalInputs = [try u([2, 2, 2, 2], 65), try u([2], 66), try u([2], 67)]
        let evalPre = try batchNorm2d(evalInputs[0], gamma: evalInputs[1], beta: evalInputs[2], runningMean: rm,
                                      runningVar: rv, training: false)
        XCTAssertGreaterThan(evalPre.scalars.map { abs($0) }.min() ?? 0, 0.05)
        assertGradients(evalInputs) {
            try batchNorm2d($0[0], gamma: $0[1], beta: $0[2], runningMean: rm, runningVar: rv, training: false, relu: true)
        }
    }

    /// The fused op computes exactly what BatchNorm then ReLU computes: outputs, running statistics
    /// and every gradient, bit for bit (training and evaluation; 8×8 planes reach the SIMD paths).
    func testFusedReLUIsBitIdenticalToBatchNormThenReLU() throws {
        for (shape, training) in [([4, 3, 8, 8], true), ([4, 3, 8, 8], false), ([3, 2, 2, 3], true), ([3, 2, 2, 3], false)] {
            var results: [[[Float]]] = []
            for fused in [false, true] {
                let c = shape[1]
                let x = try u(shape, 40), g = try u([c], 41, lo: 0.5, hi: 1.5), b = try u([c], 42)
                let rm = try u([c], 43), rv = try u([c], 44, lo: 0.5, hi: 2)
                for t in [x, g, b] { t.requiresGrad = true }
                let y = fused
                    ? try batchNorm2d(x, gamma: g, beta: b, runningMean: rm, runningVar: rv, training: training, relu: true)
                    : try batchNorm2d(x, gamma: g, beta: b, runningMean: rm, runningVar: rv, training: training).relu()
                let w = try u(shape, 45)
                try (y * w).sum().backward()
                results.append([y.scalars, rm.scalars, rv.scalars, x.grad!.scalars, g.grad!.scalars, b.grad!.scalars])
            }
            XCTAssertEqual(results[0], results[1], "\(shape), training \(training)")
        }
    }

    func testBatchNormEval() throws {
        let rm = try u([2], 14), rv = try u([2], 15, lo: 0.5, hi: 2)
        assertGradients([try u([2, 2, 2, 2], 16), try u([2], 17), try u([2], 18)]) {
            try batchNorm2d($0[0], gamma: $0[1], beta: $0[2], runningMean: rm, runningVar: rv, training: false)
        }
    }

    func testLinear() throws {
        assertGradients([try u([3, 4], 20), try u([5, 4], 21), try u([5], 22)]) {
            try linear($0[0], weight: $0[1], bias: $0[2])
        }
        assertGradients([try u([2, 3], 23), try u([2, 3], 24)]) { try linear($0[0], weight: $0[1]) }
    }

    func testShortcutA() throws {
        assertGradients([try u([2, 2, 5, 4], 30)]) { try shortcutA($0[0], outChannels: 4, stride: 2) }
        assertGradients([try u([1, 3, 3, 3], 31)]) { try shortcutA($0[0], outChannels: 3, stride: 1) }
    }

    func testGatherRows() throws {
        // Repeated and skipped rows: the backward pass must accumulate and leave zeros.
        assertGradients([try u([4, 2, 3], 40)]) { try $0[0].gatherRows([3, 0, 3, 1, 3]) }
    }
}
