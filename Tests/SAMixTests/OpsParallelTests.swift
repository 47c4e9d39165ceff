import XCTest
import SAMix
@testable import SAMixCore
@testable import SAMixOps
@testable import SAMixNN
@testable import SAMixData
@testable import SAMixMixing
@testable import SAMixTraining

/// Large inputs take the multi-threaded paths of the ops; their forward values and gradients must
/// agree with a single-threaded run (the finite-difference tests use small, single-threaded sizes).
final class OpsParallelTests: XCTestCase {
    /// Forward output and input gradients of `f` on `inputs` with `threads` workers.
    private func run(threads: Int, _ inputs: [Tensor], _ f: ([Tensor]) throws -> Tensor) throws -> [[Float]] {
        let saved = Engine.threads
        Engine.threads = threads
        defer { Engine.threads = saved }
        for t in inputs { t.requiresGrad = true; t.grad = nil }
        let y = try f(inputs)
        let w = try TestData.uniform(y.shape, seed: 99)
        try y.backward(gradient: w)
        let result = [y.scalars] + inputs.map { $0.grad?.scalars ?? [] }
        for t in inputs { t.requiresGrad = false; t.grad = nil }
        return result
    }

    private func assertThreadInvariant(_ inputs: [Tensor], tol: Float = 1e-5,
                                       file: StaticString = #filePath, line: UInt = #line,
                                       _ f: ([Tensor]) throws -> Tensor) {
        do {
            let one = try run(threads: 1, inputs, f)
            let many = try run(threads: 3, inputs, f)
            for (k, (a, b)) in zip(one, many).enumerated() {
                XCTAssertEqual(a.count, b.count, file: file, line: line)
                XCTAssertFalse(a.isEmpty, "result \(k) is empty", file: file, line: line)
                if let i = a.indices.first(where: { !(abs(a[$0] - b[$0]) <= tol * max(1, abs(a[$0]))) }) {
                    XCTFail("result \(k) element \(i): 1 thread \(a[i]) vs 3 threads \(b[i])", file: file, line: line)
                }
            }
        } catch {
            XCTFail("threw \(error)", file: file, line: line)
        }
    }

    func testElementwiseAndReductions() throws {
        let x = try TestData.uniform([8, 16, 32, 32], seed: 1, lo: -3, hi: 3)
        assertThreadInvariant([x]) { try $0[0].relu() }
        assertThreadInvariant([x]) { try $0[0].elu() }
        assertThreadInvariant([x]) { try $0[0].tanh() }
        assertThreadInvariant([x], tol: 1e-4) { try $0[0].sum() }
        assertThreadInvariant([x]) { try $0[0].mean(axis: 1) }
        assertThreadInvariant([x]) { try $0[0].sum(axis: 3, keepDims: true) }
    }

    func testSoftmaxAndLosses() throws {
        let x = try TestData.uniform([8, 16, 32, 32], seed: 2, lo: -3, hi: 3)
        assertThreadInvariant([x]) { try $0[0].softmax(axis: 1) }
        assertThreadInvariant([x]) { try $0[0].logSoftmax(axis: -1) }
        let logits = try TestData.uniform([512, 100], seed: 3, lo: -5, hi: 5)
        let labels = (0..<512).map { ($0 * 37) % 100 }
        assertThreadInvariant([logits]) { try $0[0].crossEntropy(labels: labels, labelSmoothing: 0.1) }
        let t = try TestData.uniform([512, 100], seed: 4, lo: 0, hi: 1)
        assertThreadInvariant([logits, t]) { try $0[0].softTargetCrossEntropy(targets: $0[1]) }
        assertThreadInvariant([logits, t], tol: 1e-4) { try $0[0].binaryCrossEntropyWithLogits(targets: $0[1]) }
    }

    func testPoolingUpsampleConcat() throws {
        let x = try TestData.uniform([8, 16, 32, 32], seed: 5)
        assertThreadInvariant([x]) { try $0[0].maxPool2d(kernel: 3, stride: 2, padding: 1) }
        assertThreadInvariant([x]) { try $0[0].avgPool2d(kernel: 2) }
        assertThreadInvariant([x]) { try $0[0].globalAvgPool2d() }
        let small = try TestData.uniform([8, 16, 8, 8], seed: 6)
        assertThreadInvariant([small]) { try $0[0].upsampleBilinear(factor: 4) }
        assertThreadInvariant([small]) { try $0[0].upsampleNearest(factor: 4) }
        let y = try TestData.uniform([8, 8, 32, 32], seed: 7)
        assertThreadInvariant([x, y]) { try Tensor.concat($0, axis: 1) }
        assertThreadInvariant([x]) { try $0[0].narrow(axis: 1, start: 3, length: 10) }
    }

    func testMatMulAndDropout() throws {
        let a = try TestData.uniform([4, 64, 48], seed: 8), b = try TestData.uniform([4, 48, 32], seed: 9)
        assertThreadInvariant([a, b], tol: 1e-4) { try $0[0].matmul($0[1]) }
        let c = try TestData.uniform([200, 64], seed: 10), d = try TestData.uniform([48, 64], seed: 11)
        assertThreadInvariant([c, d], tol: 1e-4) { try $0[0].matmul($0[1], transposeB: true) }
        let x = try TestData.uniform([100_000], seed: 12)
        assertThreadInvariant([x]) { inputs in
            var rng = SplitMix64(seed: 3)
            return try inputs[0].dropout(p: 0.2, training: true, rng: &rng)
        }
    }
}
