import XCTest
import SAMix
@testable import SAMixCore
@testable import SAMixOps
@testable import SAMixNN
@testable import SAMixData
@testable import SAMixMixing
@testable import SAMixTraining

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

    // MARK: reductions

    func testReductionsForward() throws {
        let x = try Tensor([1, 2, 3, 4, 5, 6], shape: [2, 3])
        let s = try x.sum()
        XCTAssertEqual(s.shape, [])
        XCTAssertEqual(s.scalars, [21])
        XCTAssertEqual(try x.mean().scalars, [3.5])
        XCTAssertEqual(try x.sum(axis: 0).scalars, [5, 7, 9])
        XCTAssertEqual(try x.sum(axis: 0).shape, [3])
        XCTAssertEqual(try x.sum(axis: -1, keepDims: true).shape, [2, 1])
        XCTAssertEqual(try x.sum(axis: 1).scalars, [6, 15])
        XCTAssertEqual(try x.mean(axis: 1).scalars, [2, 5])
        XCTAssertThrowsError(try x.sum(axis: 2))
        XCTAssertThrowsError(try x.mean(axis: -3))
        // Large sum (SIMD + parallel path) against a Double reference.
        let big = try TestData.uniform([300_001], seed: 3)
        var ref = 0.0
        for v in big.scalars { ref += Double(v) }
        XCTAssertEqual(Double(try big.sum().scalars[0]), ref, accuracy: 1e-2)
        let rows = try TestData.uniform([3, 1000], seed: 4)
        let rs = try rows.sum(axis: 1).scalars
        for r in 0..<3 {
            var e = 0.0
            for j in 0..<1000 { e += Double(rows.data[r * 1000 + j]) }
            XCTAssertEqual(Double(rs[r]), e, accuracy: 1e-3)
        }
    }

    // MARK: softmax

    func testSoftmaxForward() throws {
        let x = try Tensor([1, 2, 3, 1000, 1001, 1002], shape: [2, 3])
        let y = try x.softmax()
        let e: [Float] = [1, expf(1), expf(2)].map { $0 / (1 + expf(1) + expf(2)) }
        assertClose(y.scalars, e + e)          // shift invariance; no overflow at 1000
        let ls = try x.logSoftmax()
        assertClose(ls.scalars, (e + e).map { logf($0) }, tol: 1e-4)  // x − lse near 1000 loses ~6e-5
        // Rows along a non-last axis sum to 1.
        let z = try TestData.uniform([2, 4, 3, 5], seed: 9, lo: -5, hi: 5)
        let sm = try z.softmax(axis: 1)
        let sums = try sm.sum(axis: 1).scalars
        assertClose(sums, [Float](repeating: 1, count: 30))
        assertClose(try z.logSoftmax(axis: 1).scalars, sm.scalars.map { logf($0) }, tol: 1e-4)
        XCTAssertThrowsError(try z.softmax(axis: 4))
    }

    // MARK: losses

    func testCrossEntropyValues() throws {
        let logits = try Tensor([1, 2, 3, 0, 0, 0], shape: [2, 3])
        let lse0 = log(exp(1.0) + exp(2.0) + exp(3.0))
        // Plain CE: mean of (lse − x_label).
        let ce = try logits.crossEntropy(labels: [2, 0]).scalars[0]
        XCTAssertEqual(Double(ce), ((lse0 - 3) + log(3.0)) / 2, accuracy: 1e-5)
        // Label smoothing 0.3 on 3 classes: q = 0.1 off-target, 0.8 on target.
        let ls = try logits.crossEntropy(labels: [2, 0], labelSmoothing: 0.3).scalars[0]
        let row0 = -(0.1 * (1 - lse0) + 0.1 * (2 - lse0) + 0.8 * (3 - lse0))
        let row1 = log(3.0)  // uniform logits: every log-prob is −log 3, and q sums to 1
        XCTAssertEqual(Double(ls), (row0 + row1) / 2, accuracy: 1e-5)
        XCTAssertEqual(row0, 0.70761, accuracy: 1e-4)
        // Huge logits stay finite.
        let big = try Tensor([1e4, -1e4], shape: [1, 2])
        XCTAssertEqual(try big.crossEntropy(labels: [1]).scalars[0], 2e4, accuracy: 1)
    }

    func testMixupCrossEntropyMatchesWeightedSum() throws {
        let logits = try TestData.uniform([4, 5], seed: 11, lo: -3, hi: 3)
        let ya = [0, 1, 2, 3], yb = [4, 1, 0, 2]
        let mixed = try logits.mixupCrossEntropy(labelsA: ya, labelsB: yb, lam: 0.7).scalars[0]
        let a = try logits.crossEntropy(labels: ya).scalars[0], b = try logits.crossEntropy(labels: yb).scalars[0]
        XCTAssertEqual(mixed, 0.7 * a + 0.3 * b, accuracy: 1e-5)
        // Per-sample ratios.
        let lam: [Float] = [1, 0, 0.25, 0.5]
        let per = try logits.mixupCrossEntropy(labelsA: ya, labelsB: yb, lam: lam).scalars[0]
        var expect: Float = 0
        for i in 0..<4 {
            let row = try logits.narrow(axis: 0, start: i, length: 1)
            expect += lam[i] * (try row.crossEntropy(labels: [ya[i]]).scalars[0])
                + (1 - lam[i]) * (try row.crossEntropy(labels: [yb[i]]).scalars[0])
        }
        XCTAssertEqual(per, expect / 4, accuracy: 1e-5)
        // Soft targets given as the same mixture give the same loss.
        var t = [Float](repeating: 0, count: 20)
        for i in 0..<4 { t[i * 5 + ya[i]] += lam[i]; t[i * 5 + yb[i]] += 1 - lam[i] }
        let soft = try logits.softTargetCrossEntropy(targets: try Tensor(t, shape: [4, 5])).scalars[0]
        XCTAssertEqual(soft, per, accuracy: 1e-5)
    }

    func testLossArgumentValidation() throws {
        let logits = try Tensor(zeros: [2, 3])
        XCTAssertThrowsError(try logits.crossEntropy(labels: [0, 3])) { error in
            XCTAssertEqual(error as? SAMixError,
                           .invalidArgument("crossEntropy: labels[1] = 3 is out of range 0..<3"))
        }
        XCTAssertThrowsError(try logits.crossEntropy(labels: [-1, 0])) { error in
            XCTAssertTrue("\(error)".contains("-1"), "\(error)")
        }
        XCTAssertThrowsError(try logits.crossEntropy(labels: [0]))
        XCTAssertThrowsError(try logits.crossEntropy(labels: [0, 1], labelSmoothing: 1))
        XCTAssertThrowsError(try logits.mixupCrossEntropy(labelsA: [0, 1], labelsB: [0, 7], lam: 0.5)) { error in
            XCTAssertTrue("\(error)".contains("labelsB[1] = 7"), "\(error)")
        }
        XCTAssertThrowsError(try logits.mixupCrossEntropy(labelsA: [0, 1], labelsB: [0, 1], lam: [0.5]))
        XCTAssertThrowsError(try logits.mixupCrossEntropy(labelsA: [0, 1], labelsB: [0, 1], lam: 1.5))
        XCTAssertThrowsError(try logits.softTargetCrossEntropy(targets: try Tensor(zeros: [3, 2])))
        XCTAssertThrowsError(try Tensor(zeros: [6]).crossEntropy(labels: [0]))
        XCTAssertThrowsError(try logits.binaryCrossEntropyWithLogits(targets: try Tensor(zeros: [2])))
    }

    func testBinaryCrossEntropyValues() throws {
        let x = try Tensor([0, 2, -3, 100], shape: [4])
        let t = try Tensor([1, 0, 0.5, 1], shape: [4])
        func ref(_ x: Double, _ t: Double) -> Double {
            let p = 1 / (1 + exp(-x))
            return -(t * log(p) + (1 - t) * log(1 - p))
        }
        let expected = ref(0, 1) + ref(2, 0) + ref(-3, 0.5) + 0  // x = 100, t = 1: loss ≈ 0
        XCTAssertEqual(Double(try x.binaryCrossEntropyWithLogits(targets: t, mean: false).scalars[0]), expected, accuracy: 1e-5)
        XCTAssertEqual(Double(try x.binaryCrossEntropyWithLogits(targets: t).scalars[0]), expected / 4, accuracy: 1e-5)
    }

    // MARK: pooling

    func testMaxPoolValuesAndIndices() throws {
        let x = try Tensor([1, 5, 2, 0,
                            3, 4, 8, 7,
                            9, 0, 1, 1,
                            2, 6, 1, 3], shape: [1, 1, 4, 4])
        x.requiresGrad = true
        let y = try x.maxPool2d(kernel: 2)
        XCTAssertEqual(y.shape, [1, 1, 2, 2])
        XCTAssertEqual(y.scalars, [5, 8, 9, 3])
        try y.backward(gradient: try Tensor([10, 20, 30, 40], shape: [1, 1, 2, 2]))
        XCTAssertEqual(x.grad?.scalars, [0, 10, 0, 0,
                                         0, 0, 20, 0,
                                         30, 0, 0, 0,
                                         0, 0, 0, 40])
        // 3×3 stride 2 pad 1 (ResNet stem geometry): padding never wins even for negative inputs.
        let neg = try Tensor((0..<16).map { -Float($0) - 1 }, shape: [1, 1, 4, 4])
        let p = try neg.maxPool2d(kernel: 3, stride: 2, padding: 1)
        XCTAssertEqual(p.shape, [1, 1, 2, 2])
        XCTAssertEqual(p.scalars, [-1, -2, -5, -6])
        // Ties go to the first element of the window.
        let tie = try Tensor([2, 2, 2, 2], shape: [1, 1, 2, 2])
        tie.requiresGrad = true
        try tie.maxPool2d(kernel: 2).backward(gradient: try Tensor([1], shape: [1, 1, 1, 1]))
        XCTAssertEqual(tie.grad?.scalars, [1, 0, 0, 0])
        XCTAssertThrowsError(try x.maxPool2d(kernel: 2, padding: 2))
        XCTAssertThrowsError(try x.maxPool2d(kernel: 5))
        XCTAssertThrowsError(try x.maxPool2d(kernel: 0))
        XCTAssertThrowsError(try Tensor(zeros: [4, 4]).maxPool2d(kernel: 2))
    }

    func testAvgPoolValues() throws {
        let x = try Tensor((1...16).map(Float.init), shape: [1, 1, 4, 4])
        XCTAssertEqual(try x.avgPool2d(kernel: 2).scalars, [3.5, 5.5, 11.5, 13.5])
        // Padding counted (PyTorch default) vs not counted at the corner window.
        let inc = try x.avgPool2d(kernel: 3, stride: 2, padding: 1).scalars
        let exc = try x.avgPool2d(kernel: 3, stride: 2, padding: 1, countIncludePad: false).scalars
        XCTAssertEqual(inc[0], (1 + 2 + 5 + 6) / 9, accuracy: 1e-6)
        XCTAssertEqual(exc[0], (1 + 2 + 5 + 6) / 4, accuracy: 1e-6)
        XCTAssertEqual(try x.globalAvgPool2d().scalars, [8.5])
        XCTAssertEqual(try x.globalAvgPool2d().shape, [1, 1])
    }

    // MARK: upsampling

    func testBilinearUpsampleKnownValues() throws {
        // PyTorch F.interpolate(scale_factor=2, mode="bilinear", align_corners=False).
        let x = try Tensor([1, 2, 3, 4], shape: [1, 1, 2, 2])
        let y = try x.upsampleBilinear(factor: 2)
        XCTAssertEqual(y.shape, [1, 1, 4, 4])
        assertClose(y.scalars, [1.0, 1.25, 1.75, 2.0,
                                1.5, 1.75, 2.25, 2.5,
                                2.5, 2.75, 3.25, 3.5,
                                3.0, 3.25, 3.75, 4.0])
        // Factor 3 along width: sources at (o + 0.5)/3 − 0.5, clamped.
        let r = try Tensor([0, 3], shape: [1, 1, 1, 2]).upsampleBilinear(factorH: 1, factorW: 3)
        assertClose(r.scalars, [0, 0, 1, 2, 3, 3])
        // Constant images stay constant.
        let c = try Tensor(repeating: 2.5, shape: [2, 3, 3, 5]).upsampleBilinear(factor: 4)
        assertClose(c.scalars, [Float](repeating: 2.5, count: c.count))
        XCTAssertThrowsError(try x.upsampleBilinear(factor: 0))
    }

    func testNearestUpsampleValues() throws {
        let x = try Tensor([1, 2, 3, 4], shape: [1, 1, 2, 2])
        XCTAssertEqual(try x.upsampleNearest(factor: 2).scalars, [1, 1, 2, 2,
                                                                   1, 1, 2, 2,
                                                                   3, 3, 4, 4,
                                                                   3, 3, 4, 4])
        XCTAssertEqual(try x.upsampleNearest(factorH: 1, factorW: 3).scalars, [1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4])
    }

    // MARK: concat / narrow

    func testConcatAndNarrowValues() throws {
        let a = try Tensor([1, 2, 3, 4], shape: [2, 1, 2])
        let b = try Tensor([5, 6, 7, 8, 9, 10, 11, 12], shape: [2, 2, 2])
        let c = try Tensor.concat([a, b], axis: 1)
        XCTAssertEqual(c.shape, [2, 3, 2])
        XCTAssertEqual(c.scalars, [1, 2, 5, 6, 7, 8, 3, 4, 9, 10, 11, 12])
        XCTAssertEqual(try Tensor.concat([a, a], axis: 0).scalars, [1, 2, 3, 4, 1, 2, 3, 4])
        XCTAssertEqual(try c.narrow(axis: 1, start: 1, length: 2).scalars, b.scalars)
        XCTAssertEqual(try c.narrow(axis: -1, start: 1, length: 1).scalars, [2, 6, 8, 4, 10, 12])
        XCTAssertThrowsError(try Tensor.concat([a, try Tensor(zeros: [2, 1, 3])], axis: 1))
        XCTAssertThrowsError(try Tensor.concat([], axis: 0))
        XCTAssertThrowsError(try c.narrow(axis: 1, start: 2, length: 2))
        XCTAssertThrowsError(try c.split(axis: 1, sizes: [1, 1]))
    }

    // MARK: matmul

    private func naiveMatMul(_ a: Tensor, _ b: Tensor, _ tA: Bool, _ tB: Bool) -> [Float] {
        let batched = a.rank == 3, r = a.rank
        let batch = batched ? a.shape[0] : 1
        let m = tA ? a.shape[r - 1] : a.shape[r - 2], k = tA ? a.shape[r - 2] : a.shape[r - 1]
        let n = tB ? b.shape[r - 2] : b.shape[r - 1]
        var out = [Float](repeating: 0, count: batch * m * n)
        for p in 0..<batch {
            for i in 0..<m {
                for j in 0..<n {
                    var s = 0.0
                    for q in 0..<k {
                        let av = tA ? a.data[p * m * k + q * m + i] : a.data[p * m * k + i * k + q]
                        let bv = tB ? b.data[p * k * n + j * k + q] : b.data[p * k * n + q * n + j]
                        s += Double(av) * Double(bv)
                    }
                    out[p * m * n + i * n + j] = Float(s)
                }
            }
        }
        return out
    }

    func testMatMulMatchesNaive() throws {
        for (batch, m, k, n) in [(0, 3, 4, 5), (2, 3, 4, 5), (0, 70, 60, 80), (3, 40, 50, 60)] {
            for tA in [false, true] {
                for tB in [false, true] {
                    let aShape = tA ? [k, m] : [m, k], bShape = tB ? [n, k] : [k, n]
                    let a = try TestData.uniform(batch > 0 ? [batch] + aShape : aShape, seed: 20)
                    let b = try TestData.uniform(batch > 0 ? [batch] + bShape : bShape, seed: 21)
                    let c = try Tensor.matmul(a, b, transposeA: tA, transposeB: tB)
                    XCTAssertEqual(c.shape, batch > 0 ? [batch, m, n] : [m, n])
                    assertClose(c.scalars, naiveMatMul(a, b, tA, tB), tol: 1e-4)
                }
            }
        }
        let a = try Tensor([1, 2, 3, 4, 5, 6], shape: [2, 3]), b = try Tensor([1, 0, 0, 1, 1, 1], shape: [3, 2])
        XCTAssertEqual(try a.matmul(b).scalars, [4, 5, 10, 11])
        XCTAssertThrowsError(try a.matmul(a))
        XCTAssertThrowsError(try a.matmul(try Tensor(zeros: [1, 3, 2])))
        XCTAssertThrowsError(try Tensor(zeros: [2, 2, 3]).matmul(try Tensor(zeros: [3, 3, 2])))
    }

    // MARK: dropout

    func testDropoutStatisticsAndDeterminism() throws {
        let x = try Tensor(repeating: 1, shape: [200_000])
        var rng = SplitMix64(seed: 5)
        let y = try x.dropout(p: 0.3, training: true, rng: &rng)
        let zeros = y.scalars.filter { $0 == 0 }.count
        XCTAssertEqual(Double(zeros) / 200_000, 0.3, accuracy: 0.005)
        for v in y.scalars where v != 0 { XCTAssertEqual(v, 1 / 0.7, accuracy: 1e-6); break }
        XCTAssertEqual(Double(try y.mean().scalars[0]), 1, accuracy: 0.01)
        // Same seed → same mask, whatever the thread count.
        let saved = Engine.threads
        defer { Engine.threads = saved }
        Engine.threads = 1
        var r1 = SplitMix64(seed: 5)
        let y1 = try x.dropout(p: 0.3, training: true, rng: &r1)
        XCTAssertEqual(y1.scalars, y.scalars)
        XCTAssertEqual(r1, rng, "the generator advances the same way")
        // The next call draws a different mask.
        let y2 = try x.dropout(p: 0.3, training: true, rng: &r1)
        XCTAssertNotEqual(y2.scalars, y.scalars)
        // Evaluation and p = 0 are the identity; p = 1 drops everything.
        var r2 = SplitMix64(seed: 1)
        XCTAssertTrue(try x.dropout(p: 0.3, training: false, rng: &r2) === x)
        XCTAssertEqual(try x.dropout(p: 1, training: true, rng: &r2).scalars.max(), 0)
        XCTAssertThrowsError(try x.dropout(p: 1.5, training: true, rng: &r2))
        XCTAssertThrowsError(try x.dropout(p: -0.1, training: true, rng: &r2))
    }

    func testMatMulEmptyInnerDimensionGivesZeros() throws {
        let a = try Tensor(zeros: [3, 0]), b = try Tensor(zeros: [0, 2])
        a.requiresGrad = true
        b.requiresGrad = true
        let c = try a.matmul(b)
        XCTAssertEqual(c.scalars, [0, 0, 0, 0, 0, 0])
        try c.sum().backward()
        XCTAssertEqual(a.grad?.shape, [3, 0])
    }

    func testOpsDoNotRecordWithGradDisabled() throws {
        let x = try TestData.uniform([2, 2, 4, 4], seed: 1)
        x.requiresGrad = true
        var rng = SplitMix64(seed: 1)
        let outputs: [Tensor] = try GradMode.withDisabled {
            [try x.relu(), try x.elu(), try x.sigmoid(), try x.tanh(), try x.leakyRelu(), try x.sum(),
             try x.mean(axis: 1), try x.softmax(axis: 1), try x.logSoftmax(), try x.maxPool2d(kernel: 2),
             try x.avgPool2d(kernel: 2), try x.globalAvgPool2d(), try x.upsampleNearest(factor: 2),
             try x.upsampleBilinear(factor: 2), try Tensor.concat([x, x], axis: 1),
             try x.narrow(axis: 2, start: 1, length: 2), try x.dropout(p: 0.5, training: true, rng: &rng),
             try x.reshaped([8, 8]).matmul(x.reshaped([8, 8])),
             try x.reshaped([4, 16]).crossEntropy(labels: [0, 1, 2, 3]),
             try x.binaryCrossEntropyWithLogits(targets: x.detached())]
        }
        for (i, y) in outputs.enumerated() {
            XCTAssertFalse(y.requiresGrad, "output \(i)")
            XCTAssertFalse(y.hasGradFn, "output \(i)")
        }
    }

    func testEmptyAndHostileArguments() throws {
        // Empty tensors flow through forward and backward without touching memory.
        let e = try Tensor(zeros: [2, 3, 0, 4])
        e.requiresGrad = true
        for y in [try e.softmax(axis: 1), try e.logSoftmax(axis: -1), try e.upsampleBilinear(factor: 2),
                  try e.upsampleNearest(factor: 2), try e.relu()] {
            XCTAssertEqual(y.count, 0)
            try y.backward(gradient: try Tensor(zeros: y.shape))
        }
        XCTAssertEqual(e.grad?.count, 0)
        // Summing over an empty axis gives zeros.
        let s = try e.sum(axis: 2, keepDims: true)
        XCTAssertEqual(s.shape, [2, 3, 1, 4])
        XCTAssertEqual(s.scalars, [Float](repeating: 0, count: 24))
        try s.backward(gradient: try Tensor(repeating: 1, shape: s.shape))
        // Pooling needs a non-empty plane; huge arguments are rejected, not overflowed.
        XCTAssertThrowsError(try e.maxPool2d(kernel: 2, padding: 1))
        let x = try Tensor(zeros: [1, 1, 4, 4])
        XCTAssertThrowsError(try x.maxPool2d(kernel: 2, stride: 1, padding: Int.max))
        XCTAssertThrowsError(try x.avgPool2d(kernel: Int.max))
        XCTAssertThrowsError(try x.maxPool2d(kernel: 2, stride: -1))
        XCTAssertThrowsError(try x.narrow(axis: 0, start: Int.max, length: Int.max))
        XCTAssertThrowsError(try x.upsampleBilinear(factor: Int.max))
        XCTAssertEqual(try x.maxPool2d(kernel: 2, stride: Int.max).shape, [1, 1, 1, 1])
    }
}
