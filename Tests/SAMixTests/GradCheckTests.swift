import XCTest
import SAMix
@testable import SAMixCore
@testable import SAMixOps
@testable import SAMixNN
@testable import SAMixData
@testable import SAMixMixing
@testable import SAMixTraining

/// The gradient checker itself must reject wrong gradients, or every grad test is meaningless.
final class GradCheckTests: XCTestCase {
    /// `x²` with a configurable (possibly wrong) backward `g · factor · x + bias`.
    private func square(_ x: Tensor, factor: Float, bias: Float = 0) throws -> Tensor {
        let out = try x * x.detached()
        let xd = x.detached()
        let result = try Tensor(uninitializedShape: x.shape)
        result.data.update(from: out.data, count: out.count)
        return result.recordOp("testSquare", [x]) { g in
            let gx = try Tensor(uninitializedShape: xd.shape)
            for i in 0..<xd.count { gx.data[i] = g.data[i] * (factor * xd.data[i] + bias) }
            return [gx]
        }
    }

    func testAcceptsCorrectGradient() throws {
        let x = try TestData.uniform([3, 4], seed: 1)
        let r = try GradCheck().run([x]) { try self.square($0[0], factor: 2) }
        XCTAssertTrue(r.passed, "\(r.mismatches)")
        XCTAssertEqual(r.checked, 12)
    }

    func testRejectsMissingFactor() throws {
        let x = try TestData.uniform([3, 4], seed: 2, minMagnitude: 0.2)
        let r = try GradCheck().run([x]) { try self.square($0[0], factor: 1) }
        XCTAssertFalse(r.passed)
        XCTAssertEqual(r.mismatches.count, 12, "every element is wrong by a factor 2")
    }

    func testRejectsSmallRelativeError() throws {
        // A gradient that is 5% too large must still be caught.
        let x = try TestData.uniform([3, 4], seed: 3, minMagnitude: 0.5)
        let r = try GradCheck().run([x]) { try self.square($0[0], factor: 2.1) }
        XCTAssertFalse(r.passed)
    }

    func testRejectsSignErrorAndOffset() throws {
        let x = try TestData.uniform([5], seed: 4, minMagnitude: 0.2)
        XCTAssertFalse(try GradCheck().run([x]) { try self.square($0[0], factor: -2) }.passed)
        XCTAssertFalse(try GradCheck().run([x]) { try self.square($0[0], factor: 2, bias: 0.05) }.passed)
    }

    func testRejectsGradientRoutedToWrongElement() throws {
        // Backward of a "shift by one" op that forgets to shift the gradient back.
        let x = try TestData.uniform([6], seed: 5)
        let r = try GradCheck().run([x]) { inputs in
            let a = inputs[0]
            let out = try Tensor(uninitializedShape: [6])
            for i in 0..<6 { out.data[i] = a.data[(i + 1) % 6] }
            return out.recordOp("badRoll", [a]) { g in [try g.copy()] }
        }
        XCTAssertFalse(r.passed)
    }

    func testMissingGradientThrows() throws {
        let x = try TestData.uniform([2], seed: 6), y = try TestData.uniform([2], seed: 7)
        // The closure ignores input 1, which therefore gets no gradient.
        XCTAssertThrowsError(try GradCheck().run([x, y]) { try $0[0].affine(scale: 2) })
    }
}
