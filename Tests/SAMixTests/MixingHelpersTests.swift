import XCTest
import Foundation
import SAMix
@testable import SAMixCore
@testable import SAMixOps
@testable import SAMixNN
@testable import SAMixData
@testable import SAMixMixing
@testable import SAMixTraining

// Test-side references for the mixing policies: naive per-pixel mixing, Beta CDF by numeric
// integration, Kolmogorov–Smirnov statistic, and a generic property checker run for every policy.

enum MixRef {
    /// Deterministic pseudo-random floats in [-2, 2) (independent of the engine's RNG).
    static func images(_ count: Int, seed: UInt64) -> [Float] {
        var s = seed &+ 0x1234_5678
        return (0..<count).map { _ in
            s = s &* 6364136223846793005 &+ 1442695040888963407
            return Float(Double(s >> 40) / Double(1 << 24)) * 4 - 2
        }
    }

    static func bytes(_ count: Int, seed: UInt64) -> [UInt8] {
        var s = seed &+ 0x9999
        return (0..<count).map { _ in
            s = s &* 6364136223846793005 &+ 1442695040888963407
            return UInt8(truncatingIfNeeded: s >> 56)
        }
    }

    /// NCHW → NHWC.
    static func toNHWC<T>(_ x: [T], _ s: ImageBatchShape) -> [T] {
        var out = x
        for b in 0..<s.batch { for c in 0..<s.channels { for y in 0..<s.height { for xx in 0..<s.width {
            out[((b * s.height + y) * s.width + xx) * s.channels + c] = x[((b * s.channels + c) * s.height + y) * s.width + xx]
        } } } }
        return out
    }

    /// Partner-weight map of sample i, computed here from the op (not with the engine's helper).
    /// nil for `.resizedBox` (not expressible as a per-pixel blend).
    static func weightMap(_ r: MixResult, _ i: Int) -> [Float]? {
        let H = r.height, W = r.width
        switch r.ops[i] {
        case .keep: return [Float](repeating: 0, count: H * W)
        case .blend(let l): return [Float](repeating: 1 - l, count: H * W)
        case .mask(let k): return Array(r.masks[(k * H * W)..<((k + 1) * H * W)])
        case .box(let b):
            var m = [Float](repeating: 0, count: H * W)
            for y in 0..<H { for x in 0..<W where y >= b.y0 && y < b.y1 && x >= b.x0 && x < b.x1 { m[y * W + x] = 1 } }
            return m
        case .resizedBox: return nil
        }
    }

    /// Naive reference of the mixed batch (NCHW Float): x̃ = (1−M)·x + M·x[π] (Mixup: λx + (1−λ)x[π];
    /// ResizeMix: nearest-resized partner inside the box). Self-paired samples are unchanged.
    static func mix(_ x: [Float], _ s: ImageBatchShape, _ r: MixResult) -> [Float] {
        var out = x
        let C = s.channels, H = s.height, W = s.width, n = C * H * W
        for i in 0..<s.batch {
            let j = r.partner[i]
            if j == i, case .resizedBox = r.ops[i] {} else if j == i { continue }
            for c in 0..<C { for y in 0..<H { for xx in 0..<W {
                let o = c * H * W + y * W + xx
                let a = x[i * n + o], b = x[j * n + o]
                var v: Float
                switch r.ops[i] {
                case .keep: v = a
                case .blend(let l): v = l * a + (1 - l) * b
                case .resizedBox(let bx):
                    if bx.contains(y: y, x: xx) {
                        let sy = (y - bx.y0) * H / (bx.y1 - bx.y0), sx = (xx - bx.x0) * W / (bx.x1 - bx.x0)
                        v = x[j * n + c * H * W + sy * W + sx]
                    } else { v = a }
                default:
                    let m = weightMap(r, i)![y * W + xx]
                    v = (1 - m) * a + m * b
                }
                out[i * n + o] = v
            } } }
        }
        return out
    }

    /// Soft targets by the textbook formula.
    static func targets(labels: [Int], K: Int, eps: Float, lam: [Float], partner: [Int]) -> [Float] {
        var t = [Float](repeating: 0, count: labels.count * K)
        for i in 0..<labels.count {
            for k in 0..<K {
                let sa: Float = (labels[i] == k ? 1 - eps : 0) + eps / Float(K)
                let sb: Float = (labels[partner[i]] == k ? 1 - eps : 0) + eps / Float(K)
                t[i * K + k] = lam[i] * sa + (1 - lam[i]) * sb
            }
        }
        return t
    }

    /// Regularised incomplete Beta I_x(a, b) by Simpson integration after the substitutions u = t^a
    /// (left half) and v = (1−t)^b (right half), which remove the endpoint singularities for a, b < 1.
    static func betaCDF(_ x: Double, _ a: Double, _ b: Double) -> Double {
        func simpson(_ f: (Double) -> Double, _ lo: Double, _ hi: Double, _ n: Int = 2000) -> Double {
            if hi <= lo { return 0 }
            let h = (hi - lo) / Double(n)
            var s = f(lo) + f(hi)
            for i in 1..<n { s += (i % 2 == 1 ? 4 : 2) * f(lo + Double(i) * h) }
            return s * h / 3
        }
        // ∫_0^c t^(a−1)(1−t)^(b−1) dt = (1/a) ∫_0^{c^a} (1 − u^(1/a))^(b−1) du, c ≤ 1/2.
        func left(_ c: Double) -> Double {
            simpson({ u in pow(1 - pow(u, 1 / a), b - 1) }, 0, pow(c, a)) / a
        }
        // ∫_c^1 t^(a−1)(1−t)^(b−1) dt = (1/b) ∫_0^{(1−c)^b} (1 − v^(1/b))^(a−1) dv, c ≥ 1/2.
        func right(_ c: Double) -> Double {
            simpson({ v in pow(1 - pow(v, 1 / b), a - 1) }, 0, pow(1 - c, b)) / b
        }
        let total = left(0.5) + right(0.5)
        if x <= 0 { return 0 }
        if x >= 1 { return 1 }
        if x <= 0.5 { return left(x) / total }
        return 1 - right(x) / total
    }

    /// Kolmogorov–Smirnov D statistic of samples against a CDF.
    static func ksStatistic(_ samples: [Double], cdf: (Double) -> Double) -> Double {
        let s = samples.sorted()
        let n = Double(s.count)
        var d = 0.0
        for (i, x) in s.enumerated() {
            let f = cdf(x)
            d = max(d, Double(i + 1) / n - f, f - Double(i) / n)
        }
        return d
    }

    /// KS critical value at significance 0.001 (c(α) = 1.949).
    static func ksCritical(_ n: Int) -> Double { 1.949 / Double(n).squareRoot() }
}

/// Properties every policy must satisfy, checked on one configuration.
func checkMixPolicy<P: MixPolicy>(_ policy: P, batch: Int, channels: Int = 3, height: Int = 8, width: Int = 8,
                                  seed: UInt64, file: StaticString = #filePath, line: UInt = #line) throws {
    let s = try ImageBatchShape(batch: batch, channels: channels, height: height, width: width)
    let x = MixRef.images(s.elementCount, seed: seed)
    // out of place
    var out = [Float](repeating: .nan, count: x.count)
    var rng = SplitMix64(seed: seed)
    let r = try x.withUnsafeBufferPointer { xp in
        try out.withUnsafeMutableBufferPointer { op in
            try policy.mix(xp.baseAddress!, into: op.baseAddress!, shape: s, rng: &rng)
        }
    }
    XCTAssertEqual(r.partner.count, batch, file: file, line: line)
    XCTAssertEqual(Set(r.partner.filter { $0 < 0 || $0 >= batch }).count, 0, file: file, line: line)
    // masks in [0, 1]; realised λ = 1 − mean(M)
    XCTAssertTrue(r.masks.allSatisfy { $0 >= 0 && $0 <= 1 }, "mask values outside [0,1]", file: file, line: line)
    for i in 0..<batch {
        XCTAssertTrue(r.lambda[i] >= 0 && r.lambda[i] <= 1, file: file, line: line)
        XCTAssertTrue(r.labelLambda[i] >= 0 && r.labelLambda[i] <= 1, file: file, line: line)
        switch r.ops[i] {
        case .resizedBox(let b):
            XCTAssertEqual(r.lambda[i], Float(1 - Double(b.area) / Double(height * width)), accuracy: 1e-6, file: file, line: line)
        default:
            let m = MixRef.weightMap(r, i)!
            let mean = m.reduce(0.0) { $0 + Double($1) } / Double(m.count)
            XCTAssertEqual(Double(r.lambda[i]), 1 - mean, accuracy: 1e-5, "sample \(i) λ ≠ 1 − mean(M)", file: file, line: line)
        }
    }
    // pixels against the naive reference
    let ref = MixRef.mix(x, s, r)
    var maxErr: Float = 0
    for k in 0..<x.count { maxErr = max(maxErr, abs(ref[k] - out[k])) }
    XCTAssertLessThanOrEqual(maxErr, 1e-5, "mixed pixels differ from the reference", file: file, line: line)
    // in place, same seed: bit-identical
    var inPlace = x
    var rng2 = SplitMix64(seed: seed)
    let r2 = try policy.mix(&inPlace, shape: s, rng: &rng2)
    XCTAssertEqual(r2, r, file: file, line: line)
    XCTAssertTrue(inPlace == out, "in-place result differs from out-of-place", file: file, line: line)
    // NHWC float: the transpose of the NCHW result
    let sh = try ImageBatchShape(batch: batch, channels: channels, height: height, width: width, layout: .nhwc)
    var xh = MixRef.toNHWC(x, s)
    var rng3 = SplitMix64(seed: seed)
    let r3 = try policy.mix(&xh, shape: sh, rng: &rng3)
    XCTAssertEqual(r3.partner, r.partner, file: file, line: line)
    XCTAssertTrue(xh == MixRef.toNHWC(out, s), "NHWC result differs", file: file, line: line)
    // uint8 (NCHW and NHWC) equals the float path on the same values within rounding
    let u = MixRef.bytes(s.elementCount, seed: seed)
    var uf = u.map { Float($0) }
    var uu = u
    var rng4 = SplitMix64(seed: seed), rng5 = SplitMix64(seed: seed)
    try policy.mix(&uf, shape: s, rng: &rng4)
    try policy.mix(&uu, shape: s, rng: &rng5)
    var maxU: Float = 0
    for k in 0..<u.count { maxU = max(maxU, abs(Float(uu[k]) - uf[k])) }
    XCTAssertLessThanOrEqual(maxU, 0.5 + 1e-3, "uint8 path differs from float path", file: file, line: line)
    var uh = MixRef.toNHWC(u, s)
    var rng6 = SplitMix64(seed: seed)
    try policy.mix(&uh, shape: sh, rng: &rng6)
    XCTAssertTrue(uh == MixRef.toNHWC(uu, s), "uint8 NHWC differs from uint8 NCHW", file: file, line: line)
    // soft targets against the textbook formula; rows sum to 1
    let K = 5
    let labels = (0..<batch).map { ($0 * 3 + 1) % K }
    for eps: Float in [0, 0.1] {
        let t = try r.softTargets(labels: labels, numClasses: K, smoothing: eps)
        let tr = MixRef.targets(labels: labels, K: K, eps: eps, lam: r.labelLambda, partner: r.partner)
        for k in 0..<t.count { XCTAssertEqual(t[k], tr[k], accuracy: 1e-6, file: file, line: line) }
        for i in 0..<batch {
            XCTAssertEqual(t[(i * K)..<((i + 1) * K)].reduce(0, +), 1, accuracy: 1e-5, file: file, line: line)
        }
    }
    // determinism: same seed → same; another seed → different (for batches that can differ)
    var again = x
    var rngA = SplitMix64(seed: seed)
    let rA = try policy.mix(&again, shape: s, rng: &rngA)
    XCTAssertEqual(rA, r, file: file, line: line)
    XCTAssertTrue(again == out, "same seed gave a different output", file: file, line: line)
}

/// Asserts that the plan of `policy` is different for at least one of a few other seeds.
func checkSeedsDiffer<P: MixPolicy>(_ policy: P, file: StaticString = #filePath, line: UInt = #line) throws {
    let s = try ImageBatchShape(batch: 6, channels: 2, height: 16, width: 16)
    let x = MixRef.images(s.elementCount, seed: 3)
    var base = x, other = x
    var r0 = SplitMix64(seed: 100), r1 = SplitMix64(seed: 101)
    let a = try policy.mix(&base, shape: s, rng: &r0)
    let b = try policy.mix(&other, shape: s, rng: &r1)
    XCTAssertTrue(a != b && base != other, "different seeds gave identical mixes", file: file, line: line)
}

final class MixingHelpersTests: XCTestCase {
    func testBetaCDFReference() {
        // Beta(1,1) is uniform; Beta(2,2) CDF = 3x² − 2x³; symmetry I_x(a,a) = 1 − I_{1−x}(a,a).
        for x in stride(from: 0.05, to: 1, by: 0.1) {
            XCTAssertEqual(MixRef.betaCDF(x, 1, 1), x, accuracy: 1e-6)
            XCTAssertEqual(MixRef.betaCDF(x, 2, 2), 3 * x * x - 2 * x * x * x, accuracy: 1e-6)
            XCTAssertEqual(MixRef.betaCDF(x, 0.2, 0.2), 1 - MixRef.betaCDF(1 - x, 0.2, 0.2), accuracy: 1e-6)
        }
        // Beta(0.5, 0.5) is the arcsine law: (2/π)·asin(√x).
        for x in [0.01, 0.2, 0.5, 0.7, 0.99] {
            XCTAssertEqual(MixRef.betaCDF(x, 0.5, 0.5), 2 / Double.pi * asin(x.squareRoot()), accuracy: 1e-5)
        }
    }

    func testKSDetectsWrongDistribution() {
        var rng = SplitMix64(seed: 1)
        let u = (0..<2000).map { _ in rng.uniformDouble() }
        XCTAssertLessThan(MixRef.ksStatistic(u, cdf: { MixRef.betaCDF($0, 1, 1) }), MixRef.ksCritical(2000))
        XCTAssertGreaterThan(MixRef.ksStatistic(u, cdf: { MixRef.betaCDF($0, 2, 2) }), MixRef.ksCritical(2000))
    }
}
