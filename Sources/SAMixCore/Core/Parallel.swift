import Dispatch
import COpenBLAS
import Synchronization

/// Engine-wide thread settings. samix parallelises its own kernels over `threads` workers
/// (contiguous chunks of the batch) and runs BLAS single-threaded inside each worker, which on
/// this class of machine beats OpenBLAS's own spin-waiting threads (machine-notes).
public enum Engine {
    private static let threadCount = Atomic<Int>({
        if case .success(let n)? = threadCount(fromEnvironment: environment("SAMIX_NUM_THREADS")) { return n }
        return defaultThreads
    }())
    /// Online CPUs, at most 64; under mpirun, divided among the ranks on this node
    /// (`OMPI_COMM_WORLD_LOCAL_SIZE`), so N ranks × default threads do not oversubscribe the cores
    /// (spinning workers of oversubscribed ranks slow every step by several times).
    static var defaultThreads: Int {
        let cores = max(1, min(Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))), 64))
        let localRanks = environment("OMPI_COMM_WORLD_LOCAL_SIZE").flatMap { Int($0) }.map { max($0, 1) } ?? 1
        return max(1, cores / localRanks)
    }
    /// Valid worker-thread counts.
    public static let threadRange = 1...256

    /// A variable of the process environment.
    public static func environment(_ name: String) -> String? { getenv(name).map { String(cString: $0) } }

    /// `SAMIX_NUM_THREADS`'s value parsed: nil when unset, else the count or why it is invalid.
    static func threadCount(fromEnvironment value: String?) -> Result<Int, SAMixError>? {
        guard let value else { return nil }
        guard let n = Int(value), threadRange.contains(n) else {
            return .failure(.invalidArgument("SAMIX_NUM_THREADS must be an integer in \(threadRange.lowerBound)...\(threadRange.upperBound), got '\(value)'"))
        }
        return .success(n)
    }

    /// Problems with the engine's environment switches (`SAMIX_NUM_THREADS`, `SAMIX_CONV`,
    /// `SAMIX_CONV_ALGO`, `SAMIX_WINOGRAD_MIN_CHANNELS`), one message each; `lookup` reads a
    /// variable (default: the process environment). Invalid values are never silently replaced by
    /// defaults: front ends call `checkEnvironment()` before any work.
    public static func environmentProblems(lookup: (String) -> String? = Engine.environment) -> [String] {
        var out: [String] = []
        if case .failure(let e)? = threadCount(fromEnvironment: lookup("SAMIX_NUM_THREADS")) { out.append(e.message) }
        let choices: [(String, [String])] = [("SAMIX_CONV", ["dnnl", "im2col"]), ("SAMIX_CONV_ALGO", ["default", "direct", "winograd"]),
                                             ("SAMIX_THREAD_POOL", ["openmp", "dispatch"])]
        for (name, allowed) in choices {
            if let v = lookup(name), !allowed.contains(v) {
                out.append("\(name) must be one of \(allowed.joined(separator: ", ")), got '\(v)'")
            }
        }
        if let v = lookup("SAMIX_WINOGRAD_MIN_CHANNELS"), !(Int(v).map { $0 >= 1 } ?? false) {
            out.append("SAMIX_WINOGRAD_MIN_CHANNELS must be an integer ≥ 1, got '\(v)'")
        }
        return out
    }

    /// Throws `invalidArgument` naming every invalid environment switch.
    public static func checkEnvironment() throws {
        let p = environmentProblems()
        if !p.isEmpty { throw SAMixError.invalidArgument(p.joined(separator: "; ")) }
    }

    /// Sets the worker-thread count; a value outside `threadRange` is an error (never clamped).
    public static func setThreads(_ n: Int) throws {
        guard threadRange.contains(n) else {
            throw SAMixError.invalidArgument("number of threads must be in \(threadRange.lowerBound)...\(threadRange.upperBound), got \(n)")
        }
        threads = n
    }
    /// Initialised once, thread-safely (Swift's lazy globals use `swift_once`).
    private static let blasConfigured: Bool = {
        openblas_set_num_threads(1)
        // Let OpenBLAS allocate its packing buffers now, while memory is plentiful: its allocator
        // retries forever when that allocation fails later (under a tight address-space limit).
        DispatchQueue.concurrentPerform(iterations: max(1, threads)) { _ in
            let a = [Float](repeating: 0, count: 64)
            var c = [Float](repeating: 0, count: 64)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, 8, 8, 8, 1, a, 8, a, 8, 0, &c, 8)
        }
        return true
    }()

    /// Number of worker threads samix kernels use (default: online CPUs divided among the node's
    /// mpirun ranks, or `SAMIX_NUM_THREADS`).
    public static var threads: Int {
        get { threadCount.load(ordering: .relaxed) }
        set { threadCount.store(max(1, min(newValue, 256)), ordering: .relaxed) }
    }

    /// Makes OpenBLAS single-threaded once (samix does the threading) and lets it allocate its
    /// buffers; called before the first GEMM and when a model is created.
    @inline(__always)
    public static func configureBLAS() {
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
        let shared = RaceFreeByContract(body)
        if let omp = OpenMPTeam.shared, !ForkedChild.isForked {
            omp.run(workers) { w in
                let start = w * base + min(w, extra)
                shared.value(w, start..<(start + base + (w < extra ? 1 : 0)))
            }
        } else {
            DispatchQueue.concurrentPerform(iterations: workers) { w in
                let start = w * base + min(w, extra)
                shared.value(w, start..<(start + base + (w < extra ? 1 : 0)))
            }
        }
    }
}

/// The OpenMP thread team of the libgomp that oneDNN loaded, used for the engine's own parallel
/// loops (`SAMIX_THREAD_POOL=openmp`, the default), so one set of threads serves oneDNN's kernels and
/// samix's element-wise ops instead of two pools spinning against each other on the same cores
/// (measured: ResNet-20 step 375 → 265 ms at 2 threads). GNU libgomp's pool does not survive
/// `fork()` (a child's first parallel region waits forever for the parent's threads), so a forked
/// child (e.g. a PyTorch DataLoader worker mixing batches) runs samix's loops on libdispatch
/// (`ForkedChild`).
@usableFromInline
final class OpenMPTeam: @unchecked Sendable {  // immutable function pointers
    typealias Body = @convention(c) (UnsafeMutableRawPointer?) -> Void
    let parallel: @convention(c) (Body, UnsafeMutableRawPointer?, UInt32, UInt32) -> Void
    let threadNumber: @convention(c) () -> Int32
    let teamSize: @convention(c) () -> Int32

    @usableFromInline static let shared: OpenMPTeam? = {
        guard Engine.environment("SAMIX_THREAD_POOL") ?? "openmp" == "openmp",
              let lib = dlopen("libgomp.so.1", RTLD_NOW | RTLD_NOLOAD),
              let p = dlsym(lib, "GOMP_parallel"), let t = dlsym(lib, "omp_get_thread_num"),
              let n = dlsym(lib, "omp_get_num_threads") else { return nil }
        return OpenMPTeam(parallel: unsafeBitCast(p, to: (@convention(c) (Body, UnsafeMutableRawPointer?, UInt32, UInt32) -> Void).self),
                          threadNumber: unsafeBitCast(t, to: (@convention(c) () -> Int32).self),
                          teamSize: unsafeBitCast(n, to: (@convention(c) () -> Int32).self))
    }()

    init(parallel: @escaping @convention(c) (Body, UnsafeMutableRawPointer?, UInt32, UInt32) -> Void,
         threadNumber: @escaping @convention(c) () -> Int32, teamSize: @escaping @convention(c) () -> Int32) {
        self.parallel = parallel
        self.threadNumber = threadNumber
        self.teamSize = teamSize
    }

    private struct Context {
        let run: (Int) -> Void
        let workers: Int
        let team: OpenMPTeam
    }

    /// Runs `chunk(w)` once for every w in 0..<workers: team thread t runs chunks t, t + T, … (T = the
    /// team's real size, which is 1 inside another parallel region).
    @usableFromInline
    func run(_ workers: Int, _ chunk: (Int) -> Void) {
        ForkedChild.watch()
        withoutActuallyEscaping(chunk) { chunk in
            var ctx = Context(run: chunk, workers: workers, team: self)
            withUnsafeMutablePointer(to: &ctx) { p in
                parallel({ raw in
                    let c = raw!.assumingMemoryBound(to: Context.self).pointee
                    let t = Int(c.team.threadNumber()), size = max(1, Int(c.team.teamSize()))
                    for w in stride(from: t, to: c.workers, by: size) { c.run(w) }
                }, UnsafeMutableRawPointer(p), UInt32(workers), 0)
            }
        }
    }
}

/// Hands a value to concurrently running workers that the type system cannot prove race-free: the
/// parallel loops' bodies write through raw pointers into disjoint ranges (their documented contract,
/// checked by the ops' thread-count invariance tests), which Swift's `Sendable` cannot express.
@usableFromInline
struct RaceFreeByContract<Value>: @unchecked Sendable {
    @usableFromInline let value: Value
    @inlinable init(_ value: Value) { self.value = value }
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

/// `parallelFor` whose body may throw: every item runs, then the error of the lowest failing index is
/// rethrown (deterministic whatever the thread count).
public func parallelForThrowing(_ count: Int, _ body: (Int) throws -> Void) throws {
    let failure = Mutex<(index: Int, error: any Error)?>(nil)
    parallelFor(count) { i in
        do { try body(i) } catch {
            failure.withLock { f in
                if let kept = f, kept.index < i { return }
                f = (i, error)
            }
        }
    }
    if let f = failure.withLock({ $0 }) { throw f.error }
}

/// Whether this process is the child of a `fork()` made after samix started its threads. GNU
/// libgomp's thread pool does not survive fork: a child's next multi-threaded OpenMP region waits
/// forever for the parent's threads. The child handler therefore sets the OpenMP thread count to
/// 1 (oneDNN's kernels then run on the child's one thread) and samix's own loops use libdispatch.
public enum ForkedChild {
    @usableFromInline static let forked = Atomic<Bool>(false)

    /// True in a child forked after `watch()`.
    @inlinable public static var isForked: Bool { forked.load(ordering: .relaxed) }

    /// `omp_set_num_threads`, resolved before the handler is registered (no dlsym after fork).
    private static let ompSetNumThreads: (@convention(c) (Int32) -> Void)? =
        dlsym(UnsafeMutableRawPointer(bitPattern: 0), "omp_set_num_threads")
            .map { unsafeBitCast($0, to: (@convention(c) (Int32) -> Void).self) }

    private static let installed: Bool = {
        _ = ompSetNumThreads
        return pthread_atfork(nil, nil, {
            ForkedChild.forked.store(true, ordering: .relaxed)
            ForkedChild.ompSetNumThreads?(1)
        }) == 0
    }()

    /// Installs the fork handler (once); call before the first parallel region.
    public static func watch() { _ = installed }
}
