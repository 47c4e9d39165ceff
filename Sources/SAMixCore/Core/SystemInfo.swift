import Glibc

/// Monotonic wall clock in seconds.
public enum Clock {
    public static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }
}

/// Process resource figures.
public enum ResourceUsage {
    /// Peak resident set size of this process in KiB (`ru_maxrss`).
    public static func peakRSSKilobytes() -> Int {
        var u = rusage()
        getrusage(RUSAGE_SELF.rawValue, &u)
        return Int(u.ru_maxrss)
    }
}

/// Writes to standard error without buffering (progress lines).
public enum FileIO {
    public static func stderr(_ s: String) {
        var s = s
        s.withUTF8 { b in _ = write(2, b.baseAddress, b.count) }
    }

    /// Whether `path` names an existing file or directory.
    public static func exists(_ path: String) -> Bool {
        access(path, F_OK) == 0
    }
}

/// Formats a Double with 3 decimals (no Foundation).
public func format3(_ x: Double) -> String {
    if !x.isFinite { return x.isNaN ? "NaN" : (x > 0 ? "Infinity" : "-Infinity") }
    let r = (x * 1000).rounded() / 1000
    var s = "\(r)"
    if s.contains("e") { return s }
    if let dot = s.firstIndex(of: ".") {
        let decimals = s.distance(from: dot, to: s.endIndex) - 1
        if decimals > 3 { s = String(s[..<s.index(dot, offsetBy: 4)]) }
    }
    return s
}

/// Flushes standard output (progress printed to a pipe is block-buffered otherwise).
public func flushStdout() { fflush(nil) }  // nil: every output stream (Swift 6 forbids reading the C global `stdout`)
