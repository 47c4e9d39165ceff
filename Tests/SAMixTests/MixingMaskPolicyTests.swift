import XCTest
import Foundation
import SAMix
@testable import SAMixCore
@testable import SAMixOps
@testable import SAMixNN
@testable import SAMixData
@testable import SAMixMixing
@testable import SAMixTraining

final class MixingMaskPolicyTests: XCTestCase {
    // MARK: SmoothMix

    func testSmoothMixProperties() throws {
        for batch in [1, 2, 7] {
            try checkMixPolicy(try SmoothMix(), batch: batch, seed: UInt64(batch) + 20)
            try checkMixPolicy(try SmoothMix(perSample: true), batch: batch, height: 9, width: 12, seed: UInt64(batch) + 21)
            try checkMixPolicy(try SmoothMix(legacyLabelSwap: true), batch: batch, seed: 22)
        }
        try checkSeedsDiffer(try SmoothMix())
    }

    func testSmoothMixMaskIsGaussianAndLabelsAreCorrect() throws {
        let s = try ImageBatchShape(batch: 4, channels: 1, height: 32, width: 32)
        var x = [Float](repeating: 0, count: s.elementCount)
        var rng = SplitMix64(seed: 8)
        let r = try SmoothMix().mix(&x, shape: s, rng: &rng)
        XCTAssertEqual(r.maskCount, 1)
        let m = r.masks
        // Peak location → Gaussian: M(y,x) = exp(−d²/2σ²); recover σ from a neighbour of the peak.
        let k = m.indices.max(by: { m[$0] < m[$1] })!
        let py = k / 32, px = k % 32
        XCTAssertGreaterThan(m[k], 0.9)
        // Separable: M(y,x)·M(py,px) = M(y,px)·M(py,x).
        for (y, xx) in [(0, 0), (5, 30), (31, 2), (17, 17)] {
            XCTAssertEqual(m[y * 32 + xx] * m[k], m[y * 32 + px] * m[py * 32 + xx], accuracy: 1e-5)
        }
        // Default labels follow the pixels: label λ = 1 − mean(M); legacy swap gives mean(M).
        let mean = m.reduce(0.0) { $0 + Double($1) } / 1024
        XCTAssertEqual(Double(r.labelLambda[0]), 1 - mean, accuracy: 1e-5)
        var rng2 = SplitMix64(seed: 8)
        var y = [Float](repeating: 0, count: s.elementCount)
        let legacy = try SmoothMix(legacyLabelSwap: true).mix(&y, shape: s, rng: &rng2)
        XCTAssertEqual(legacy.masks, r.masks)
        XCTAssertEqual(Double(legacy.labelLambda[0]), mean, accuracy: 1e-5)
        XCTAssertEqual(legacy.lambda, r.lambda)
        // σ within [0.25, 0.5)·H: mean(M) ≤ 2πσ²/HW for the largest σ.
        XCTAssertLessThan(mean, 2 * Double.pi * 16 * 16 / 1024 + 1e-6)
    }

    // MARK: FMix

    func testFMixProperties() throws {
        for batch in [1, 2, 7] {
            try checkMixPolicy(try FMix(alpha: 1), batch: batch, seed: UInt64(batch) + 30)
            try checkMixPolicy(try FMix(alpha: 0.2, perSample: true), batch: batch, height: 8, width: 7, seed: UInt64(batch) + 31)
            try checkMixPolicy(try FMix(alpha: 1, maxSoft: 0.1, labelLambda: .sampled), batch: batch, seed: 32)
        }
        try checkSeedsDiffer(try FMix(alpha: 1))
    }

    func testFMixBinaryMaskMatchesLambda() throws {
        let s = try ImageBatchShape(batch: 2, channels: 1, height: 32, width: 32)
        var rng = SplitMix64(seed: 4)
        for l in [0.0, 0.1, 0.37, 0.5, 0.9, 1.0] {
            var x = [Float](repeating: 0, count: s.elementCount)
            let r = try FMix().mix(&x, shape: s, lambda: l, rng: &rng)
            XCTAssertTrue(r.masks.allSatisfy { $0 == 0 || $0 == 1 })
            let ones = r.masks.reduce(0) { $0 + Int($1) }           // partner pixels
            let keep = 1024 - ones
            XCTAssertTrue(keep == Int((l * 1024).rounded(.down)) || keep == Int((l * 1024).rounded(.up)), "λ=\(l) keep=\(keep)")
            XCTAssertEqual(Double(r.lambda[0]), Double(keep) / 1024, accuracy: 1e-7)
            XCTAssertEqual(r.partner, [1, 0])                       // derangement of 2
        }
    }

    func testFMixSampledLambdaIsBetaDistributed() throws {
        let s = try ImageBatchShape(batch: 1, channels: 1, height: 4, width: 4)
        var x = [Float](repeating: 0, count: 16)
        var rng = SplitMix64(seed: 99)
        let f = try FMix(alpha: 0.2, labelLambda: .sampled)
        var lams: [Double] = []
        for _ in 0..<2000 { lams.append(Double(try f.mix(&x, shape: s, rng: &rng).labelLambda[0])) }
        XCTAssertLessThan(MixRef.ksStatistic(lams, cdf: { MixRef.betaCDF($0, 0.2, 0.2) }), MixRef.ksCritical(2000))
    }

    /// The engine's inverse real DFT against a naive NumPy-style irfftn written here: complex inverse DFT
    /// along H, then a full-length inverse DFT along W of the Hermitian-extended row (DC/Nyquist imaginary
    /// parts dropped), with the spectrum re-drawn from the same seed.
    func testFMixLowFrequencyImageMatchesNaiveIRFFT() throws {
        for (H, W) in [(8, 8), (6, 5), (5, 6)] {
            let decay = 3.0
            var rngA = SplitMix64(seed: 42)
            let got = FMix.lowFrequencyImage(height: H, width: W, decayPower: decay, rng: &rngA)
            var rng = SplitMix64(seed: 42)
            let WF = W / 2 + 1
            var X = [[(Double, Double)]](repeating: [(Double, Double)](repeating: (0, 0), count: WF), count: H)
            for i in 0..<H {
                let fy = i <= (H - 1) / 2 ? Double(i) / Double(H) : Double(i - H) / Double(H)
                for k in 0..<WF {
                    let fx = Double(k) / Double(W)
                    let f = max(sqrt(fx * fx + fy * fy), 1 / Double(max(H, W)))
                    let sc = 1 / pow(f, decay)
                    let re = rng.normal() * sc, im = rng.normal() * sc
                    X[i][k] = (re, im)
                }
            }
            var Y = X
            for n in 0..<H { for k in 0..<WF {
                var sr = 0.0, si = 0.0
                for i in 0..<H {
                    let a = 2 * Double.pi * Double(i * n) / Double(H)
                    sr += X[i][k].0 * cos(a) - X[i][k].1 * sin(a)
                    si += X[i][k].0 * sin(a) + X[i][k].1 * cos(a)
                }
                Y[n][k] = (sr / Double(H), si / Double(H))
            } }
            for n in 0..<H {
                var full = [(Double, Double)](repeating: (0, 0), count: W)
                for k in 0..<WF { full[k] = Y[n][k] }
                full[0].1 = 0
                if W % 2 == 0 { full[W / 2].1 = 0 }
                for k in 1..<W where k >= WF || (W % 2 == 0 && k > W / 2) { full[k] = (full[W - k].0, -full[W - k].1) }
                for m in 0..<W {
                    var acc = 0.0
                    for k in 0..<W {
                        let a = 2 * Double.pi * Double(k * m) / Double(W)
                        acc += full[k].0 * cos(a) - full[k].1 * sin(a)
                    }
                    let want = acc / Double(W)
                    XCTAssertEqual(Double(got[n * W + m]), want, accuracy: 1e-4 * max(1, abs(want)), "H=\(H) W=\(W)")
                }
            }
        }
    }

    func testFMixBinariseSoftEdges() {
        var rng = SplitMix64(seed: 1)
        let img: [Float] = (0..<100).map { Float($0) }              // rank = value
        let m = FMix.binarise(img, lambda: 0.3, maxSoft: 0.05, rng: &rng)
        // top 30 ± 5 ramp: values 99…75 get 1, 74…65 ramp 1 → 0, below 0.
        XCTAssertTrue((75...99).allSatisfy { m[$0] == 1 })
        XCTAssertTrue((0..<64).allSatisfy { m[$0] == 0 })
        XCTAssertEqual(m[74], 1)
        XCTAssertEqual(m[65], 0)
        XCTAssertTrue(m.allSatisfy { $0 >= 0 && $0 <= 1 })
    }

    // MARK: GridMix

    func testGridMixProperties() throws {
        for batch in [1, 2, 7] {
            try checkMixPolicy(try GridMix(alpha: 1), batch: batch, height: 32, width: 32, seed: UInt64(batch) + 40)
            try checkMixPolicy(try GridMix(alpha: 0.2, perSample: true), batch: batch, height: 16, width: 20, seed: 41)
            try checkMixPolicy(try GridMix(alpha: 1), batch: batch, height: 3, width: 2, seed: 42)  // tiny image
        }
        try checkSeedsDiffer(try GridMix(alpha: 1))
    }

    func testGridMixMaskIsAGridOfSquareHoles() throws {
        let s = try ImageBatchShape(batch: 2, channels: 1, height: 32, width: 32)
        var rng = SplitMix64(seed: 6)
        var prev: Float = 1
        for l in [0.9, 0.5, 0.1] {
            var rngL = rng
            var x = [Float](repeating: 0, count: s.elementCount)
            let r = try GridMix(alpha: 1, nHoles: 4...4, cutAreaRatio: 1...1, cutAspectRatio: 1...1)
                .mix(&x, shape: s, lambda: l, rng: &rngL)
            let m = r.masks
            XCTAssertTrue(m.allSatisfy { $0 == 0 || $0 == 1 })
            // full-image cut, 4 columns of 8 px: holes of int(8·√(1−λ)) px at each tile's top-left.
            let side = min(max(Int(8 * (1 - l).squareRoot()), 1), 7)
            for ty in 0..<4 { for tx in 0..<4 {
                for y in 0..<8 { for xx in 0..<8 {
                    let want: Float = (y < side && xx < side) ? 1 : 0
                    XCTAssertEqual(m[(ty * 8 + y) * 32 + tx * 8 + xx], want)
                } }
            } }
            XCTAssertEqual(r.lambda[0], Float(1 - Double(16 * side * side) / 1024), accuracy: 1e-6)
            XCTAssertLessThanOrEqual(r.lambda[0], prev)
            prev = r.lambda[0]
        }
        _ = rng.next()
    }
}
