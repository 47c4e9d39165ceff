import Glibc
import CZlib

/// Whole-file reading for the dataset readers: plain files and gzip (`.gz`, detected by its magic
/// bytes, not by the name). Every failure is a `SAMixError.io` naming the file.
package enum FileBytes {
    /// Largest file (or decompressed payload) the readers accept: 8 GiB. Protects against absurd
    /// allocations from a corrupt size field or a gzip bomb.
    package static let maxBytes = 1 << 33

    /// The bytes of `path`, exactly as stored.
    package static func read(_ path: String) throws -> [UInt8] {
        let fd = open(path, O_RDONLY)
        if fd < 0 {
            throw SAMixError.io("\(path): cannot open (\(String(cString: strerror(errno))))")
        }
        defer { close(fd) }
        var st = stat()
        if fstat(fd, &st) != 0 {
            throw SAMixError.io("\(path): cannot stat (\(String(cString: strerror(errno))))")
        }
        if (st.st_mode & S_IFMT) == S_IFDIR {
            throw SAMixError.io("\(path): is a directory, expected a file")
        }
        let size = Int(st.st_size)
        guard size >= 0, size <= maxBytes else {
            throw SAMixError.io("\(path): file size \(size) is out of range")
        }
        var failure: String? = nil
        let bytes = [UInt8](unsafeUninitializedCapacity: size) { buf, initialized in
            var done = 0
            while done < size, let base = buf.baseAddress {
                let r = Glibc.read(fd, base + done, size - done)
                if r < 0 {
                    if errno == EINTR { continue }
                    failure = "read error after \(done) of \(size) bytes (\(String(cString: strerror(errno))))"
                    break
                }
                if r == 0 {
                    failure = "file shrank while reading: got \(done) of \(size) bytes"
                    break
                }
                done += r
            }
            initialized = done
        }
        if let failure { throw SAMixError.io("\(path): \(failure)") }
        return bytes
    }

    /// True if `bytes` starts with the gzip magic number 1f 8b.
    static func isGzip(_ bytes: [UInt8]) -> Bool {
        bytes.count >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b
    }

    /// The contents of `path`, gunzipped if the file is gzip-compressed (all members of a
    /// multi-member stream). A truncated or corrupt gzip stream throws.
    package static func readMaybeGzip(_ path: String) throws -> [UInt8] {
        let raw = try read(path)
        if !isGzip(raw) { return raw }
        return try gunzip(raw, path: path)
    }

    /// Decompresses a complete gzip stream held in memory.
    static func gunzip(_ input: [UInt8], path: String) throws -> [UInt8] {
        // The trailer's ISIZE (length mod 2^32) is a good first guess for the output size.
        var guess = 1 << 16
        if input.count >= 18 {
            let n = input.count
            let isize = Int(input[n - 4]) | Int(input[n - 3]) << 8 | Int(input[n - 2]) << 16 | Int(input[n - 1]) << 24
            // Deflate expands at most ~1032:1, so a corrupt ISIZE cannot force a huge allocation.
            guess = max(guess, min(isize + 1, input.count * 1040, maxBytes))
        }
        var out = [UInt8](repeating: 0, count: guess)
        var produced = 0
        var strm = z_stream()
        var status = inflateInit2_(&strm, 15 + 16, zlibVersion(), Int32(MemoryLayout<z_stream>.size))
        guard status == Z_OK else {
            throw SAMixError.io("\(path): zlib initialisation failed (code \(status))")
        }
        defer { inflateEnd(&strm) }

        var consumed = 0
        var finishedMember = false
        try input.withUnsafeBufferPointer { inBuf in
            guard let inBase = inBuf.baseAddress else { return }
            while true {
                if produced == out.count {
                    guard out.count < maxBytes else {
                        throw SAMixError.io("\(path): decompressed size exceeds \(maxBytes) bytes")
                    }
                    out.append(contentsOf: repeatElement(0, count: min(out.count, maxBytes - out.count)))
                }
                let inAvail = min(input.count - consumed, Int(UInt32.max))
                strm.next_in = UnsafeMutablePointer(mutating: inBase + consumed)
                strm.avail_in = UInt32(inAvail)
                let outAvail = min(out.count - produced, Int(UInt32.max))
                status = out.withUnsafeMutableBufferPointer { ob -> Int32 in
                    guard let ob = ob.baseAddress else { return Z_MEM_ERROR }
                    strm.next_out = ob + produced
                    strm.avail_out = UInt32(outAvail)
                    return inflate(&strm, Z_NO_FLUSH)
                }
                consumed += inAvail - Int(strm.avail_in)
                produced += outAvail - Int(strm.avail_out)
                switch status {
                case Z_STREAM_END:
                    finishedMember = true
                    // Concatenated gzip members: continue unless only padding zeros remain.
                    var rest = consumed
                    while rest < input.count && input[rest] == 0 { rest += 1 }
                    if rest == input.count { return }
                    if rest + 1 >= input.count || input[rest] != 0x1f || input[rest + 1] != 0x8b {
                        throw SAMixError.io("\(path): \(input.count - consumed) bytes of trailing garbage after gzip data")
                    }
                    consumed = rest
                    finishedMember = false
                    let r = inflateReset(&strm)
                    if r != Z_OK { throw SAMixError.io("\(path): zlib reset failed (code \(r))") }
                case Z_OK:
                    continue
                case Z_BUF_ERROR:
                    // No progress possible: either the output is full (grown at the top of the
                    // loop) or the input ran out before the end of the stream.
                    if produced < out.count {
                        throw SAMixError.io("\(path): truncated gzip stream (ended after \(produced) decompressed bytes)")
                    }
                case Z_DATA_ERROR:
                    let msg = strm.msg.map { String(cString: $0) } ?? "invalid data"
                    throw SAMixError.io("\(path): corrupt gzip data (\(msg)) after \(produced) decompressed bytes")
                case Z_MEM_ERROR:
                    throw SAMixError.outOfMemory("\(path): zlib out of memory")
                default:
                    throw SAMixError.io("\(path): gzip decompression failed (zlib code \(status))")
                }
            }
        }
        if !finishedMember {
            throw SAMixError.io("\(path): truncated gzip stream (ended after \(produced) decompressed bytes)")
        }
        out.removeSubrange(produced...)
        return out
    }
}
