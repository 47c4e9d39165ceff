import XCTest
import SAMix
@testable import SAMixCore
@testable import SAMixOps
@testable import SAMixNN
@testable import SAMixData
@testable import SAMixMixing
@testable import SAMixTraining

/// Autodiff semantics: accumulation, frozen parameters, inference mode, stop-gradient, graph reuse.
final class AutodiffTests: XCTestCase {
    func testGradientsAccumulateAcrossBackwardCalls() throws {
        let w = try Tensor([2, 3], shape: [2]); w.requiresGrad = true
        let x = try Tensor([1, 4], shape: [2])
        try (w * x).sum().backward()
        XCTAssertEqual(w.grad?.scalars, [1, 4])
        try (w * x).sum().backward()
        XCTAssertEqual(w.grad?.scalars, [2, 8])
    }

    func testSharedSubexpressionGetsSummedGradient() throws {
        let a = try Tensor([3], shape: [1]); a.requiresGrad = true
        let b = try a * a          // b = a², used twice below
        let y = try (b + b * a).sum()   // y = a² + a³, dy/da = 2a + 3a² = 6 + 27
        try y.backward()
        XCTAssertEqual(a.grad?.scalars.first ?? 0, 33, accuracy: 1e-5)
    }

    func testFrozenParameterPassesGradientToItsInput() throws {
        var rng = SplitMix64(seed: 3)
        let conv = try Conv2d(2, 3, kernelSize: 3, padding: 1, rng: &rng)
        conv.setRequiresGrad(false)
        let x = try Tensor(uninitializedShape: [1, 2, 4, 4])
        for i in 0..<x.count { x.data[i] = Float(rng.normal()) }
        x.requiresGrad = true
        try conv(x).sum().backward()
        XCTAssertNil(conv.weight.grad, "frozen weight must not receive a gradient")
        XCTAssertNotNil(x.grad)
        XCTAssertGreaterThan(x.grad!.scalars.map(abs).reduce(0, +), 0)
    }

    func testInferenceModeRecordsNothing() throws {
        let net = try ModelZoo.make("resnet20", numClasses: 4, seed: 0)
        let x = try Tensor(zeros: [2, 3, 8, 8])
        let y = try GradMode.withDisabled { try net(x) }
        XCTAssertFalse(y.requiresGrad)
        XCTAssertFalse(y.hasGradFn)
        XCTAssertThrowsError(try y.sum().backward())
        XCTAssertTrue(GradMode.isEnabled, "mode restored after the block")
    }

    func testDetachStopsGradient() throws {
        let a = try Tensor([2], shape: [1]); a.requiresGrad = true
        let y = try (a * a.detached()).sum()   // d/da = a (detached factor is a constant)
        try y.backward()
        XCTAssertEqual(a.grad?.scalars, [2])
    }

    func testGraphDoesNotKeepActivationsNoBackwardCaptured() throws {
        // a = 2x is an intermediate whose storage only ReLU's input would hold; ReLU's backward keeps its
        // output, so once the caller drops `a`, nothing may keep it alive — the graph links nodes.
        let x = try Tensor([-1, 2, 3, -4], shape: [4]); x.requiresGrad = true
        weak var intermediate: Tensor?
        let y: Tensor
        do {
            let a = try x * 2
            intermediate = a
            y = try a.relu()
        }
        XCTAssertNil(intermediate, "the autodiff graph keeps an activation no backward needs")
        try y.sum().backward()
        XCTAssertEqual(x.grad?.scalars, [0, 2, 2, 0])
    }

    func testSecondBackwardThroughFreedGraphThrows() throws {
        let a = try Tensor([2], shape: [1]); a.requiresGrad = true
        let y = try (a * a).sum()
        try y.backward()
        XCTAssertThrowsError(try y.backward())
    }

    func testBackwardOnNonScalarNeedsGradient() throws {
        let a = try Tensor([1, 2], shape: [2]); a.requiresGrad = true
        let y = try a * 3
        XCTAssertThrowsError(try y.backward())
        try y.backward(gradient: try Tensor([1, 1], shape: [2]))
        XCTAssertEqual(a.grad?.scalars, [3, 3])
    }
}
