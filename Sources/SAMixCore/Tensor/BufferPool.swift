import Synchronization
import Glibc

/// A caching allocator for float buffers: freed buffers are kept in per-size free lists and handed
/// out again, so a training step that repeats the same shapes allocates (and page-faults) only in
/// its first iteration. Buffers are 64-byte aligned. Thread-safe.
public final class BufferPool: Sendable {
    public static let shared = BufferPool()

    private struct State {
        var free: [Int: [UInt]] = [:]  // addresses (Sendable), not pointers
        var cachedBytes = 0
        var liveBytes = 0
        var peakLiveBytes = 0
        /// High-water mark of `liveBytes` since the last `measurePeak` began.
        var scopePeakBytes = 0
    }
    private let state = Mutex(State())

    /// Upper bound on bytes kept in the free lists; beyond it freed buffers go back to the OS.
    public let cacheLimitBytes: Int

    public init(cacheLimitBytes: Int = 8 << 30) { self.cacheLimitBytes = cacheLimitBytes }

    /// Size classes: exact multiples of 16 floats, so shapes that repeat map to the same list.
    @inline(__always) static func roundedCount(_ n: Int) -> Int { max(16, (n + 15) & ~15) }

    /// Returns an uninitialised buffer of at least `count` floats, or nil if the system is out of memory.
    public func allocate(_ count: Int) -> UnsafeMutablePointer<Float>? {
        let n = BufferPool.roundedCount(count)
        let bytes = n * 4
        let reused: UnsafeMutableRawPointer? = state.withLock { s -> UInt? in
            s.liveBytes += bytes
            s.peakLiveBytes = max(s.peakLiveBytes, s.liveBytes)
            s.scopePeakBytes = max(s.scopePeakBytes, s.liveBytes)
            if var list = s.free[n], let p = list.popLast() {
                s.free[n] = list
                s.cachedBytes -= bytes
                return p
            }
            return nil
        }.flatMap { UnsafeMutableRawPointer(bitPattern: $0) }
        if let p = reused { return p.assumingMemoryBound(to: Float.self) }
        var raw: UnsafeMutableRawPointer? = nil
        if posix_memalign(&raw, 64, bytes) != 0 || raw == nil {
            state.withLock { $0.liveBytes -= bytes }
            return nil
        }
        return raw!.assumingMemoryBound(to: Float.self)
    }

    /// Returns a buffer obtained from `allocate(count)` to the pool.
    public func release(_ p: UnsafeMutablePointer<Float>, count: Int) {
        let n = BufferPool.roundedCount(count)
        let bytes = n * 4
        let address = UInt(bitPattern: p)
        let limit = cacheLimitBytes
        let keep: Bool = state.withLock { s in
            s.liveBytes -= bytes
            if s.cachedBytes + bytes > limit { return false }
            s.free[n, default: []].append(address)
            s.cachedBytes += bytes
            return true
        }
        if !keep { free(p) }
    }

    /// Frees every cached buffer.
    public func trim() {
        let lists = state.withLock { s -> [[UInt]] in
            let l = Array(s.free.values)
            s.free = [:]
            s.cachedBytes = 0
            return l
        }
        for l in lists { for a in l { free(UnsafeMutableRawPointer(bitPattern: a)) } }
    }

    /// Runs `body` and returns the most bytes it held at once beyond what was live when it began
    /// (other threads' allocations meanwhile count too: an estimate, used for up-front memory checks).
    public func measurePeak(_ body: () throws -> Void) rethrows -> Int {
        let base = state.withLock { s -> Int in s.scopePeakBytes = s.liveBytes; return s.liveBytes }
        try body()
        return state.withLock { max(0, $0.scopePeakBytes - base) }
    }

    /// Bytes currently handed out / the maximum ever handed out at once / bytes cached.
    public var statistics: (live: Int, peakLive: Int, cached: Int) {
        state.withLock { ($0.liveBytes, $0.peakLiveBytes, $0.cachedBytes) }
    }
}
