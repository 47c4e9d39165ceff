import XCTest
import SAMix
@testable import SAMixCore
@testable import SAMixOps
@testable import SAMixNN
@testable import SAMixTraining

/// `Tensor.backward(onLeafReady:)` (each leaf reported once, when its gradient is final) and the
/// partition and bookkeeping of `GradientBuckets` (the reductions themselves are tested with two
/// ranks in tests/python/test_distributed.py).
final class GradientReadinessTests: XCTestCase {
    func testEveryLeafIsReportedOnceWithItsFinalGradientAndEarlyLayersLast() throws {
        var rng = SplitMix64(seed: 4)
        func leaf(_ shape: [Int]) throws -> Tensor {
            let t = try Tensor(zeros: shape)
            for i in 0..<t.count { t.data[i] = Float(rng.normal()) }
            t.requiresGrad = true
            return t
        }
        let x = try leaf([3, 4]); x.requiresGrad = false
        let w1 = try leaf([4, 5]), w2 = try leaf([5, 2]), shared = try leaf([5]), unused = try leaf([2])
        // shared enters twice, through two different nodes, at two depths
        let h = try (Tensor.matmul(x, w1) * shared).relu()
        let y = try (Tensor.matmul(h, w2).sum() + (h * shared).sum())
        var order: [ObjectIdentifier] = []
        var atReport: [ObjectIdentifier: [Float]] = [:]
        try y.backward(onLeafReady: { t in
            order.append(ObjectIdentifier(t))
            atReport[ObjectIdentifier(t)] = t.grad?.scalars
        })
        XCTAssertEqual(Set(order).count, order.count, "each leaf once")
        XCTAssertEqual(Set(order), Set([w1, w2, shared].map { ObjectIdentifier($0) }), "an unused leaf is never ready")
        for t in [w1, w2, shared] {
            XCTAssertEqual(atReport[ObjectIdentifier(t)], t.grad?.scalars, "the gradient was final when reported")
        }
        XCTAssertEqual(order.last, ObjectIdentifier(w1), "the first layer's weight is ready last")
        XCTAssertNil(unused.grad)
        // the same gradients as a backward without the hook
        let grads = [w1, w2, shared].map { $0.grad!.scalars }
        for t in [w1, w2, shared] { t.grad = nil }
        let h2 = try (Tensor.matmul(x, w1) * shared).relu()
        try (Tensor.matmul(h2, w2).sum() + (h2 * shared).sum()).backward()
        XCTAssertEqual([w1, w2, shared].map { $0.grad!.scalars }, grads)
    }

    func testBucketsPartitionParametersInReverseOrderUnderTheCaps() throws {
        let sizes = [300, 10, 200, 5, 600, 40]   // floats; first cap 1 KiB = 256 floats, then 2 KiB = 512
        let params = try sizes.map { n -> Tensor in let t = try Tensor(zeros: [n]); t.requiresGrad = true; return t }
        let b = try GradientBuckets(parameters: params, group: .single, capBytes: 2048, firstCapBytes: 1024)
        // reversed: 40 | 600 | 5, 200 | 10, 300  (a parameter larger than the cap gets a bucket of its own)
        XCTAssertEqual(b.bucketCount, 4)
        // one process: finish writes back Σ n·g / Σ n = g (n = rows), with or without leaf reports
        var rng = SplitMix64(seed: 1)
        for p in params { p.grad = try Tensor(zeros: p.shape); for i in 0..<p.count { p.grad!.data[i] = Float(rng.int(below: 100)) } }
        let before = params.map { $0.grad!.scalars }
        try b.begin(rows: 4)
        try b.leafReady(params[5])
        try b.leafReady(params[5])   // a second report changes nothing
        let mean = try b.finish(loss: 2.5)
        XCTAssertEqual(mean, 2.5)
        XCTAssertEqual(params.map { $0.grad!.scalars }, before)
        XCTAssertThrowsError(try GradientBuckets(parameters: [params[0], params[0]], group: .single, capBytes: 64, firstCapBytes: 64))
    }
}
