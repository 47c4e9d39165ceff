import Glibc
import Synchronization

/// The processes of one data-parallel job and the collectives samix needs between them (Open MPI's
/// `MPI_COMM_WORLD`), or the single process (`ProcessGroup.single`, every collective the identity).
///
/// Every rank must call the same collectives in the same order (MPI's rule); the engine does so by
/// running the same deterministic loop on every rank. A collective that waits longer than `timeout`
/// seconds (a rank died, hung, or took another code path) makes this rank print the cause and abort
/// the whole job (`MPI_Abort`), so a job never hangs silently. MPI errors are returned, not fatal
/// (`MPI_ERRORS_RETURN`), and thrown as `SAMixError.distributed`.
public final class ProcessGroup: @unchecked Sendable {  // immutable; MPI calls serialized by `lock`
    /// This process's index in 0..<size, and the number of processes.
    public let rank: Int
    public let size: Int
    /// Seconds a collective may wait for the other ranks before the job is aborted.
    public let timeout: Double
    let mpi: OpenMPILibrary?
    /// The communicator (nil: `MPI_COMM_WORLD`; a `duplicate()` has its own).
    private let communicator: UnsafeMutableRawPointer?
    private let shared: Shared

    /// What a group and its duplicates share: one lock serialising MPI calls (samix initialises MPI
    /// with `MPI_THREAD_SERIALIZED`) and the time spent in collectives.
    private final class Shared: Sendable {
        let lock = Mutex<Void>(())
        let nanosInCollectives = Atomic<Int64>(0)
    }

    /// Wall-clock seconds this process has spent inside collectives (waiting included; this group and
    /// its duplicates), for benchmarks: communication time per step.
    public var secondsInCollectives: Double { Double(shared.nanosInCollectives.load(ordering: .relaxed)) * 1e-9 }

    /// Rank 0 prints and writes files.
    public var isMain: Bool { rank == 0 }
    /// Whether there is more than one process.
    public var isDistributed: Bool { size > 1 }
    /// "single process" or "Open MPI, rank r of n".
    public var description: String { mpi.map { "Open MPI (\($0.path)), rank \(rank) of \(size)" } ?? "single process" }

    init(rank: Int, size: Int, timeout: Double, mpi: OpenMPILibrary?) {
        self.rank = rank; self.size = size; self.timeout = timeout; self.mpi = mpi
        communicator = nil
        shared = Shared()
    }

    private init(duplicating g: ProcessGroup, communicator: UnsafeMutableRawPointer) {
        rank = g.rank; size = g.size; timeout = g.timeout; mpi = g.mpi
        self.communicator = communicator
        shared = g.shared
    }

    /// The same processes on a new communicator (`MPI_Comm_dup`; a collective: every rank calls it at
    /// the same point). Collectives on it are ordered independently of this group's, so non-blocking
    /// gradient reductions can be in flight while, e.g., synchronized BatchNorm uses this group.
    public func duplicate() throws -> ProcessGroup {
        guard size > 1, let mpi else { return self }
        var comm: UnsafeMutableRawPointer? = nil
        try call("MPI_Comm_dup") { m in m.commDup(self.comm(m), &comm) }
        guard let comm else { throw SAMixError.distributed("MPI_Comm_dup returned no communicator") }
        _ = mpi.commSetErrhandler(comm, mpi.errorsReturn)
        return ProcessGroup(duplicating: self, communicator: comm)
    }

    private func comm(_ m: OpenMPILibrary) -> UnsafeMutableRawPointer { communicator ?? m.commWorld }

    /// The single process: rank 0 of 1, no MPI.
    public static let single = ProcessGroup(rank: 0, size: 1, timeout: .infinity, mpi: nil)

    private static let worldState = Mutex<ProcessGroup?>(nil)

    /// Default collective timeout in seconds (`SAMIX_DISTRIBUTED_TIMEOUT` overrides it).
    public static let defaultTimeout = 300.0

    /// The job this process belongs to, created once. `SAMIX_DISTRIBUTED` decides:
    /// - unset or `auto` (default): Open MPI when the process was started by `mpirun` (Open MPI sets
    ///   `OMPI_COMM_WORLD_SIZE`), else the single process — MPI is then never loaded;
    /// - `mpi`: always Open MPI (a process started without mpirun is a one-rank job, MPI's singleton);
    /// - `off`: always the single process, even under mpirun (every rank trains its own model).
    /// MPI is initialised here (`MPI_THREAD_SERIALIZED`) unless the host program already did (e.g.
    /// mpi4py), and finalised at process exit when samix initialised it.
    public static func world() throws -> ProcessGroup {
        try worldState.withLock { state in
            if let g = state { return g }
            let g = try makeWorld()
            state = g
            return g
        }
    }

    /// Whether this process was started by Open MPI's launcher.
    public static var launchedByMPI: Bool { getenv("OMPI_COMM_WORLD_SIZE") != nil }

    private static func makeWorld() throws -> ProcessGroup {
        let mode = getenv("SAMIX_DISTRIBUTED").map { String(cString: $0).lowercased() } ?? "auto"
        let useMPI: Bool
        switch mode {
        case "", "auto": useMPI = launchedByMPI
        case "mpi", "1", "on": useMPI = true
        case "off", "0", "none": useMPI = false
        default:
            throw SAMixError.invalidArgument("SAMIX_DISTRIBUTED must be auto, mpi or off, got '\(mode)'")
        }
        guard useMPI else { return single }
        var timeout = defaultTimeout
        if let t = getenv("SAMIX_DISTRIBUTED_TIMEOUT") {
            guard let v = Double(String(cString: t)), v > 0, v.isFinite else {
                throw SAMixError.invalidArgument("SAMIX_DISTRIBUTED_TIMEOUT must be a positive number of seconds, got '\(String(cString: t))'")
            }
            timeout = v
        }
        let mpi = try OpenMPILibrary()
        var flag: Int32 = 0
        _ = mpi.initialized(&flag)
        if flag == 0 {
            var provided: Int32 = 0
            let code = mpi.initThread(nil, nil, 2 /* MPI_THREAD_SERIALIZED */, &provided)
            guard code == 0 else { throw SAMixError.distributed("MPI_Init_thread failed: \(mpi.message(code))") }
            exitState.withLock { $0 = mpi }
            atexit { ProcessGroup.finalizeAtExit() }
        }
        _ = mpi.commSetErrhandler(mpi.commWorld, mpi.errorsReturn)
        var r: Int32 = 0, s: Int32 = 0
        _ = mpi.commRank(mpi.commWorld, &r)
        _ = mpi.commSize(mpi.commWorld, &s)
        let g = ProcessGroup(rank: Int(r), size: Int(s), timeout: timeout, mpi: mpi)
        Watchdog.start(group: g)
        return g
    }

    private static let exitState = Mutex<OpenMPILibrary?>(nil)

    private static func finalizeAtExit() {
        guard let mpi = exitState.withLock({ $0 }) else { return }
        var done: Int32 = 0
        _ = mpi.finalized(&done)
        if done == 0 { _ = mpi.finalize() }
    }

    // MARK: - Collectives

    /// Runs one MPI call under the lock and the watchdog; a non-zero code is thrown.
    private func call(_ name: String, _ body: (OpenMPILibrary) -> Int32) throws {
        guard let mpi else { return }
        try shared.lock.withLock { _ in
            let t0 = Watchdog.nanos()
            Watchdog.begin(name)
            let code = body(mpi)
            Watchdog.end()
            shared.nanosInCollectives.add(Watchdog.nanos() - t0, ordering: .relaxed)
            if code != 0 { throw SAMixError.distributed("rank \(rank) of \(size): \(name) failed: \(mpi.message(code))") }
        }
    }

    /// Largest element count of one MPI call (its count is a C int).
    static let chunk = Int(Int32.max / 8)

    private func allreduce(_ p: UnsafeMutableRawPointer, count: Int, stride: Int, type: (OpenMPILibrary) -> UnsafeMutableRawPointer,
                           op: (OpenMPILibrary) -> UnsafeMutableRawPointer, name: String) throws {
        guard size > 1, count > 0 else { return }
        var start = 0
        while start < count {
            let n = min(Self.chunk, count - start)
            try call(name) { m in m.allreduce(OpenMPILibrary.inPlace, p + start * stride, Int32(n), type(m), op(m), comm(m)) }
            start += n
        }
    }

    /// Element-wise sum over ranks, in place (every rank receives the same values).
    public func allreduceSum(_ p: UnsafeMutablePointer<Float>, count: Int) throws {
        try allreduce(UnsafeMutableRawPointer(p), count: count, stride: 4, type: { $0.float32 }, op: { $0.opSum }, name: "allreduce(sum, float)")
    }

    /// A non-blocking all-reduce in flight (`startAllreduceSum`); `poll` advances it, `wait` ends it.
    public final class PendingReduction {
        fileprivate var request: UnsafeMutableRawPointer?
        public fileprivate(set) var done: Bool
        fileprivate init(request: UnsafeMutableRawPointer?, done: Bool) { self.request = request; self.done = done }
    }

    /// Starts summing `count` floats at `p` over ranks, in place (`MPI_Iallreduce`); the buffer must
    /// stay untouched until `wait` returns. Ranks must start their reductions in the same order.
    public func startAllreduceSum(_ p: UnsafeMutablePointer<Float>, count: Int) throws -> PendingReduction {
        guard size > 1, count > 0 else { return PendingReduction(request: nil, done: true) }
        try require(count <= Self.chunk, "a non-blocking all-reduce of \(count) floats exceeds one MPI call")
        var request: UnsafeMutableRawPointer? = nil
        try call("iallreduce(sum, float)") { m in
            m.iallreduce(OpenMPILibrary.inPlace, UnsafeMutableRawPointer(p), Int32(count), m.float32, m.opSum, comm(m), &request)
        }
        return PendingReduction(request: request, done: false)
    }

    /// Lets MPI progress a pending reduction (`MPI_Test`; returns at once). Open MPI advances a
    /// non-blocking collective only inside MPI calls, so callers poll between pieces of work.
    public func poll(_ pending: PendingReduction) throws {
        guard !pending.done else { return }
        var flag: Int32 = 0
        try call("test(iallreduce)") { m in m.test(&pending.request, &flag, nil) }
        if flag != 0 { pending.done = true }
    }

    /// Waits until `pending` has finished (under the collective timeout).
    public func wait(_ pending: PendingReduction) throws {
        guard !pending.done else { return }
        try call("wait(iallreduce)") { m in m.wait(&pending.request, nil) }
        pending.done = true
    }

    /// Element-wise sum over ranks, in place.
    public func allreduceSum(_ p: UnsafeMutablePointer<Double>, count: Int) throws {
        try allreduce(UnsafeMutableRawPointer(p), count: count, stride: 8, type: { $0.float64 }, op: { $0.opSum }, name: "allreduce(sum, double)")
    }

    /// Element-wise sum over ranks of an array.
    public func allreduceSum(_ values: inout [Double]) throws {
        try values.withUnsafeMutableBufferPointer { b in
            guard let p = b.baseAddress else { return }
            try allreduceSum(p, count: b.count)
        }
    }

    /// Element-wise maximum over ranks of an array.
    public func allreduceMax(_ values: inout [Double]) throws {
        try values.withUnsafeMutableBufferPointer { b in
            guard let p = b.baseAddress else { return }
            try allreduce(UnsafeMutableRawPointer(p), count: b.count, stride: 8, type: { $0.float64 },
                          op: { $0.opMax }, name: "allreduce(max, double)")
        }
    }

    /// Element-wise minimum over ranks of an array.
    public func allreduceMin(_ values: inout [Double]) throws {
        try values.withUnsafeMutableBufferPointer { b in
            guard let p = b.baseAddress else { return }
            try allreduce(UnsafeMutableRawPointer(p), count: b.count, stride: 8, type: { $0.float64 },
                          op: { $0.opMin }, name: "allreduce(min, double)")
        }
    }

    /// Copies `bytes` bytes at `p` from rank `root` to every rank.
    public func broadcast(_ p: UnsafeMutableRawPointer, bytes: Int, root: Int = 0) throws {
        guard size > 1, bytes > 0 else { return }
        var start = 0
        while start < bytes {
            let n = min(Self.chunk, bytes - start)
            try call("broadcast") { m in m.bcast(p + start, Int32(n), m.byte, Int32(root), comm(m)) }
            start += n
        }
    }

    /// Every rank's `values` (the same count on every rank), concatenated in rank order.
    public func allgather(_ values: [UInt64]) throws -> [UInt64] {
        guard size > 1 else { return values }
        var out = [UInt64](repeating: 0, count: values.count * size)
        try values.withUnsafeBufferPointer { src in
            try out.withUnsafeMutableBufferPointer { dst in
                try call("allgather") { m in
                    m.allgather(src.baseAddress, Int32(values.count), m.uint64, dst.baseAddress, Int32(values.count), m.uint64, comm(m))
                }
            }
        }
        return out
    }

    /// The rows [n_r, …] of every rank's tensor, concatenated in rank order (n_r may differ between
    /// ranks; the trailing shape must not).
    public func allgatherRows(_ t: Tensor) throws -> Tensor {
        guard size > 1 else { return t }
        try requireShape(t.rank >= 1, "allgatherRows needs a tensor with a row axis, got \(t.shape)")
        let trailing = Array(t.shape.dropFirst())
        try requireSame(["trailing shape \(trailing)"], what: "the row shape of an all-gather")
        let per = trailing.reduce(1, *)
        let counts = try allgather([UInt64(t.shape[0])]).map { Int($0) }
        let widest = counts.max() ?? 0
        let total = counts.reduce(0, +)
        let out = try Tensor(uninitializedShape: [total] + trailing)
        guard widest > 0, per > 0 else { return out }
        var send = [Float](repeating: 0, count: widest * per)
        send.withUnsafeMutableBufferPointer { b in b.baseAddress!.update(from: t.data, count: t.count) }
        var all = [Float](repeating: 0, count: widest * per * size)
        let bytes = widest * per * 4
        try require(bytes <= Int(Int32.max), "allgatherRows: \(bytes) bytes per rank exceed one MPI call")
        try send.withUnsafeBufferPointer { src in
            try all.withUnsafeMutableBufferPointer { dst in
                try call("allgather(rows)") { m in
                    m.allgather(src.baseAddress, Int32(bytes), m.byte, dst.baseAddress, Int32(bytes), m.byte, comm(m))
                }
            }
        }
        var offset = 0
        all.withUnsafeBufferPointer { a in
            for r in 0..<size {
                (out.data + offset * per).update(from: a.baseAddress! + r * widest * per, count: counts[r] * per)
                offset += counts[r]
            }
        }
        return out
    }

    /// Every rank's text, in rank order.
    public func allgather(text: String) throws -> [String] {
        guard size > 1 else { return [text] }
        let bytes = Array(text.utf8)
        let lengths = try allgather([UInt64(bytes.count)])
        let width = Int(lengths.max() ?? 0)
        var words = [UInt64](repeating: 0, count: (width + 7) / 8)
        words.withUnsafeMutableBytes { raw in raw.copyBytes(from: bytes) }
        let all = try allgather(words)
        return (0..<size).map { r in
            let slice = Array(all[(r * words.count)..<((r + 1) * words.count)])
            return slice.withUnsafeBytes { raw in String(decoding: raw.prefix(Int(lengths[r])), as: UTF8.self) }
        }
    }

    /// Waits until every rank arrives.
    public func barrier() throws {
        guard size > 1 else { return }
        try call("barrier") { m in m.barrier(comm(m)) }
    }

    // MARK: - Agreement checks

    /// Throws `SAMixError.distributed` on every rank unless every rank passed the same `lines`
    /// (e.g. "model=resnet20"); the message names the first line where a rank differs from rank 0.
    public func requireSame(_ lines: [String], what: String) throws {
        guard size > 1 else { return }
        let text = lines.joined(separator: "\n")
        let hashes = try allgather([FNV1a.hash(text)])
        if hashes.allSatisfy({ $0 == hashes[0] }) { return }
        let texts = try allgather(text: text)
        let reference = texts[0].split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        var details: [String] = []
        for r in 1..<size where hashes[r] != hashes[0] {
            let other = texts[r].split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            let i = (0..<min(reference.count, other.count)).first { reference[$0] != other[$0] } ?? min(reference.count, other.count)
            let a = i < reference.count ? "'\(reference[i])'" : "nothing", b = i < other.count ? "'\(other[i])'" : "nothing"
            details.append("rank \(r) has \(b) where rank 0 has \(a)")
        }
        throw SAMixError.distributed("the ranks disagree on \(what): " + details.joined(separator: "; "))
    }

    /// Throws on every rank unless every rank holds bit-identical `tensors` (same names on every
    /// rank, checked with `requireSame` first); the message names the first tensor that differs.
    public func requireIdentical(_ tensors: [(String, Tensor)], what: String) throws {
        guard size > 1 else { return }
        try requireSame(tensors.map { "\($0.0) \($0.1.shape)" }, what: "the names and shapes of \(what)")
        let local = tensors.map { FNV1a.hash($0.1.data, count: $0.1.count) }
        let all = try allgather(local)
        let k = local.count
        for r in 1..<size {
            for i in 0..<k where all[r * k + i] != all[i] {
                throw SAMixError.distributed("\(what) differ between ranks: '\(tensors[i].0)' on rank \(r) is not bit-identical to rank 0's")
            }
        }
    }

    /// Copies the values of `tensors` from rank `root` to every rank.
    public func broadcast(_ tensors: [Tensor], root: Int = 0) throws {
        guard size > 1 else { return }
        for t in tensors { try broadcast(UnsafeMutableRawPointer(t.data), bytes: t.count * 4, root: root) }
    }

    /// Ends the job from this rank: prints `message` and calls `MPI_Abort` (the launcher then stops
    /// every rank). Does nothing for the single process.
    public func abortJob(_ message: String) {
        guard let mpi else { return }
        FileIO.stderr("samix: rank \(rank) of \(size): \(message); aborting the job\n")
        _ = mpi.abort(mpi.commWorld, 3)
    }
}

/// 64-bit FNV-1a over 8-byte words (fast identity checks of text and tensors; not cryptographic).
package enum FNV1a {
    static let offset: UInt64 = 0xcbf2_9ce4_8422_2325, prime: UInt64 = 0x100_0000_01b3

    package static func hash(_ text: String) -> UInt64 {
        var h = offset
        for b in text.utf8 { h = (h ^ UInt64(b)) &* prime }
        return h
    }

    package static func hash(_ p: UnsafePointer<Float>, count: Int) -> UInt64 {
        var h = offset ^ UInt64(count)
        let raw = UnsafeRawPointer(p)
        let words = count / 2
        for i in 0..<words { h = (h ^ raw.loadUnaligned(fromByteOffset: i &* 8, as: UInt64.self)) &* prime }
        if count % 2 == 1 { h = (h ^ UInt64(p[count - 1].bitPattern)) &* prime }
        return h
    }
}

/// Aborts the job when a collective waits longer than the group's timeout: one background thread
/// checks, twice a second, how long the current collective (if any) has been running.
enum Watchdog {
    /// Start time of the running collective in nanoseconds (0: none).
    private static let started = Atomic<Int64>(0)
    private static let operation = Mutex<String>("")
    private static let group = Mutex<ProcessGroup?>(nil)

    static func nanos() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
    }

    static func begin(_ name: String) {
        operation.withLock { $0 = name }
        started.store(nanos(), ordering: .releasing)
    }

    static func end() { started.store(0, ordering: .releasing) }

    static func start(group g: ProcessGroup) {
        guard g.timeout.isFinite else { return }
        group.withLock { $0 = g }
        var thread = pthread_t()
        _ = pthread_create(&thread, nil, { _ in
            Watchdog.run()
            return nil
        }, nil)
        pthread_detach(thread)
    }

    private static func run() {
        guard let g = group.withLock({ $0 }) else { return }
        let limit = Int64(g.timeout * 1e9)
        while true {
            usleep(200_000)
            let t0 = started.load(ordering: .acquiring)
            guard t0 != 0, nanos() - t0 > limit else { continue }
            let name = operation.withLock { $0 }
            g.abortJob("waited more than \(g.timeout) s in \(name): another rank died, hung, or is running "
                       + "different code (SAMIX_DISTRIBUTED_TIMEOUT sets the limit)")
            sleep(10)
            _exit(3)
        }
    }
}
