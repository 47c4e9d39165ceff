import SAMixCore
import SAMixOps

/// Gradient averaging in buckets that start their all-reduce while backward is still running —
/// the overlap of PyTorch DDP's reducer.
///
/// Parameters are grouped in reverse order (backward produces the last layers' gradients first)
/// into buckets of at most `capBytes`, the first at most `firstCapBytes` (DDP: 25 MiB and 1 MiB, so
/// the first bucket is ready soonest). When every parameter of a bucket has its final gradient
/// (`leafReady`, called by `Tensor.backward(onLeafReady:)`), the gradients × n_r (the rank's row
/// count) are packed into the bucket's flat buffer. Buckets start their non-blocking all-reduce
/// strictly in index order, so every rank starts the same collectives in the same order whatever
/// order its leaves become ready in; every hook call also polls the reductions in flight, since
/// Open MPI advances them only inside MPI calls. `finish` packs and starts what is left (parameters
/// the graph never reached contribute zeros), sums n_r·loss_r and n_r, waits, and writes
/// Σ_r n_r·g_r / Σ_r n_r back into every gradient: for 2 ranks bit-identical to one flat all-reduce
/// after backward (`DataParallel.averageGradients`), for more equal up to the order of float sums.
/// Ranks must agree on which parameters receive gradients (they run the same code); a parameter
/// without a gradient on this rank keeps none.
final class GradientBuckets {
    private struct Bucket {
        var parameters: [Tensor]
        var offsets: [Int]
        var count: Int
        var readyCount = 0
        var packed = false
        var pending: ProcessGroup.PendingReduction?
    }

    private let group: ProcessGroup
    private var buckets: [Bucket] = []
    /// Bucket and position of every parameter, by identity.
    private var slots: [ObjectIdentifier: (bucket: Int, index: Int)] = [:]
    private var isReady: [[Bool]] = []
    /// The flat buffer of every bucket (MPI reads and writes it while reductions are in flight, so
    /// it is manually allocated: its address never moves).
    private let buffer: UnsafeMutablePointer<Float>
    private var nextToStart = 0
    private var weight: Float = 1
    /// The parameters this bucketing was made for (in order), to reuse it across steps.
    let identity: [ObjectIdentifier]

    /// Number of buckets (for tests and benchmarks).
    var bucketCount: Int { buckets.count }

    init(parameters: [Tensor], group: ProcessGroup, capBytes: Int, firstCapBytes: Int) throws {
        try require(capBytes >= 4 && firstCapBytes >= 4, "gradient bucket caps must hold at least one float")
        self.group = group
        identity = parameters.map { ObjectIdentifier($0) }
        var total = 0
        var current = Bucket(parameters: [], offsets: [], count: 0)
        for p in parameters.reversed() {
            let cap = (buckets.isEmpty ? firstCapBytes : capBytes) / 4
            if !current.parameters.isEmpty && current.count + p.count > cap {
                buckets.append(current)
                current = Bucket(parameters: [], offsets: [], count: 0)
            }
            current.parameters.append(p)
            current.offsets.append(total)
            current.count += p.count
            total += p.count
        }
        if !current.parameters.isEmpty { buckets.append(current) }
        for (b, bucket) in buckets.enumerated() {
            for (i, p) in bucket.parameters.enumerated() { slots[ObjectIdentifier(p)] = (b, i) }
        }
        try require(slots.count == parameters.count, "a parameter is listed twice in the gradient buckets")
        isReady = buckets.map { [Bool](repeating: false, count: $0.parameters.count) }
        buffer = .allocate(capacity: max(total, 1))
        buffer.initialize(repeating: 0, count: max(total, 1))
    }

    deinit { buffer.deallocate() }

    /// Starts a step: this rank trains `rows` rows of the global batch.
    func begin(rows: Int) throws {
        try require(nextToStart == 0 || nextToStart == buckets.count, "gradient buckets: a step began before the last one finished")
        weight = Float(rows)
        nextToStart = 0
        for b in buckets.indices {
            buckets[b].readyCount = 0
            buckets[b].packed = false
            buckets[b].pending = nil
            for i in isReady[b].indices { isReady[b][i] = false }
        }
    }

    /// The backward hook: `leaf`'s gradient is final.
    func leafReady(_ leaf: Tensor) throws {
        guard let (b, i) = slots[ObjectIdentifier(leaf)], !isReady[b][i] else { return }
        isReady[b][i] = true
        buckets[b].readyCount += 1
        if buckets[b].readyCount == buckets[b].parameters.count { pack(b) }
        try startPackedBuckets()
        for b in 0..<nextToStart { if let p = buckets[b].pending { try group.poll(p) } }
    }

    /// Starts what is left, waits for every bucket, writes the averaged gradients back and returns
    /// the global batch's mean loss Σ n_r·loss_r / Σ n_r.
    func finish(loss: Double) throws -> Double {
        for b in buckets.indices where !buckets[b].packed { pack(b) }
        try startPackedBuckets()
        var sums = [loss * Double(weight), Double(weight)]
        try group.allreduceSum(&sums)
        for b in buckets.indices { if let p = buckets[b].pending { try group.wait(p) } }
        let scale = 1 / Float(sums[1])   // as averageGradients: the same numbers for 2 ranks
        for bucket in buckets {
            for (p, offset) in zip(bucket.parameters, bucket.offsets) {
                guard let g = p.grad else { continue }
                let src = buffer + offset, dst = g.data
                for k in 0..<p.count { dst[k] = src[k] * scale }
            }
        }
        return sums[0] / sums[1]
    }

    private func pack(_ b: Int) {
        let w = weight
        for (p, offset) in zip(buckets[b].parameters, buckets[b].offsets) {
            let dst = buffer + offset
            if let g = p.grad {
                let src = g.data
                for k in 0..<p.count { dst[k] = src[k] * w }
            } else {
                dst.update(repeating: 0, count: p.count)
            }
        }
        buckets[b].packed = true
    }

    /// Starts, in index order, every bucket that is packed and whose predecessors have started.
    private func startPackedBuckets() throws {
        while nextToStart < buckets.count && buckets[nextToStart].packed {
            let b = nextToStart
            let start = buckets[b].offsets[0]
            buckets[b].pending = try group.startAllreduceSum(buffer + start, count: buckets[b].count)
            nextToStart += 1
        }
    }
}
