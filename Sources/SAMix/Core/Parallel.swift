import Dispatch
import COpenBLAS

/// Engine-wide thread settings. samix parallelises its own kernels over `threads` workers
/// (contiguous chunks of the batch) and runs BLAS single-threaded inside each worker, which on
/// this class of machine beats OpenBLAS's own spin-waiting threads (machine-notes).
public enum Engine {
    nonisolated(unsafe) private static var _threads: Int = {
        if let s = getenv("SAMIX_NUM_THREADS"), let n = Int(String(cString: s)), n > 0 { return n }
        return max(1, min(Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))), 64))
    }()
    /// Initialised once, thread-safely (Swift's lazy globals use `swift_once`).
    private static let blasConfigured: Bool = {
        openblas_set_num_threads(1)
        return true
    }()

    /// Number of worker threads samix kernels use (default: online CPUs, or `SAMIX_NUM_THREADS`).
    public static var threads: Int {
        get { _threads }
        set { _threads = max(1, min(newValue, 256)) }
    }

    /// Makes OpenBLAS single-threaded once; samix does the threading.
    @inline(__always)
    static func configureBLAS() {
        _ = blasConfigured
    }

    /// OpenBLAS build description (`openblas_get_config`).
    public static var blasDescription: String {
        guard let c = openblas_get_config() else { return "OpenBLAS" }
        let config = String(cString: c)
        return config.hasPrefix("OpenBLAS") ? config : "OpenBLAS " + config
    }
}

import Glibc

/// Runs `body(chunkIndex, range)` over `0..<count` split into at most `Engine.threads` contiguous
/// chunks. The partition depends only on `count` and the thread count, so per-chunk partial results
/// combine deterministically.
@inlinable
public func parallelChunks(_ count: Int, minChunk: Int = 1, _ body: (Int, Range<Int>) -> Void) {
    if count <= 0 { return }
    let workers = max(1, min(Engine.threads, (count + minChunk - 1) / max(minChunk, 1)))
    if workers == 1 {
        body(0, 0..<count)
        return
    }
    let base = count / workers, extra = count % workers
    withoutActuallyEscaping(body) { body in
        DispatchQueue.concurrentPerform(iterations: workers) { w in
            let start = w * base + min(w, extra)
            let end = start + base + (w < extra ? 1 : 0)
            body(w, start..<end)
        }
    }
}

/// Number of chunks `parallelChunks` will use for `count` items.
@inlinable
public func parallelChunkCount(_ count: Int, minChunk: Int = 1) -> Int {
    if count <= 0 { return 0 }
    return max(1, min(Engine.threads, (count + minChunk - 1) / max(minChunk, 1)))
}

/// Parallel loop over `0..<count`, items distributed in contiguous chunks.
@inlinable
public func parallelFor(_ count: Int, minChunk: Int = 1, _ body: (Int) -> Void) {
    parallelChunks(count, minChunk: minChunk) { _, r in for i in r { body(i) } }
}
