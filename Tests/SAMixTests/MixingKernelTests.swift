import XCTest
import SAMix
@testable import SAMixCore
@testable import SAMixOps
@testable import SAMixNN
@testable import SAMixData
@testable import SAMixMixing
@testable import SAMixTraining

final class MixingKernelTests: XCTestCase {
    /// A hand-made result mixing every kind of op, for the scheduler tests.
    func mixedResult(batch B: Int, H: Int, W: Int, partner: [Int], seed: UInt64) throws -> MixResult {
        var rng = SplitMix64(seed: seed)
        var ops: [SampleMix] = []
        var masks: [Float] = []
        for i in 0..<B {
            switch i % 5 {
            case 0: ops.append(.blend(rng.uniform()))
            case 1:
                let y0 = rng.int(below: H), x0 = rng.int(below: W)
                ops.append(.box(MixBox(y0: y0, y1: min(H, y0 + 1 + rng.int(below: H)), x0: x0, x1: min(W, x0 + 1 + rng.int(below: W)))))
            case 2:
                ops.append(.mask(masks.count / (H * W)))
                masks += (0..<(H * W)).map { _ in rng.uniform() }
            case 3: ops.append(.resizedBox(MixBox(y0: 1, y1: H - 1, x0: 0, x1: W / 2)))
            default: ops.append(.keep)
            }
        }
        return try makeMixResult(shape: try ImageBatchShape(batch: B, channels: 3, height: H, width: W),
                                 partner: partner, ops: ops, masks: masks)
    }

    func testInPlaceEqualsOutOfPlaceForAllPairings() throws {
        // 96×3×16×16 = 73 728 elements: above the (lowered) parallel threshold, so long cycles are split
        // between workers and sources read across a split must be saved.
        let savedThreads = Engine.threads, savedThreshold = MixApplyTuning.parallelThreshold
        defer { Engine.threads = savedThreads; MixApplyTuning.parallelThreshold = savedThreshold }
        MixApplyTuning.parallelThreshold = 1 << 16
        for threads in [1, 2, 3] {
            Engine.threads = threads
            for B in [1, 2, 5, 96] {
                var rng = SplitMix64(seed: UInt64(B))
                var sattolo = Array(0..<B)
                for i in stride(from: B - 1, to: 0, by: -1) { sattolo.swapAt(i, rng.int(below: i)) }
                let maps: [[Int]] = [
                    rng.permutation(B), sattolo, (0..<B).map { B - 1 - $0 }, (0..<B).map { ($0 + 1) % B },
                    (0..<B).map { _ in rng.int(below: B) },          // not a permutation
                    [Int](repeating: 0, count: B),
                ]
                for (mi, p) in maps.enumerated() {
                    for layout in [PixelLayout.nchw, .nhwc] {
                        let s = try ImageBatchShape(batch: B, channels: 3, height: 16, width: 16, layout: layout)
                        let r = try mixedResult(batch: B, H: 16, W: 16, partner: p, seed: UInt64(mi))
                        let x = MixRef.images(s.elementCount, seed: UInt64(mi + B))
                        var out = [Float](repeating: 0, count: x.count)
                        try x.withUnsafeBufferPointer { xp in
                            try out.withUnsafeMutableBufferPointer { try r.apply(input: xp.baseAddress!, output: $0.baseAddress!, shape: s) }
                        }
                        var y = x
                        try y.withUnsafeMutableBufferPointer { try r.apply(inPlace: $0.baseAddress!, shape: s) }
                        XCTAssertTrue(y == out, "threads \(threads) B \(B) map \(mi) \(layout)")
                        if layout == .nchw {
                            let ref = MixRef.mix(x, s, r)
                            var err: Float = 0
                            for k in 0..<x.count { err = max(err, abs(ref[k] - out[k])) }
                            XCTAssertLessThanOrEqual(err, 1e-5, "B \(B) map \(mi)")
                        }
                        // uint8 in place vs out of place
                        let u = MixRef.bytes(s.elementCount, seed: UInt64(mi))
                        var uo = [UInt8](repeating: 0, count: u.count), ui = u
                        try u.withUnsafeBufferPointer { up in
                            try uo.withUnsafeMutableBufferPointer { try r.apply(input: up.baseAddress!, output: $0.baseAddress!, shape: s) }
                        }
                        try ui.withUnsafeMutableBufferPointer { try r.apply(inPlace: $0.baseAddress!, shape: s) }
                        XCTAssertTrue(ui == uo, "uint8 B \(B) map \(mi)")
                    }
                }
            }
        }
    }

    func testBoxTwoCyclesSwapInPlace() throws {
        // Flip pairing with CutMix boxes: every two-cycle is mixed in one pass by a pair kernel (shared box:
        // swap; different boxes: overlapping, sharing rows but not columns, with rows between them, one
        // empty; box + blend in both orders); all must agree with out of place and with the reference,
        // float32 and uint8, 1 and 2 workers.
        // W = 9 rows take the vector-select path, W = 70 rows (> selectRowMaxLength) the copy/swap runs.
        for W in [9, 70] { try checkBoxTwoCycles(width: W) }
    }

    func checkBoxTwoCycles(width W: Int) throws {
        let savedThreads = Engine.threads, savedThreshold = MixApplyTuning.parallelThreshold
        defer { Engine.threads = savedThreads; MixApplyTuning.parallelThreshold = savedThreshold }
        MixApplyTuning.parallelThreshold = 1 << 10
        let B = 14, H = 12
        let shared = MixBox(y0: 2, y1: 9, x0: 1, x1: 6)
        var ops = [SampleMix](repeating: .box(shared), count: B)
        ops[1] = .box(MixBox(y0: 0, y1: 4, x0: 3, x1: 9))   // pair (1, 12): overlapping different boxes
        ops[2] = .box(MixBox(y0: 5, y1: 12, x0: 6, x1: 9))  // pair (2, 11): common rows, disjoint columns
        ops[3] = .blend(0.3)                                  // pair (3, 10): blend first, box second
        ops[4] = .box(MixBox(y0: 0, y1: 0, x0: 0, x1: 0))    // pair (4, 9): one empty box
        ops[8] = .blend(0.6)                                  // pair (5, 8): box first, blend second
        ops[6] = .box(MixBox(y0: 0, y1: 3, x0: 0, x1: 4))    // pair (6, 7): rows 3..<7 lie between the boxes
        ops[7] = .box(MixBox(y0: 7, y1: 12, x0: 2, x1: 9))
        let partner = (0..<B).map { B - 1 - $0 }
        for threads in [1, 2] {
            Engine.threads = threads
            for layout in [PixelLayout.nchw, .nhwc] {
                let s = try ImageBatchShape(batch: B, channels: 3, height: H, width: W, layout: layout)
                let r = try makeMixResult(shape: s, partner: partner, ops: ops)
                let x = MixRef.images(s.elementCount, seed: 11)
                var out = [Float](repeating: 0, count: x.count)
                try x.withUnsafeBufferPointer { xp in
                    try out.withUnsafeMutableBufferPointer { try r.apply(input: xp.baseAddress!, output: $0.baseAddress!, shape: s) }
                }
                var y = x
                try y.withUnsafeMutableBufferPointer { try r.apply(inPlace: $0.baseAddress!, shape: s) }
                XCTAssertTrue(y == out, "threads \(threads) \(layout) W \(W)")
                if layout == .nchw { XCTAssertTrue(MixRef.mix(x, s, r).elementsEqual(out) { abs($0 - $1) <= 1e-6 }) }
                let u = MixRef.bytes(s.elementCount, seed: 3)
                var uo = [UInt8](repeating: 0, count: u.count), ui = u
                try u.withUnsafeBufferPointer { up in
                    try uo.withUnsafeMutableBufferPointer { try r.apply(input: up.baseAddress!, output: $0.baseAddress!, shape: s) }
                }
                try ui.withUnsafeMutableBufferPointer { try r.apply(inPlace: $0.baseAddress!, shape: s) }
                XCTAssertTrue(ui == uo, "uint8 threads \(threads) \(layout) W \(W)")
                // the shared-box pair (0, 13) really exchanged its boxes and nothing else
                let n = 3 * H * W
                for c in 0..<3 { for yy in 0..<H { for xx in 0..<W {
                    let o = layout == .nchw ? (c * H + yy) * W + xx : (yy * W + xx) * 3 + c
                    let inside = yy >= shared.y0 && yy < shared.y1 && xx >= shared.x0 && xx < shared.x1
                    XCTAssertEqual(y[o], inside ? x[13 * n + o] : x[o])
                    XCTAssertEqual(y[13 * n + o], inside ? x[o] : x[13 * n + o])
                } } }
            }
        }
    }

    func testLargeBatchPolicyInPlaceMatchesOutOfPlace() throws {
        let s = try ImageBatchShape(batch: 128, channels: 3, height: 32, width: 32)
        let x = MixRef.images(s.elementCount, seed: 1)
        let policies: [any MixPolicy] = [try Mixup(), try CutMix(alpha: 1), try FMix(alpha: 1),
                                         try TimmMixup(MixupConfig(numClasses: 10, cutmixAlpha: 1, mode: .elem)),
                                         try Mixup(partner: .flip), try ResizeMix(partner: .derangement)]
        for p in policies {
            var rng1 = SplitMix64(seed: 5), rng2 = SplitMix64(seed: 5)
            var out = [Float](repeating: 0, count: x.count)
            try x.withUnsafeBufferPointer { xp in
                try out.withUnsafeMutableBufferPointer { _ = try p.mix(xp.baseAddress!, into: $0.baseAddress!, shape: s, lambda: nil, rng: &rng1) }
            }
            var y = x
            try y.withUnsafeMutableBufferPointer { _ = try p.mix($0.baseAddress!, shape: s, lambda: nil, rng: &rng2) }
            XCTAssertTrue(y == out, "\(type(of: p))")
        }
    }

    func testUInt8Rounding() {
        XCTAssertEqual(UInt8.mix(0, 255, 0.5, 0.5), 128)        // 127.5 rounds half up
        XCTAssertEqual(UInt8.mix(255, 255, 0.7, 0.3), 255)
        XCTAssertEqual(UInt8.mix(10, 20, 1, 0), 10)
        XCTAssertEqual(UInt8.mix(10, 20, 0, 1), 20)
        XCTAssertEqual(UInt8.mix(0, 255, 0.9, 0.1000001), 26)
    }

    func testOverlappingBuffersAndShapeMismatchThrow() throws {
        let s = try ImageBatchShape(batch: 4, channels: 1, height: 2, width: 2)
        let r = try makeMixResult(shape: s, partner: [1, 0, 3, 2], ops: [SampleMix](repeating: .blend(0.5), count: 4))
        var buf = [Float](repeating: 1, count: 20)
        try buf.withUnsafeMutableBufferPointer { p in
            let base = p.baseAddress!
            XCTAssertThrowsError(try r.apply(input: UnsafePointer(base), output: base + 2, shape: s))
            XCTAssertNoThrow(try r.apply(input: UnsafePointer(base), output: base, shape: s))
            let s2 = try ImageBatchShape(batch: 4, channels: 1, height: 2, width: 1)
            XCTAssertThrowsError(try r.apply(input: UnsafePointer(base), output: base, shape: s2))
        }
        XCTAssertThrowsError(try ImageBatchShape(batch: 0, channels: 1, height: 1, width: 1))
        XCTAssertThrowsError(try ImageBatchShape(batch: 1, channels: 1, height: -3, width: 1))
        XCTAssertThrowsError(try ImageBatchShape(batch: 1 << 30, channels: 1 << 20, height: 1 << 20, width: 1 << 20))
        XCTAssertThrowsError(try MixResult(batch: 2, height: 2, width: 2, partner: [0, 2], ops: [.keep, .keep],
                                           lambda: [1, 1], labelLambda: [1, 1]))
        XCTAssertThrowsError(try MixResult(batch: 1, height: 2, width: 2, partner: [0], ops: [.box(MixBox(y0: 0, y1: 3, x0: 0, x1: 1))],
                                           lambda: [1], labelLambda: [1]))
        XCTAssertThrowsError(try MixResult(batch: 1, height: 2, width: 2, partner: [0], ops: [.mask(0)],
                                           lambda: [1], labelLambda: [1]))
    }

    func testBadPolicyArgumentsThrow() throws {
        for a in [0.0, -1, .infinity, .nan] {
            XCTAssertThrowsError(try Mixup(alpha: a))
            XCTAssertThrowsError(try CutMix(alpha: a))
            XCTAssertThrowsError(try FMix(alpha: a))
            XCTAssertThrowsError(try GridMix(alpha: a))
            XCTAssertThrowsError(try ResizeMix(alpha: a))
            XCTAssertThrowsError(try SaliencyMix(alpha: a))
        }
        XCTAssertThrowsError(try CutMix(minMax: (0.5, 0.5)))
        XCTAssertThrowsError(try FMix(maxSoft: 0.7))
        XCTAssertThrowsError(try GridMix(nHoles: 0...3))
        XCTAssertThrowsError(try ResizeMix(scope: (0.9, 0.1)))
        XCTAssertThrowsError(try SmoothMix(sigmaRange: (0, 0.5)))
        let s = try ImageBatchShape(batch: 2, channels: 1, height: 2, width: 2)
        var x = [Float](repeating: 0, count: 8)
        var rng = SplitMix64(seed: 1)
        XCTAssertThrowsError(try Mixup().mix(&x, shape: s, lambda: 1.5, rng: &rng))
        XCTAssertThrowsError(try CutMix().mix(&x, shape: s, lambda: -0.1, rng: &rng))
        var short = [Float](repeating: 0, count: 7)
        XCTAssertThrowsError(try Mixup().mix(&short, shape: s, rng: &rng))
        XCTAssertThrowsError(try Mixup(partner: .explicit([0])).mix(&x, shape: s, rng: &rng))
        XCTAssertThrowsError(try Mixup(partner: .explicit([0, 2])).mix(&x, shape: s, rng: &rng))
        // policies whose α was corrupted after init still refuse to run
        var m = try Mixup()
        m.alpha = 0
        XCTAssertThrowsError(try m.mix(&x, shape: s, rng: &rng))
    }

    func testPartnerModes() throws {
        var rng = SplitMix64(seed: 2)
        for B in [1, 2, 3, 10] {
            for mode in [PartnerMode.permutation, .derangement, .flip, .roll] {
                let p = try mode.draw(batch: B, rng: &rng)
                XCTAssertEqual(p.sorted(), Array(0..<B))
                if mode == .derangement && B > 1 { XCTAssertTrue(p.enumerated().allSatisfy { $0.offset != $0.element }) }
            }
            XCTAssertEqual(try PartnerMode.flip.draw(batch: B, rng: &rng), (0..<B).map { B - 1 - $0 })
            XCTAssertEqual(try PartnerMode.roll.draw(batch: B, rng: &rng), (0..<B).map { ($0 + B - 1) % B })
        }
    }

    func testSoftTargets() throws {
        let lam: [Float] = [1, 0, 0.3, 0.75]
        let partner = [3, 2, 1, 0]
        let labels = [0, 1, 2, 2]
        for eps: Float in [0, 0.1, 0.5] {
            let t = try MixTargets.build(labels: labels, numClasses: 3, smoothing: eps, lambda: lam, partner: partner)
            let ref = MixRef.targets(labels: labels, K: 3, eps: eps, lam: lam, partner: partner)
            for k in 0..<t.count { XCTAssertEqual(t[k], ref[k], accuracy: 1e-6) }
            // dense one-hot labels give the same targets
            var dense = [Float](repeating: 0, count: 12)
            for i in 0..<4 { dense[i * 3 + labels[i]] = 1 }
            let td = try MixTargets.build(softLabels: dense, numClasses: 3, smoothing: eps, lambda: lam, partner: partner)
            for k in 0..<t.count { XCTAssertEqual(td[k], ref[k], accuracy: 1e-6) }
        }
        // λ = 1 with ε = 0 gives the exact one-hot; truly soft labels are mixed linearly
        let t1 = try MixTargets.build(labels: [2], numClasses: 4, smoothing: 0, lambda: [1], partner: [0])
        XCTAssertEqual(t1, [0, 0, 1, 0])
        let soft: [Float] = [0.2, 0.8, 0.6, 0.4]
        let ts = try MixTargets.build(softLabels: soft, numClasses: 2, smoothing: 0.1, lambda: [0.25, 0.5], partner: [1, 0])
        let a0 = 0.9 * 0.2 + 0.05, b0 = 0.9 * 0.6 + 0.05
        XCTAssertEqual(Double(ts[0]), 0.25 * a0 + 0.75 * b0, accuracy: 1e-6)
        XCTAssertEqual(ts[0] + ts[1], 1, accuracy: 1e-6)
        // in-place (aliasing) dense variant
        var inout_ = soft
        try inout_.withUnsafeMutableBufferPointer { p in
            try MixTargets.build(softLabels: UnsafePointer(p.baseAddress!), count: 2, numClasses: 2, smoothing: 0.1,
                                 lambda: [0.25, 0.5], partner: [1, 0], into: p.baseAddress!)
        }
        XCTAssertEqual(inout_, ts)
        // Int32 pointer labels
        let l32: [Int32] = [0, 1, 2, 2]
        var o = [Float](repeating: 0, count: 12)
        try l32.withUnsafeBufferPointer { lp in
            try o.withUnsafeMutableBufferPointer {
                try MixTargets.build(labels: lp.baseAddress!, count: 4, numClasses: 3, smoothing: 0.1, lambda: lam, partner: partner, into: $0.baseAddress!)
            }
        }
        XCTAssertEqual(o, try MixTargets.build(labels: labels, numClasses: 3, smoothing: 0.1, lambda: lam, partner: partner))
        // errors
        XCTAssertThrowsError(try MixTargets.build(labels: [0, 3], numClasses: 3, lambda: [1, 1], partner: [0, 1]))
        XCTAssertThrowsError(try MixTargets.build(labels: [0, -1], numClasses: 3, lambda: [1, 1], partner: [0, 1]))
        XCTAssertThrowsError(try MixTargets.build(labels: [0, 1], numClasses: 3, lambda: [1], partner: [0, 1]))
        XCTAssertThrowsError(try MixTargets.build(labels: [0, 1], numClasses: 3, lambda: [1, 2], partner: [0, 1]))
        XCTAssertThrowsError(try MixTargets.build(labels: [0, 1], numClasses: 3, smoothing: 1, lambda: [1, 1], partner: [0, 1]))
        XCTAssertThrowsError(try MixTargets.build(labels: [0, 1], numClasses: 0, lambda: [1, 1], partner: [0, 1]))
        XCTAssertThrowsError(try MixTargets.build(labels: [0, 1], numClasses: 3, lambda: [1, 1], partner: [0, 5]))
        let u8: [UInt8] = [200]
        var o2 = [Float](repeating: 0, count: 10)
        XCTAssertThrowsError(try u8.withUnsafeBufferPointer { lp in
            try o2.withUnsafeMutableBufferPointer {
                try MixTargets.build(labels: lp.baseAddress!, count: 1, numClasses: 10, smoothing: 0, lambda: [1], partner: [0], into: $0.baseAddress!)
            }
        })
    }

    func testPartnerWeightMap() throws {
        let s = try ImageBatchShape(batch: 3, channels: 1, height: 3, width: 4)
        let r = try makeMixResult(shape: s, partner: [1, 2, 2], ops: [.box(MixBox(y0: 1, y1: 3, x0: 0, x1: 2)), .blend(0.25), .blend(0.5)])
        XCTAssertEqual(try r.partnerWeightMap(sample: 0), [0, 0, 0, 0, 1, 1, 0, 0, 1, 1, 0, 0])
        XCTAssertEqual(try r.partnerWeightMap(sample: 1), [Float](repeating: 0.75, count: 12))
        XCTAssertEqual(try r.partnerWeightMap(sample: 2), [Float](repeating: 0, count: 12))   // self-paired
        XCTAssertEqual(r.lambda, [Float(1 - 4.0 / 12), 0.25, 0.5])
        XCTAssertThrowsError(try r.partnerWeightMap(sample: 3))
    }
}
