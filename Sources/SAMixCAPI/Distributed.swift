import Glibc
import SAMix

// The process group of a job started by mpirun (`ProcessGroup.world()`), for Python's
// `samix.distributed`: rank and size, a barrier and all-reduces of caller buffers.

/// out[2] = {rank, size}; initialises MPI on the first call when the process runs under mpirun
/// (see `ProcessGroup.world` for SAMIX_DISTRIBUTED); a single process gets {0, 1} without MPI.
@_cdecl("samix_distributed_info")
public func samix_distributed_info(_ out: UnsafeMutablePointer<Int64>?) -> Int32 {
    guarded("samix_distributed_info") {
        let out = try nonNull(out, "out")
        let g = try ProcessGroup.world()
        out[0] = Int64(g.rank)
        out[1] = Int64(g.size)
    }
}

@_cdecl("samix_distributed_barrier")
public func samix_distributed_barrier() -> Int32 {
    guarded("samix_distributed_barrier") { try ProcessGroup.world().barrier() }
}

/// In-place all-reduce of `count` values at `data` over every rank. dtype: 0 = float32,
/// 1 = float64; op: 0 = sum, 1 = max, 2 = min (max/min: float64 only).
@_cdecl("samix_distributed_allreduce")
public func samix_distributed_allreduce(_ data: UnsafeMutableRawPointer?, _ count: Int64, _ dtype: Int32, _ op: Int32) -> Int32 {
    guarded("samix_distributed_allreduce") {
        guard count >= 0, count <= 1 << 40 else { throw CAPIError(.invalidArgument, "count must be in 0...2^40, got \(count)") }
        guard count > 0 else { return }
        let p = try nonNull(data, "data")
        let g = try ProcessGroup.world()
        switch (dtype, op) {
        case (0, 0): try g.allreduceSum(p.assumingMemoryBound(to: Float.self), count: Int(count))
        case (1, 0): try g.allreduceSum(p.assumingMemoryBound(to: Double.self), count: Int(count))
        case (1, 1), (1, 2):
            let b = UnsafeMutableBufferPointer(start: p.assumingMemoryBound(to: Double.self), count: Int(count))
            var v = Array(b)
            if op == 1 { try g.allreduceMax(&v) } else { try g.allreduceMin(&v) }
            _ = b.update(from: v)
        default:
            throw CAPIError(.invalidArgument, "unsupported dtype \(dtype) / op \(op) (float32: sum; float64: sum, max, min)")
        }
    }
}
