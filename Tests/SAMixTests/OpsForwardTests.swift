import XCTest
@testable import SAMix

/// Forward values of the ops checked against hand-computed numbers.
final class OpsForwardTests: XCTestCase {
    func assertClose(_ a: [Float], _ b: [Float], tol: Float = 1e-5,
                     file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.count, b.count, "length", file: file, line: line)
        for (i, (x, y)) in zip(a, b).enumerated() where !(abs(x - y) <= tol * max(1, abs(y))) {
            XCTFail("element \(i): \(x) vs expected \(y)", file: file, line: line)
            return
        }
    }

    func testActivationsForward() throws {
        let x = try Tensor([-2, -0.5, 0, 0.5, 3], shape: [5])
        assertClose(try x.relu().scalars, [0, 0, 0, 0.5, 3])
        assertClose(try x.leakyRelu(slope: 0.1).scalars, [-0.2, -0.05, 0, 0.5, 3])
        assertClose(try x.elu(alpha: 2).scalars, [2 * (expf(-2) - 1), 2 * (expf(-0.5) - 1), 0, 0.5, 3])
        assertClose(try x.sigmoid().scalars, [-2, -0.5, 0, 0.5, 3].map { 1 / (1 + expf(-$0)) })
        assertClose(try x.tanh().scalars, [-2, -0.5, 0, 0.5, 3].map { tanhf($0) })
        // Extreme inputs stay finite.
        let big = try Tensor([-200, 200], shape: [2])
        assertClose(try big.sigmoid().scalars, [0, 1])
        XCTAssertThrowsError(try x.elu(alpha: 0))
    }

    func testReluBackwardMasks() throws {
        let x = try Tensor([-1, 2, -3, 4], shape: [2, 2])
        x.requiresGrad = true
        let y = try x.relu()
        try y.backward(gradient: try Tensor([1, 1, 1, 1], shape: [2, 2]))
        XCTAssertEqual(x.grad?.scalars, [0, 1, 0, 1])
    }
}
