import XCTest
import SAMix
@testable import SAMixCore
@testable import SAMixOps
@testable import SAMixNN
@testable import SAMixData
@testable import SAMixMixing
@testable import SAMixTraining

/// Optimizers and schedules against hand-computed reference updates.
final class OptimTests: XCTestCase {
    private func param(_ v: [Float]) throws -> Tensor {
        let p = try Tensor(v, shape: [v.count]); p.requiresGrad = true; return p
    }

    func testSGDMomentumWeightDecayMatchesPyTorchFormula() throws {
        let p = try param([1, -2])
        let opt = try SGD([("p", p)], lr: 0.1, momentum: 0.9, weightDecay: 0.01)
        // Reference: PyTorch SGD semantics written out in Double.
        var theta: [Double] = [1, -2], buf: [Double] = [0, 0]
        let grads: [[Float]] = [[0.5, -1], [0.25, 0.75], [-0.5, 0.1]]
        for (t, g) in grads.enumerated() {
            p.grad = try Tensor(g, shape: [2])
            try opt.step()
            for j in 0..<2 {
                let d = Double(g[j]) + 0.01 * theta[j]
                buf[j] = t == 0 ? d : 0.9 * buf[j] + d
                theta[j] -= 0.1 * buf[j]
            }
            for j in 0..<2 { XCTAssertEqual(Double(p.data[j]), theta[j], accuracy: 1e-6) }
        }
    }

    func testSGDNesterov() throws {
        let p = try param([2])
        let opt = try SGD([("p", p)], lr: 0.5, momentum: 0.5, nesterov: true)
        var theta = 2.0, buf = 0.0
        for (t, g) in [1.0, 2.0, -1.0].enumerated() {
            p.grad = try Tensor([Float(g)], shape: [1])
            try opt.step()
            buf = t == 0 ? g : 0.5 * buf + g
            theta -= 0.5 * (g + 0.5 * buf)
            XCTAssertEqual(Double(p.data[0]), theta, accuracy: 1e-6)
        }
    }

    func testSGDSkipsParametersWithoutGradientAndFrozenOnes() throws {
        let a = try param([1]), b = try param([1])
        let frozen = try param([1]); frozen.requiresGrad = false
        let opt = try SGD([("a", a), ("b", b), ("f", frozen)], lr: 1)
        XCTAssertEqual(opt.namedParameters.map { $0.0 }, ["a", "b"])
        a.grad = try Tensor([1], shape: [1])
        try opt.step()
        XCTAssertEqual(a.data[0], 0)
        XCTAssertEqual(b.data[0], 1)
    }

    func testAdamWMatchesReference() throws {
        let p = try param([0.5, -0.5])
        let opt = try AdamW([("p", p)], lr: 0.01, beta1: 0.9, beta2: 0.99, epsilon: 1e-8, weightDecay: 0.1)
        var theta: [Double] = [0.5, -0.5], m: [Double] = [0, 0], v: [Double] = [0, 0]
        for t in 1...4 {
            let g: [Double] = [Double(t) * 0.1, -0.3]
            p.grad = try Tensor(g.map(Float.init), shape: [2])
            try opt.step()
            for j in 0..<2 {
                theta[j] *= 1 - 0.01 * 0.1
                m[j] = 0.9 * m[j] + 0.1 * g[j]
                v[j] = 0.99 * v[j] + 0.01 * g[j] * g[j]
                let mh = m[j] / (1 - pow(0.9, Double(t))), vh = v[j] / (1 - pow(0.99, Double(t)))
                theta[j] -= 0.01 * mh / (vh.squareRoot() + 1e-8)
                XCTAssertEqual(Double(p.data[j]), theta[j], accuracy: 1e-5)
            }
        }
    }

    func testOptimizerStateRoundTripGivesIdenticalContinuation() throws {
        func run(resumeAt: Int?) throws -> [Float] {
            let p = try param([1, 2, 3])
            var opt = try SGD([("p", p)], lr: 0.1, momentum: 0.9)
            for t in 0..<6 {
                if t == resumeAt {
                    let state = Dictionary(uniqueKeysWithValues: try opt.stateDict())
                    opt = try SGD([("p", p)], lr: 0.1, momentum: 0.9)
                    try opt.loadStateDict(state)
                }
                p.grad = try Tensor([Float(t), 1, -Float(t)], shape: [3])
                try opt.step()
            }
            return p.scalars
        }
        XCTAssertEqual(try run(resumeAt: nil), try run(resumeAt: 3))
        // Without restoring the momentum buffer the trajectory differs, so the test can fail.
        let p = try param([1, 2, 3])
        var opt = try SGD([("p", p)], lr: 0.1, momentum: 0.9)
        for t in 0..<6 {
            if t == 3 { opt = try SGD([("p", p)], lr: 0.1, momentum: 0.9) }
            p.grad = try Tensor([Float(t), 1, -Float(t)], shape: [3])
            try opt.step()
        }
        XCTAssertNotEqual(p.scalars, try run(resumeAt: nil))
    }

    func testInvalidHyperparametersThrow() throws {
        let p = try param([1])
        XCTAssertThrowsError(try SGD([("p", p)], lr: -1))
        XCTAssertThrowsError(try SGD([("p", p)], lr: .nan))
        XCTAssertThrowsError(try SGD([("p", p)], lr: 0.1, momentum: 1.5))
        XCTAssertThrowsError(try SGD([("p", p)], lr: 0.1, nesterov: true))
        XCTAssertThrowsError(try AdamW([("p", p)], beta1: 1))
        XCTAssertThrowsError(try LearningRateSchedule(.cosine(minLR: 1), baseLR: 0.1))
    }

    func testCosineScheduleWithWarmupAndFloor() throws {
        let s = try LearningRateSchedule(.cosine(minLR: 0.01), baseLR: 0.1, warmupSteps: 10, warmupStartFactor: 0.1)
        XCTAssertEqual(s.value(step: 0, total: 100), 0.1 * 0.1 * Float((1 + cos(0.0)) / 2 * 0.9 / 0.9) * 1.0, accuracy: 1e-6)
        XCTAssertEqual(s.value(step: 5, total: 100), (0.01 + 0.09 * Float((1 + cos(Double.pi * 0.05)) / 2)) * 0.55, accuracy: 1e-6)
        XCTAssertEqual(s.value(step: 50, total: 100), 0.055, accuracy: 1e-6)
        XCTAssertEqual(s.value(step: 100, total: 100), 0.01, accuracy: 1e-6)
    }

    func testStepDecaySchedule() throws {
        let s = try LearningRateSchedule(.step(milestones: [10, 20], gamma: 0.1), baseLR: 1)
        XCTAssertEqual(s.value(step: 9, total: 30), 1)
        XCTAssertEqual(s.value(step: 10, total: 30), 0.1, accuracy: 1e-7)
        XCTAssertEqual(s.value(step: 25, total: 30), 0.01, accuracy: 1e-7)
    }

    func testMomentumScheduleMatchesSpecReferenceValues() throws {
        // Spec §2.3: CIFAR R-18, m0 = 0.999, m_end = 0.999999, s0 = 0.1.
        let m = try MomentumSchedule()
        let T = 400 * 500
        XCTAssertEqual(m.value(step: 0, total: T), 0.999)
        XCTAssertEqual(m.value(step: T / 10 - 1, total: T), 0.999)
        XCTAssertEqual(m.value(step: T / 10, total: T), 0.9990244, accuracy: 5e-8)
        XCTAssertEqual(m.value(step: T / 4, total: T), 0.9991463, accuracy: 5e-8)
        XCTAssertEqual(m.value(step: T / 2, total: T), 0.9994995, accuracy: 5e-8)
        XCTAssertEqual(m.value(step: 3 * T / 4, total: T), 0.9998527, accuracy: 5e-8)
        XCTAssertEqual(m.value(step: T, total: T), 0.999999, accuracy: 1e-12)
    }

    func testEMAUpdatesParametersOnlyAndCopyCopiesEverything() throws {
        let a = try ModelZoo.make("resnet20", numClasses: 3, seed: 1)
        let b = try ModelZoo.make("resnet20", numClasses: 3, seed: 2)
        let before = b.namedParameters()[0].1.scalars
        let src = a.namedParameters()[0].1.scalars
        b.namedBuffers()[0].1.fill(7)
        try EMA.update(target: b, source: a, momentum: 0.75)
        let after = b.namedParameters()[0].1.scalars
        for i in 0..<5 { XCTAssertEqual(after[i], 0.75 * before[i] + 0.25 * src[i], accuracy: 1e-6) }
        XCTAssertEqual(b.namedBuffers()[0].1.data[0], 7, "EMA must not touch buffers")
        try EMA.update(target: b, source: a, momentum: 1)
        XCTAssertEqual(b.namedParameters()[0].1.scalars, after, "momentum 1 means no update")
        try EMA.copy(target: b, source: a)
        for ((_, x), (_, y)) in zip(a.stateDict(), b.stateDict()) { XCTAssertEqual(x.scalars, y.scalars) }
    }
}
