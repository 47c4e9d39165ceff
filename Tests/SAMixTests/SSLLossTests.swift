import XCTest
import SAMix
@testable import SAMixCore
@testable import SAMixOps
@testable import SAMixNN
@testable import SAMixData
@testable import SAMixMixing
@testable import SAMixTraining

/// InfoNCE, the mixed/local contrastive terms, L2 normalisation and the key queue, against plain-loop
/// references written here (Double precision, no engine ops).
final class SSLLossTests: XCTestCase {
    private func rows(_ t: Tensor) -> [[Double]] {
        let d = t.shape[1]
        return (0..<t.shape[0]).map { i in (0..<d).map { Double(t.data[i * d + $0]) } }
    }

    private func unit(_ shape: [Int], seed: UInt64) throws -> Tensor {
        try GradMode.withDisabled { try TestData.uniform(shape, seed: seed).l2NormalizedRows() }
    }

    private func dot(_ a: [Double], _ b: [Double]) -> Double { zip(a, b).reduce(0) { $0 + $1.0 * $1.1 } }

    /// −log softmax(logits)[target]
    private func ce(_ logits: [Double], _ target: Int) -> Double {
        let m = logits.max()!
        let lse = m + log(logits.reduce(0) { $0 + exp($1 - m) })
        return lse - logits[target]
    }

    func testL2NormalizedRowsValuesAndGradient() throws {
        let x = try TestData.uniform([4, 6], seed: 1, minMagnitude: 0.1)
        let y = try x.l2NormalizedRows()
        for (i, r) in rows(y).enumerated() {
            XCTAssertEqual(dot(r, r), 1, accuracy: 1e-5)
            let xr = rows(x)[i], nrm = dot(xr, xr).squareRoot()
            for j in 0..<6 { XCTAssertEqual(r[j], xr[j] / nrm, accuracy: 1e-6) }
        }
        assertGradients([x]) { try $0[0].l2NormalizedRows() }
    }

    func testInfoNCEMatchesLoopReference() throws {
        let n = 5, d = 8, k = 7
        let t: Float = 0.2
        let q = try unit([n, d], seed: 2), kp = try unit([n, d], seed: 3), queue = try unit([k, d], seed: 4)
        let loss = try Contrastive.infoNCE(query: q, positive: kp, negatives: queue, temperature: t)
        let qr = rows(q), kr = rows(kp), nr = rows(queue)
        var ref = 0.0
        for i in 0..<n {
            var logits = [dot(qr[i], kr[i]) / Double(t)]
            for j in 0..<k { logits.append(dot(qr[i], nr[j]) / Double(t)) }
            ref += ce(logits, 0)
        }
        ref /= Double(n)
        XCTAssertEqual(Double(loss.data[0]), ref, accuracy: 1e-5)
        // Gradients w.r.t. query and positive key (the queue is data).
        assertGradients([q, kp], wrt: [0, 1]) {
            try Contrastive.infoNCE(query: $0[0], positive: $0[1], negatives: queue, temperature: t)
        }
    }

    func testMixedAndPairwiseTermsMatchLoopReference() throws {
        let n = 4, d = 6, k = 5
        let t: Float = 0.2, lam: Float = 0.3
        let z = try unit([n, d], seed: 5), ka = try unit([n, d], seed: 6), kb = try unit([n, d], seed: 7)
        let queue = try unit([k, d], seed: 8)
        let mixed = try Contrastive.mixedInfoNCE(query: z, positiveA: ka, positiveB: kb, lam: lam, negatives: queue, temperature: t)
        let local = try Contrastive.pairwise(query: z, positiveA: ka, positiveB: kb, lam: lam, temperature: t)
        let zr = rows(z), ar = rows(ka), br = rows(kb), nr = rows(queue)
        var refMixed = 0.0, refLocal = 0.0
        let l = Double(lam), tt = Double(t)
        for i in 0..<n {
            let sa = dot(zr[i], ar[i]) / tt, sb = dot(zr[i], br[i]) / tt
            let neg = nr.map { dot(zr[i], $0) / tt }
            refMixed += l * ce([sa] + neg, 0) + (1 - l) * ce([sb] + neg, 0)
            refLocal += l * ce([sa, sb], 0) + (1 - l) * ce([sb, sa], 0)
        }
        XCTAssertEqual(Double(mixed.data[0]), refMixed / Double(n), accuracy: 1e-5)
        XCTAssertEqual(Double(local.data[0]), refLocal / Double(n), accuracy: 1e-5)
        assertGradients([z]) {
            try Contrastive.pairwise(query: $0[0], positiveA: ka, positiveB: kb, lam: lam, temperature: t)
                + Contrastive.mixedInfoNCE(query: $0[0], positiveA: ka, positiveB: kb, lam: lam, negatives: queue, temperature: t)
        }
        // λ = 1 reduces the mixed term to plain InfoNCE with positive A.
        let one = try Contrastive.mixedInfoNCE(query: z, positiveA: ka, positiveB: kb, lam: 1, negatives: queue, temperature: t)
        let plain = try Contrastive.infoNCE(query: z, positive: ka, negatives: queue, temperature: t)
        XCTAssertEqual(one.data[0], plain.data[0], accuracy: 1e-6)
    }

    func testQueueIsARingBuffer() throws {
        let capacity = 5, d = 3
        let queue = try KeyQueue(capacity: capacity, dimension: d, seed: 9)
        // Initial keys are unit vectors.
        for r in rows(queue.keys) { XCTAssertEqual(dot(r, r), 1, accuracy: 1e-5) }
        var reference = rows(queue.keys)
        var ptr = 0
        var next: Float = 1
        for b in [2, 2, 2, 1, 7] {
            var batch = [Float]()
            for _ in 0..<(b * d) { batch.append(next); next += 1 }
            try queue.enqueue(try Tensor(batch, shape: [b, d]))
            // Plain sequential ring write.
            for i in 0..<b {
                reference[ptr] = (0..<d).map { Double(batch[i * d + $0]) }
                ptr = (ptr + 1) % capacity
            }
            XCTAssertEqual(queue.pointer, ptr)
            XCTAssertEqual(rows(queue.keys), reference)
        }
        XCTAssertEqual(queue.filled, capacity)
        XCTAssertThrowsError(try queue.enqueue(try Tensor(zeros: [2, d + 1])))
    }

    /// After a MoCo step, the step's keys of view k sit at the queue pointer and the loss uses the
    /// queue as it was before.
    func testMoCoStepEnqueuesViewKKeys() throws {
        let cfg = try MoCoConfig(architecture: "resnet20", neckHidden: 16, embeddingDim: 8, queueSize: 12,
                                 shuffleBNGroups: 2, seed: 3)
        let moco = try MoCo(config: cfg)
        let xq = try TestData.uniform([4, 3, 8, 8], seed: 10), xk = try TestData.uniform([4, 3, 8, 8], seed: 11)
        let before = rows(moco.queue.keys)
        var rng = SplitMix64(seed: 1)
        let out = try moco.step(viewQ: xq, viewK: xk, rng: &rng)
        XCTAssertEqual(rows(moco.queue.keys), before, "the queue changes only in afterStep")
        try moco.afterStep(out)
        let after = rows(moco.queue.keys), keys = rows(out.keys)
        for i in 0..<4 { XCTAssertEqual(after[i], keys[i]) }
        for i in 4..<12 { XCTAssertEqual(after[i], before[i]) }
        XCTAssertEqual(moco.queue.pointer, 4)
        // The keys are the momentum encoder's normalised embeddings of view k.
        for r in keys { XCTAssertEqual(dot(r, r), 1, accuracy: 1e-5) }
    }

    /// Shuffle-BN: keys of a batch do not depend on the shuffle when there is one BN group, and
    /// come back in input order with several groups (each group equals a separate forward).
    func testShuffleBNGroupsReturnRowsInInputOrder() throws {
        let cfg = try MoCoConfig(architecture: "resnet20", neckHidden: 16, embeddingDim: 8, queueSize: 8, seed: 4)
        let moco = try MoCo(config: cfg)
        let x = try TestData.uniform([6, 3, 8, 8], seed: 12)
        let enc = moco.key
        let order = [3, 0, 5, 1, 4, 2]
        try GradMode.withDisabled {
            let plain = try enc.forward(x).embedding
            let shuffledOne = try enc.forward(x, groups: 1, order: order).embedding
            for i in 0..<plain.count { XCTAssertEqual(plain.data[i], shuffledOne.data[i], accuracy: 1e-5) }
            let grouped = try enc.forward(x, groups: 2, order: order).embedding
            // Group 0 = images 3, 0, 5 encoded together; compare image 0's key.
            let g0 = try enc.forward(try x.gatherRows([3, 0, 5])).embedding
            let d = grouped.shape[1]
            for j in 0..<d { XCTAssertEqual(grouped.data[0 * d + j], g0.data[1 * d + j], accuracy: 1e-5) }
            // And it differs from the single-group key (different BN statistics).
            var diff: Float = 0
            for j in 0..<d { diff = max(diff, abs(grouped.data[j] - plain.data[j])) }
            XCTAssertGreaterThan(diff, 1e-4)
        }
    }
}
