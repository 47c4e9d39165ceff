import Glibc

/// Crash-safe file replacement: the new contents go to a temporary file in the same directory,
/// which is flushed to disk (`fsync`) and then renamed over the destination (atomic on POSIX file
/// systems); finally the directory entry is synced. A failure or crash at any point before the
/// rename leaves the previous file untouched; a failure removes the temporary file.
public enum AtomicFile {
    /// Writes the file at `path` with the bytes produced by `body` (which calls the writer any
    /// number of times). Errors are `SAMixError.io` naming the path.
    public static func write(_ path: String, _ body: (inout Writer) throws -> Void) throws {
        try require(!path.isEmpty, "file path is empty")
        try require(!path.utf8.contains(0), "file path contains a NUL byte")
        let (dir, base) = split(path)
        try require(!base.isEmpty && base != "." && base != "..", "'\(path)' does not name a file")
        var st = stat()
        if stat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR {
            throw SAMixError.io("\(path): is a directory")
        }
        removeStaleTemporaries(dir: dir, base: base)
        var rng = SplitMix64(seed: UInt64(UInt32(bitPattern: getpid())) << 32 ^ UInt64(UInt(bitPattern: time(nil))) ^ nonce())
        let tmp = (dir == "" ? "" : dir + "/") + "." + base + ".tmp-\(getpid())-\(String(rng.next() & 0xFFFF_FFFF, radix: 16))"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw SAMixError.io("\(path): cannot create a temporary file in '\(dir.isEmpty ? "." : dir)' (\(errorText()))") }
        var open = true
        do {
            var w = Writer(fd: fd, path: path)
            try body(&w)
            guard fsync(fd) == 0 else { throw SAMixError.io("\(path): fsync failed (\(errorText()))") }
            open = false
            guard close(fd) == 0 else { throw SAMixError.io("\(path): close failed (\(errorText()))") }
            guard rename(tmp, path) == 0 else { throw SAMixError.io("\(path): cannot replace the file (\(errorText()))") }
        } catch {
            if open { close(fd) }
            unlink(tmp)
            throw error
        }
        // Make the rename itself durable.
        let dfd = Glibc.open(dir.isEmpty ? "." : dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dfd >= 0 {
            _ = fsync(dfd)
            close(dfd)
        }
    }

    /// Appends bytes to the temporary file (retrying short writes and EINTR).
    public struct Writer {
        let fd: Int32
        let path: String
        /// Bytes written so far.
        public private(set) var offset = 0

        public mutating func write(_ p: UnsafeRawPointer, count: Int) throws {
            var done = 0
            while done < count {
                let r = Glibc.write(fd, p + done, min(count - done, 1 << 30))
                if r < 0 {
                    if errno == EINTR { continue }
                    throw SAMixError.io("\(path): write failed after \(offset + done) bytes (\(AtomicFile.errorText()))")
                }
                if r == 0 { throw SAMixError.io("\(path): write made no progress after \(offset + done) bytes") }
                done += r
            }
            offset += count
        }

        public mutating func write(_ bytes: [UInt8]) throws {
            try bytes.withUnsafeBytes { b in
                if let base = b.baseAddress { try write(base, count: b.count) }
            }
        }
    }

    /// Checks up front that a file can be written at `path` (its directory exists and accepts a new
    /// file; an existing `path` is not a directory), by creating and removing a temporary file — so
    /// a run learns that its checkpoint cannot be saved before training, not after the first epoch.
    public static func requireWritable(_ path: String) throws {
        try require(!path.isEmpty, "file path is empty")
        try require(!path.utf8.contains(0), "file path contains a NUL byte")
        let (dir, base) = split(path)
        try require(!base.isEmpty && base != "." && base != "..", "'\(path)' does not name a file")
        var st = stat()
        if stat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR { throw SAMixError.io("\(path): is a directory") }
        let probe = (dir == "" ? "" : dir + "/") + "." + base + ".tmp-\(getpid())-probe"
        let fd = open(probe, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw SAMixError.io("\(path): cannot write a file in '\(dir.isEmpty ? "." : dir)' (\(errorText()))")
        }
        close(fd)
        unlink(probe)
    }

    /// Deletes `.<base>.tmp-<pid>-<hex>` files left in `dir` by writers of the same destination that
    /// died before renaming (kill -9, power loss): only those whose process no longer exists, so a
    /// save running concurrently in another live process is never disturbed. Best effort: errors
    /// are ignored (the save itself proceeds either way).
    static func removeStaleTemporaries(dir: String, base: String) {
        let prefix = "." + base + ".tmp-"
        guard let d = opendir(dir.isEmpty ? "." : dir) else { return }
        defer { closedir(d) }
        var stale: [String] = []
        while let ent = readdir(d) {
            let name = withUnsafeBytes(of: ent.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            guard name.hasPrefix(prefix) else { continue }
            let rest = name.dropFirst(prefix.count).split(separator: "-", maxSplits: 1)
            guard rest.count == 2, let pid = Int32(rest[0]), pid > 0, UInt64(rest[1], radix: 16) != nil else { continue }
            if kill(pid, 0) == -1 && errno == ESRCH { stale.append(name) }
        }
        for name in stale { unlink((dir.isEmpty ? "" : dir + "/") + name) }
    }

    static func errorText() -> String { String(cString: strerror(errno)) }

    /// (directory, file name) of a path; directory "" for a bare name.
    static func split(_ path: String) -> (String, String) {
        let u = Array(path.utf8)
        guard let slash = u.lastIndex(of: UInt8(ascii: "/")) else { return ("", path) }
        let dir = slash == 0 ? "/" : String(decoding: u[..<slash], as: UTF8.self)
        return (dir, String(decoding: u[(slash + 1)...], as: UTF8.self))
    }

    private static func nonce() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(UInt(bitPattern: ts.tv_nsec)) &* 0x9E37_79B9_7F4A_7C15 ^ UInt64(pthread_self())
    }
}
