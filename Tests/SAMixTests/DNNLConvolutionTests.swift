import XCTest
import SAMix
@testable import SAMixCore
@testable import SAMixOps
@testable import SAMixNN
@testable import SAMixData
@testable import SAMixMixing
@testable import SAMixTraining

/// The oneDNN convolution path (Ops/DNNLConvolution.swift) against the im2col + SGEMM path, and its
/// run-to-run reproducibility.
final class DNNLConvolutionTests: XCTestCase {
    private func random(_ shape: [Int], seed: UInt64) throws -> Tensor {
        let t = try Tensor(zeros: shape)
        var s = seed &* 0x9E37_79B9_7F4A_7C15 | 1
        for i in 0..<t.count {
            s ^= s << 13; s ^= s >> 7; s ^= s << 17
            t.data[i] = Float(s >> 40) / Float(1 << 24) - 0.5
        }
        return t
    }

    private func run(_ backend: ConvBackend, x: Tensor, w: Tensor, b: Tensor?, dy: Tensor,
                     stride: Int, padding: Int) throws -> [[Float]] {
        let saved = DNNLConvolution.backend
        DNNLConvolution.backend = backend
        defer { DNNLConvolution.backend = saved }
        let y = try conv2d(x, weight: w, bias: b, stride: stride, padding: padding)
        let g = try Conv2DGeometry(input: x.shape, weight: w.shape, stride: stride, padding: padding)
        let grads = try conv2dBackward(x: x, weight: w, dy: dy, geometry: g, needInput: true, needWeight: true,
                                       needBias: b != nil, hasBias: b != nil)
        return [y.scalars] + grads.map { $0!.scalars }
    }

    private func assertClose(_ a: [Float], _ b: [Float], _ what: String, tolerance: Float = 2e-5) {
        XCTAssertEqual(a.count, b.count, what)
        let scale = max(a.map { abs($0) }.max() ?? 0, 1e-3)
        var worst: Float = 0
        for i in 0..<min(a.count, b.count) { worst = max(worst, abs(a[i] - b[i])) }
        XCTAssertLessThanOrEqual(worst / scale, tolerance, "\(what): max |Δ| \(worst), scale \(scale)")
    }

    func testDNNLMatchesIm2colAndIsReproducible() throws {
        // [n, cin, h, w, cout, k, stride, padding, bias]
        let cases: [[Int]] = [
            [2, 3, 8, 8, 4, 3, 1, 1, 1], [3, 5, 9, 7, 6, 3, 2, 1, 0], [2, 16, 8, 8, 32, 1, 1, 0, 0],
            [2, 16, 9, 9, 32, 1, 2, 0, 1], [1, 7, 11, 13, 5, 5, 2, 2, 1], [4, 32, 6, 6, 16, 3, 1, 0, 0],
            [2, 17, 5, 5, 33, 3, 3, 1, 0], [5, 8, 4, 4, 8, 2, 1, 0, 1],
        ]
        for (i, c) in cases.enumerated() {
            let x = try random([c[0], c[1], c[2], c[3]], seed: UInt64(10 * i + 1))
            let w = try random([c[4], c[1], c[5], c[5]], seed: UInt64(10 * i + 2))
            let b = c[8] == 1 ? try random([c[4]], seed: UInt64(10 * i + 3)) : nil
            let ho = (c[2] + 2 * c[7] - c[5]) / c[6] + 1, wo = (c[3] + 2 * c[7] - c[5]) / c[6] + 1
            let dy = try random([c[0], c[4], ho, wo], seed: UInt64(10 * i + 4))
            let ref = try run(.im2col, x: x, w: w, b: b, dy: dy, stride: c[6], padding: c[7])
            let got = try run(.dnnl, x: x, w: w, b: b, dy: dy, stride: c[6], padding: c[7])
            let again = try run(.dnnl, x: x, w: w, b: b, dy: dy, stride: c[6], padding: c[7])
            for (k, name) in ["y", "dx", "dW", "db"].prefix(ref.count).enumerated() {
                assertClose(got[k], ref[k], "case \(c) \(name)")
                XCTAssertEqual(got[k], again[k], "case \(c) \(name) not bitwise reproducible")
            }
        }
    }

    /// oneDNN twice (bitwise equal) and im2col once (close within `tolerance`) on one bias-free layer.
    private func assertReproducibleAndClose(x: [Int], w: [Int], dy: [Int], stride: Int, seed: UInt64,
                                            tolerance: Float = 2e-5, _ what: String) throws {
        let xt = try random(x, seed: seed), wt = try random(w, seed: seed + 1), dyt = try random(dy, seed: seed + 2)
        let a = try run(.dnnl, x: xt, w: wt, b: nil, dy: dyt, stride: stride, padding: 1)
        let b = try run(.dnnl, x: xt, w: wt, b: nil, dy: dyt, stride: stride, padding: 1)
        XCTAssertEqual(a, b, "\(what) not bitwise reproducible")
        let ref = try run(.im2col, x: xt, w: wt, b: nil, dy: dyt, stride: stride, padding: 1)
        for (k, name) in ["y", "dx", "dW"].enumerated() { assertClose(a[k], ref[k], "\(what) \(name)", tolerance: tolerance) }
    }

    /// Batch-128 ResNet-shaped layer: dW sums over the whole batch (oneDNN's threaded reduction).
    func testBackwardWeightsReproducibleAtTrainingShape() throws {
        try assertReproducibleAndClose(x: [64, 16, 16, 16], w: [32, 16, 3, 3], dy: [64, 32, 8, 8], stride: 2, seed: 7,
                                       "training shape")
    }

    /// 3×3 stride-1 layers with ≥ 64 channels take oneDNN's Winograd F(4×4, 3×3) where it has a kernel:
    /// forward and both backward passes still match im2col (Winograd's transforms cost a little
    /// precision) and stay bitwise reproducible.
    func testWinogradShapeMatchesIm2colAndIsReproducible() throws {
        try assertReproducibleAndClose(x: [8, 64, 8, 8], w: [64, 64, 3, 3], dy: [8, 64, 8, 8], stride: 1, seed: 21,
                                       tolerance: 1e-3, "winograd")
    }
}
