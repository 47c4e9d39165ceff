import Glibc

/// Up-front memory checks: a call whose need can be estimated fails with `outOfMemory` before it
/// allocates anything, instead of failing half-way through — where oneDNN or OpenBLAS may not
/// recover from a failed allocation.
public enum MemoryBudget {
    /// Bytes this process can still allocate: the smaller of the address-space limit's headroom
    /// (`RLIMIT_AS` minus the current virtual size) and the system's available memory
    /// (`MemAvailable + SwapFree` of /proc/meminfo); nil when neither is known.
    public static func availableBytes() -> Int? {
        var candidates: [Int] = []
        var lim = rlimit()
        if getrlimit(RLIMIT_AS_ID, &lim) == 0, lim.rlim_cur != rlim_t.max, let used = virtualBytes() {
            candidates.append(max(0, Int(clamping: lim.rlim_cur) - used))
        }
        if let free = systemAvailableBytes() { candidates.append(free) }
        return candidates.min()
    }

    /// Throws `outOfMemory` when `bytes` clearly exceed `availableBytes()`; `what` names the call.
    public static func require(_ bytes: Int, for what: String) throws {
        guard let available = availableBytes(), bytes > available else { return }
        throw SAMixError.outOfMemory("\(what) needs about \(megabytes(bytes)) MB but only \(megabytes(available)) MB "
            + "can be allocated (address-space limit or free memory); use smaller batches")
    }

    static func megabytes(_ b: Int) -> Int { b / (1 << 20) }

    private static let RLIMIT_AS_ID = __rlimit_resource_t(RLIMIT_AS.rawValue)

    /// Current virtual size of the process (first field of /proc/self/statm, in pages).
    static func virtualBytes() -> Int? {
        guard let text = readSmallFile("/proc/self/statm"),
              let pages = text.split(separator: " ").first.flatMap({ Int($0) }) else { return nil }
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }

    /// MemAvailable + SwapFree from /proc/meminfo.
    static func systemAvailableBytes() -> Int? {
        guard let text = readSmallFile("/proc/meminfo") else { return nil }
        var found: [String: Int] = [:]
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: " ", omittingEmptySubsequences: true)
            guard parts.count >= 2, let kb = Int(parts[1]) else { continue }
            found[String(parts[0].dropLast())] = kb * 1024
        }
        guard let avail = found["MemAvailable"] else { return nil }
        return avail + (found["SwapFree"] ?? 0)
    }

    private static func readSmallFile(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var buf = [UInt8](repeating: 0, count: 8192)
        let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        guard n > 0 else { return nil }
        return String(decoding: buf[0..<n], as: UTF8.self)
    }
}
