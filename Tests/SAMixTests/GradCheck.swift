import XCTest
import SAMix
@testable import SAMixCore
@testable import SAMixOps
@testable import SAMixNN
@testable import SAMixData
@testable import SAMixMixing
@testable import SAMixTraining

/// Finite-difference gradient checker.
///
/// For a function `f(inputs) -> Tensor`, the loss is `L = Σ out ⊙ W` with fixed random weights `W`
/// (or `L = out` itself when `f` returns one element). The analytic gradient comes from
/// `backward()`; the numeric one from central differences
/// `(L(x + ε eᵢ) − L(x − ε eᵢ)) / 2ε`, where each `L` is accumulated in Double from the float32
/// outputs. An element passes when `|a − n| ≤ atol + rtol · max(|a|, |n|)`.
///
/// Inputs are perturbed in place (and restored), so `f` must read them afresh on every call and
/// must be deterministic (same RNG seed inside for stochastic ops).
struct GradCheck {
    var eps: Float = 1e-2
    var rtol: Double = 1e-2
    var atol: Double = 2e-3
    /// Seed of the projection weights `W`.
    var seed: UInt64 = 1234

    struct Mismatch: CustomStringConvertible {
        var input: Int
        var element: Int
        var analytic: Double
        var numeric: Double
        var description: String {
            "input \(input) element \(element): analytic \(analytic) vs numeric \(numeric)"
        }
    }

    struct Report {
        var checked = 0
        var mismatches: [Mismatch] = []
        var maxAbsError = 0.0
        var passed: Bool { mismatches.isEmpty && checked > 0 }
    }

    /// Runs the check. Indices in `wrt` select which inputs get gradients (default: all).
    func run(_ inputs: [Tensor], wrt: [Int]? = nil, _ f: ([Tensor]) throws -> Tensor) throws -> Report {
        let targets = wrt ?? Array(inputs.indices)
        for (i, t) in inputs.enumerated() {
            t.requiresGrad = targets.contains(i)
            t.grad = nil
        }
        // Analytic pass.
        let out = try f(inputs)
        let weights = try projection(for: out)
        guard out.requiresGrad else {
            throw SAMixError.invalidState("gradcheck: output does not require grad")
        }
        if let w = weights { try out.backward(gradient: w) } else { try out.backward() }
        var report = Report()
        for i in targets {
            let x = inputs[i]
            guard let g = x.grad else {
                throw SAMixError.invalidState("gradcheck: input \(i) received no gradient")
            }
            try requireShape(g.count == x.count, "gradcheck: gradient of input \(i) has shape \(g.shape), input \(x.shape)")
            let analytic = g.scalars
            for e in 0..<x.count {
                let saved = x.data[e]
                x.data[e] = saved + eps
                let lp = try GradMode.withDisabled { try loss(f(inputs), weights) }
                x.data[e] = saved - eps
                let lm = try GradMode.withDisabled { try loss(f(inputs), weights) }
                x.data[e] = saved
                // The actual perturbation is what float32 could represent.
                let h = Double(saved + eps) - Double(saved - eps)
                let numeric = (lp - lm) / h
                let a = Double(analytic[e])
                let err = abs(a - numeric)
                report.checked += 1
                report.maxAbsError = Swift.max(report.maxAbsError, err)
                if !(err <= atol + rtol * Swift.max(abs(a), abs(numeric))) {
                    report.mismatches.append(Mismatch(input: i, element: e, analytic: a, numeric: numeric))
                }
            }
        }
        for t in inputs { t.requiresGrad = false; t.grad = nil }
        return report
    }

    private func projection(for out: Tensor) throws -> Tensor? {
        if out.count == 1 { return nil }
        var rng = SplitMix64(seed: seed)
        return try Tensor((0..<out.count).map { _ in Float(rng.uniform() * 2 - 1) }, shape: out.shape)
    }

    private func loss(_ out: Tensor, _ w: Tensor?) throws -> Double {
        var s = 0.0
        if let w = w {
            try requireShape(w.count == out.count, "gradcheck: output shape changed to \(out.shape)")
            for i in 0..<out.count { s += Double(out.data[i]) * Double(w.data[i]) }
        } else {
            s = Double(out.data[0])
        }
        return s
    }
}

/// Random test inputs.
enum TestData {
    /// Uniform values in [lo, hi); with `minMagnitude` > 0, values closer to 0 are pushed away
    /// (keeps inputs of relu-like ops off their kink).
    static func uniform(_ shape: [Int], seed: UInt64, lo: Float = -1, hi: Float = 1,
                        minMagnitude: Float = 0) throws -> Tensor {
        var rng = SplitMix64(seed: seed)
        let n = shape.reduce(1, *)
        let v: [Float] = (0..<n).map { _ in
            var x = lo + (hi - lo) * rng.uniform()
            if abs(x) < minMagnitude { x = x < 0 ? x - minMagnitude : x + minMagnitude }
            return x
        }
        return try Tensor(v, shape: shape)
    }

    /// A random permutation of evenly spaced values (distinct, at least `gap` apart): no ties
    /// for max pooling.
    static func distinct(_ shape: [Int], seed: UInt64, gap: Float = 0.05) throws -> Tensor {
        var rng = SplitMix64(seed: seed)
        let n = shape.reduce(1, *)
        let perm = rng.permutation(n)
        return try Tensor(perm.map { Float($0 - n / 2) * gap }, shape: shape)
    }
}

extension XCTestCase {
    /// Asserts that the analytic gradients of `f` match finite differences.
    func assertGradients(_ inputs: [Tensor], wrt: [Int]? = nil, checker: GradCheck = GradCheck(),
                         file: StaticString = #filePath, line: UInt = #line,
                         _ f: @escaping ([Tensor]) throws -> Tensor) {
        do {
            let r = try checker.run(inputs, wrt: wrt, f)
            XCTAssertGreaterThan(r.checked, 0, "nothing checked", file: file, line: line)
            if !r.mismatches.isEmpty {
                let head = r.mismatches.prefix(3).map(\.description).joined(separator: "; ")
                XCTFail("\(r.mismatches.count)/\(r.checked) gradient mismatches: \(head)", file: file, line: line)
            }
        } catch {
            XCTFail("gradcheck threw: \(error)", file: file, line: line)
        }
    }
}
