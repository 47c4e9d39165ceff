import XCTest
import SAMix
@testable import SAMixCore
@testable import SAMixOps
@testable import SAMixNN
@testable import SAMixData
@testable import SAMixMixing
@testable import SAMixTraining

/// The single-process side of data-parallel training: the process group without MPI, shard rows,
/// pairing groups (what N ranks pair), the grouped mask loss, and image-space policies trained on rows
/// of a mixed global batch. Multi-rank behaviour runs under mpirun in tests/python/test_distributed.py.
final class DistributedTests: XCTestCase {
    func testWorldWithoutMPIRunIsTheSingleProcessAndCollectivesAreIdentities() throws {
        XCTAssertNil(getenv("OMPI_COMM_WORLD_SIZE"), "run the Swift tests without mpirun")
        let g = try ProcessGroup.world()
        XCTAssertTrue(g === ProcessGroup.single)
        XCTAssertEqual(g.rank, 0)
        XCTAssertEqual(g.size, 1)
        XCTAssertTrue(g.isMain && !g.isDistributed)
        var v = [1.5, -2.0]
        try g.allreduceSum(&v)
        try g.allreduceMax(&v)
        XCTAssertEqual(v, [1.5, -2.0])
        XCTAssertEqual(try g.allgather([7, 9]), [7, 9])
        XCTAssertEqual(try g.allgather(text: "abc"), ["abc"])
        try g.requireSame(["model=resnet20"], what: "settings")
        try g.requireIdentical([("w", try Tensor([1, 2], shape: [2]))], what: "parameters")
        try g.barrier()
    }

    func testTensorHashSeesEveryBit() throws {
        let a = try Tensor([1, 2, 3], shape: [3]), b = try Tensor([1, 2, 3], shape: [3])
        XCTAssertEqual(FNV1a.hash(a.data, count: 3), FNV1a.hash(b.data, count: 3))
        b.data[2] = Float(bitPattern: b.data[2].bitPattern ^ 1)   // last bit of the odd tail element
        XCTAssertNotEqual(FNV1a.hash(a.data, count: 3), FNV1a.hash(b.data, count: 3))
        XCTAssertNotEqual(FNV1a.hash("model=resnet20"), FNV1a.hash("model=resnet18"))
    }

    func testShardsPartitionTheGlobalBatch() throws {
        for size in 1...4 {
            for count in [size, 7, 10, 128] where count >= size {
                var covered: [Int] = []
                for rank in 0..<size {
                    let dp = try DataParallel(group: ProcessGroup(rank: rank, size: size, timeout: 1, mpi: nil), syncBatchNorm: false)
                    let r = dp.rows(of: count)
                    XCTAssertFalse(r.isEmpty)
                    XCTAssertLessThanOrEqual(abs(r.count - count / size), 1)
                    covered += Array(r)
                }
                XCTAssertEqual(covered, Array(0..<count), "size \(size), count \(count)")
            }
        }
    }

    func testBatchRowsCopiesTheRows() throws {
        let x = try Tensor((0..<24).map(Float.init), shape: [4, 1, 2, 3])
        let b = Batch(images: x, labels: [0, 1, 2, 3], indices: [10, 11, 12, 13], epoch: 2, index: 5)
        let r = try b.rows(1..<3)
        XCTAssertEqual(r.images.shape, [2, 1, 2, 3])
        XCTAssertEqual(Array(UnsafeBufferPointer(start: r.images.data, count: 12)), (6..<18).map(Float.init))
        XCTAssertEqual(r.labels, [1, 2])
        XCTAssertEqual(r.indices, [11, 12])
        XCTAssertEqual(r.epoch, 2)
        XCTAssertEqual(r.index, 5)
        XCTAssertThrowsError(try b.rows(3..<5))
    }

    func testGroupedPermutationPairsInsideEachGroupWithOneSharedPermutation() throws {
        for derange in [false, true] {
            var r1 = SplitMix64(seed: 5), r2 = SplitMix64(seed: 5), r3 = SplitMix64(seed: 5)
            // One group is exactly the ungrouped draw (default runs are unchanged).
            XCTAssertEqual(LearnedMixing.permutation(12, groups: 1, withoutFixedPoints: derange, rng: &r1),
                           LearnedMixing.permutation(12, withoutFixedPoints: derange, rng: &r2))
            let p = LearnedMixing.permutation(12, groups: 3, withoutFixedPoints: derange, rng: &r3)
            var r4 = SplitMix64(seed: 5)
            let local = LearnedMixing.permutation(4, withoutFixedPoints: derange, rng: &r4)  // what each of 3 ranks draws
            XCTAssertEqual(p, (0..<3).flatMap { g in local.map { 4 * g + $0 } })
            XCTAssertEqual(Set(p), Set(0..<12))
            if derange { XCTAssertTrue(p.enumerated().allSatisfy { $0.offset != $0.element }) }
        }
    }

    func testGroupedMaskLossIsTheMeanOfTheGroupsLossesWithGradients() throws {
        let m = try TestData.uniform([4, 1, 3, 3], seed: 8, lo: 0.05, hi: 0.95)
        for mode in MaskLoss.Mode.allCases {
            let loss = try MaskLoss(mode: mode, scope: .batch)
            let whole = try loss(partnerMask: m, lam: 0.3, batchGroups: 2).data[0]
            let a = try loss(partnerMask: try Batch(images: m, labels: [0, 0, 0, 0], indices: [0, 1, 2, 3], epoch: 0, index: 0)
                                .rows(0..<2).images, lam: 0.3).data[0]
            let b = try loss(partnerMask: try Batch(images: m, labels: [0, 0, 0, 0], indices: [0, 1, 2, 3], epoch: 0, index: 0)
                                .rows(2..<4).images, lam: 0.3).data[0]
            XCTAssertEqual(whole, (a + b) / 2, accuracy: 1e-6, "\(mode)")
            XCTAssertEqual(try loss(partnerMask: m, lam: 0.3, batchGroups: 1).data[0], try loss(partnerMask: m, lam: 0.3).data[0])
            assertGradients([m], checker: GradCheck(eps: 1e-3, rtol: 1e-2, atol: 1e-4)) {
                try loss(partnerMask: $0[0], lam: 0.15, batchGroups: 2)
            }
        }
        XCTAssertThrowsError(try MaskLoss(mode: .l1, scope: .batch)(partnerMask: m, lam: 0.3, batchGroups: 3))
    }

    func testImageSpacePolicyTrainsOnRowsOfTheMixedGlobalBatch() throws {
        // In evaluation mode (no batch coupling through BatchNorm) the mean of the two halves' losses,
        // each computed from the mixed global batch, equals the whole batch's loss.
        var rng = SplitMix64(seed: 3)
        let n = 8
        let x = try Tensor((0..<(n * 3 * 8 * 8)).map { _ in Float(rng.normal()) }, shape: [n, 3, 8, 8])
        let labels = (0..<n).map { $0 % 3 }
        let net = try ModelZoo.make("resnet20", numClasses: 3, inChannels: 3, seed: 1)
        net.eval()
        for mix in ["mixup", "cutmix"] {
            let obj = try XCTUnwrap(try ObjectiveRegistry.make(mix) as? MixPolicyObjective)
            func loss(_ rows: Range<Int>?) throws -> Float {
                let batch = Batch(images: try x.copy(), labels: labels, indices: Array(0..<n), epoch: 0, index: 0)
                var ctx = StepContext(step: 0, totalSteps: 1, epoch: 0, rng: SplitMix64(seed: 11))
                return try GradMode.withDisabled {
                    try rows.map { try obj.loss(model: net, globalBatch: batch, rows: $0, context: &ctx) }
                        ?? obj.loss(model: net, batch: batch, context: &ctx)
                }.data[0]
            }
            let whole = try loss(nil)
            XCTAssertEqual(try loss(0..<n), whole, "\(mix): all rows is the plain step")
            XCTAssertEqual((try loss(0..<3) * 3 + loss(3..<n) * 5) / 8, whole, accuracy: 1e-5, "\(mix)")
        }
    }

    func testDistributingOverOneProcessChangesNothing() throws {
        let net = try ModelZoo.make("resnet20", numClasses: 2, inChannels: 1, seed: 0)
        let obj = try ObjectiveRegistry.make("vanilla")
        let t = Trainer(model: net, objective: obj, optimizer: try Trainer.sgd(model: net, objective: obj, lr: 0.1))
        try t.distribute(over: .single, syncBatchNorm: true)
        XCTAssertNil(t.dataParallel)
        XCTAssertFalse(try t.distributeIfLaunched())
        XCTAssertNil(t.resumeNote)
    }

    func testDefaultThreadsShareTheCoresAmongTheNodesRanks() throws {
        let cores = Engine.defaultThreads
        setenv("OMPI_COMM_WORLD_LOCAL_SIZE", "2", 1)
        defer { unsetenv("OMPI_COMM_WORLD_LOCAL_SIZE") }
        XCTAssertEqual(Engine.defaultThreads, max(1, cores / 2))
        setenv("OMPI_COMM_WORLD_LOCAL_SIZE", "1000", 1)
        XCTAssertEqual(Engine.defaultThreads, 1)
    }

    func testMissingOpenMPIIsAClearError() throws {
        setenv("SAMIX_MPI_LIBRARY", "/nonexistent/libmpi.so", 1)
        defer { unsetenv("SAMIX_MPI_LIBRARY") }
        XCTAssertThrowsError(try OpenMPILibrary()) { e in
            guard case SAMixError.distributed(let m) = e else { return XCTFail("\(e)") }
            XCTAssertTrue(m.contains("/nonexistent/libmpi.so") && m.contains("Open MPI"), m)
        }
    }
}
