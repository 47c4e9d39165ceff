import Glibc
import CZlib

/// The safetensors file format (https://github.com/huggingface/safetensors), float32 tensors only:
///
/// ```
/// [8 bytes: header length N, little-endian u64]
/// [N bytes: UTF-8 JSON {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ...,
///            "__metadata__": {"key": "value", ...}}, padded with spaces to a multiple of 8]
/// [data: the tensors' little-endian bytes, offsets relative to the start of this section]
/// ```
///
/// Files written here are readable by the `safetensors` library (`safetensors.numpy.load_file`)
/// and by a few lines of NumPy. Reading validates everything the reference implementation does:
/// header size, JSON syntax, dtype, shapes, offsets in bounds, tensors contiguous and covering the
/// data section exactly, no duplicate names. Every problem is a `SAMixError.io` naming the file.
///
/// samix's own rules on top of the format (one rule for every save and load path of the engine):
/// * **Non-finite state is never written nor read**: `write` refuses a tensor holding NaN or Inf
///   (`SAMixError.numerical`, the existing file is left untouched), and `read`/`parse` refuse such a
///   file, so a diverged model can never replace a good checkpoint nor be loaded silently.
/// * **Checksums**: `write` stores the CRC-32 of each tensor's bytes as metadata `crc32:<name>`
///   (8 hex digits); reading verifies every such entry (a bit flip in tensor data is an `io` error)
///   and removes the `crc32:` entries from `metadata`. Files from other writers have none and load
///   as before.
public struct SafetensorsFile {
    /// Tensors in file order.
    public var tensors: [(String, Tensor)]
    /// The `__metadata__` string map.
    public var metadata: [String: String]

    public init(tensors: [(String, Tensor)], metadata: [String: String] = [:]) {
        self.tensors = tensors
        self.metadata = metadata
    }

    /// Metadata key prefix of the per-tensor CRC-32 checksums.
    public static let checksumPrefix = "crc32:"

    /// CRC-32 (zlib's polynomial) of a tensor's little-endian float bytes.
    static func crc32(of t: Tensor) -> UInt32 {
        crc32(UnsafeRawPointer(t.data), byteCount: t.count * MemoryLayout<Float>.size)
    }

    static func crc32(_ p: UnsafeRawPointer, byteCount: Int) -> UInt32 {
        var crc = CZlib.crc32(0, nil, 0)
        var done = 0
        while done < byteCount {
            let n = min(byteCount - done, 1 << 30)
            crc = CZlib.crc32(crc, p.advanced(by: done).assumingMemoryBound(to: UInt8.self), uInt(n))
            done += n
        }
        return UInt32(truncatingIfNeeded: crc)
    }

    static func hex8(_ v: UInt32) -> String {
        let h = String(v, radix: 16)
        return String(repeating: "0", count: 8 - h.count) + h
    }

    /// Index of the first NaN or Inf value of `t`, nil when all values are finite.
    static func firstNonFinite(_ t: Tensor) -> Int? {
        let p = t.data
        for i in 0..<t.count where !p[i].isFinite { return i }
        return nil
    }

    /// Largest header accepted (the reference implementation's limit).
    public static let maxHeaderBytes = 100_000_000

    /// The tensors by name.
    public var tensorsByName: [String: Tensor] {
        var out: [String: Tensor] = [:]
        for (k, v) in tensors { out[k] = v }
        return out
    }

    // MARK: writing

    /// Serialised header (JSON, space-padded so the data section starts 8-byte aligned).
    static func header(_ entries: [(String, [Int], Int, Int)], metadata: [(String, String)]) -> [UInt8] {
        var members: [(String, JSONValue)] = []
        if !metadata.isEmpty {
            members.append(("__metadata__", .object(metadata.map { ($0.0, .string($0.1)) })))
        }
        for (name, shape, begin, end) in entries {
            members.append((name, .object([
                ("dtype", .string("F32")),
                ("shape", .array(shape.map { .number(String($0)) })),
                ("data_offsets", .array([.number(String(begin)), .number(String(end))])),
            ])))
        }
        var bytes = Array(JSONValue.object(members).serialized.utf8)
        while (8 + bytes.count) % 8 != 0 { bytes.append(0x20) }
        return bytes
    }

    /// Writes the file atomically (see `AtomicFile`): a crash mid-save never destroys an existing
    /// file at `path`. Metadata keys are written in sorted order.
    public func write(to path: String) throws {
        var seen = Set<String>()
        for (name, _) in tensors {
            try require(!name.isEmpty, "safetensors: empty tensor name")
            try require(name != "__metadata__", "safetensors: '__metadata__' is reserved")
            try require(seen.insert(name).inserted, "safetensors: duplicate tensor name '\(name)'")
        }
        for key in metadata.keys where key.hasPrefix(SafetensorsFile.checksumPrefix) {
            throw SAMixError.invalidArgument("safetensors: metadata key '\(key)' is reserved for checksums")
        }
        for (name, t) in tensors {
            if let i = SafetensorsFile.firstNonFinite(t) {
                throw SAMixError.numerical("\(path): not saved: tensor '\(name)' contains NaN or Inf (first at flat index \(i)); "
                    + "samix never writes non-finite state (a diverged run), so the previous file is kept")
            }
        }
        var meta = metadata
        for (name, t) in tensors { meta[SafetensorsFile.checksumPrefix + name] = SafetensorsFile.hex8(SafetensorsFile.crc32(of: t)) }
        var entries: [(String, [Int], Int, Int)] = []
        var offset = 0
        for (name, t) in tensors {
            let bytes = t.count * MemoryLayout<Float>.size
            entries.append((name, t.shape, offset, offset + bytes))
            offset += bytes
        }
        let head = SafetensorsFile.header(entries, metadata: meta.sorted { $0.key < $1.key })
        try require(head.count <= SafetensorsFile.maxHeaderBytes, "safetensors: header of \(head.count) bytes is too large")
        try AtomicFile.write(path) { w in
            var n = UInt64(head.count).littleEndian
            try withUnsafeBytes(of: &n) { try w.write($0.baseAddress!, count: 8) }
            try w.write(head)
            for (_, t) in tensors where t.count > 0 {
                try w.write(UnsafeRawPointer(t.data), count: t.count * MemoryLayout<Float>.size)
            }
        }
    }

    // MARK: reading

    /// Reads and validates a whole file.
    public static func read(_ path: String) throws -> SafetensorsFile {
        let bytes = try FileBytes.read(path)
        return try parse(bytes, name: path)
    }

    /// Only the `__metadata__` map and the tensor names/shapes, reading just the header.
    public static func readHeader(_ path: String) throws -> (metadata: [String: String], tensors: [(String, [Int])]) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw SAMixError.io("\(path): cannot open (\(AtomicFile.errorText()))") }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw SAMixError.io("\(path): cannot stat (\(AtomicFile.errorText()))") }
        guard (st.st_mode & S_IFMT) != S_IFDIR else { throw SAMixError.io("\(path): is a directory, expected a file") }
        let size = Int(st.st_size)
        var lenBytes = [UInt8](repeating: 0, count: 8)
        try readExactly(fd, &lenBytes, at: 0, path: path, fileSize: size)
        let n = try headerLength(lenBytes, fileSize: size, name: path)
        var head = [UInt8](repeating: 0, count: n)
        try readExactly(fd, &head, at: 8, path: path, fileSize: size)
        let h = try parseHeader(head, dataBytes: size - 8 - n, name: path)
        return (h.metadata.filter { !$0.key.hasPrefix(checksumPrefix) }, h.entries.map { ($0.name, $0.shape) })
    }

    private static func readExactly(_ fd: Int32, _ buf: inout [UInt8], at offset: Int, path: String, fileSize: Int) throws {
        guard fileSize >= offset + buf.count else {
            throw SAMixError.io("\(path): truncated safetensors file (\(fileSize) bytes)")
        }
        var done = 0
        let count = buf.count
        try buf.withUnsafeMutableBytes { b in
            while done < count {
                let r = pread(fd, b.baseAddress! + done, count - done, off_t(offset + done))
                if r < 0 {
                    if errno == EINTR { continue }
                    throw SAMixError.io("\(path): read failed (\(AtomicFile.errorText()))")
                }
                if r == 0 { throw SAMixError.io("\(path): truncated safetensors file") }
                done += r
            }
        }
    }

    private static func headerLength(_ first8: [UInt8], fileSize: Int, name: String) throws -> Int {
        var n: UInt64 = 0
        for k in 0..<8 { n |= UInt64(first8[k]) << (8 * UInt64(k)) }
        guard n >= 2, n <= UInt64(maxHeaderBytes) else {
            throw SAMixError.io("\(name): not a safetensors file (header length \(n) is out of range)")
        }
        guard UInt64(fileSize - 8) >= n else {
            throw SAMixError.io("\(name): truncated safetensors file: header of \(n) bytes but only \(fileSize - 8) bytes follow")
        }
        return Int(n)
    }

    struct Entry {
        var name: String, shape: [Int], begin: Int, end: Int
    }

    static func parseHeader(_ head: [UInt8], dataBytes: Int, name: String) throws -> (metadata: [String: String], entries: [Entry]) {
        guard head.first == UInt8(ascii: "{") else {
            throw SAMixError.io("\(name): not a safetensors file (the header does not start with '{')")
        }
        let json: JSONValue
        do { json = try JSON.parse(head) } catch let e as SAMixError {
            throw SAMixError.io("\(name): corrupt safetensors header: \(e.message)")
        }
        guard case .object(let members) = json else { throw SAMixError.io("\(name): header is not a JSON object") }
        var metadata: [String: String] = [:]
        var entries: [Entry] = []
        var seen = Set<String>()
        for (key, v) in members {
            guard seen.insert(key).inserted else { throw SAMixError.io("\(name): duplicate header entry '\(key)'") }
            if key == "__metadata__" {
                guard case .object(let kv) = v else { throw SAMixError.io("\(name): __metadata__ is not an object") }
                for (k, x) in kv {
                    guard case .string(let s) = x else {
                        throw SAMixError.io("\(name): __metadata__ value of '\(k)' is not a string")
                    }
                    metadata[k] = s
                }
                continue
            }
            guard case .object = v else { throw SAMixError.io("\(name): entry '\(key)' is not an object") }
            guard case .string(let dtype)? = v["dtype"] else { throw SAMixError.io("\(name): tensor '\(key)' has no dtype") }
            guard dtype == "F32" else {
                throw SAMixError.io("\(name): tensor '\(key)' has dtype \(dtype); samix reads only F32 tensors")
            }
            guard case .array(let dims)? = v["shape"] else { throw SAMixError.io("\(name): tensor '\(key)' has no shape") }
            guard dims.count <= 8 else { throw SAMixError.io("\(name): tensor '\(key)' has rank \(dims.count) > 8") }
            var shape: [Int] = []
            for d in dims {
                guard let x = d.int, x >= 0 else {
                    throw SAMixError.io("\(name): tensor '\(key)' has an invalid dimension \(d.serialized)")
                }
                shape.append(x)
            }
            guard let count = Tensor.elementCount(shape) else { throw SAMixError.io("\(name): tensor '\(key)' is too large") }
            guard case .array(let offs)? = v["data_offsets"], offs.count == 2,
                  let b = offs[0].int, let e = offs[1].int else {
                throw SAMixError.io("\(name): tensor '\(key)' has no valid data_offsets")
            }
            guard b >= 0, e >= b, e <= dataBytes else {
                throw SAMixError.io("\(name): tensor '\(key)' data_offsets [\(b), \(e)] are outside the \(dataBytes)-byte data section (truncated file?)")
            }
            guard e - b == count * 4 else {
                throw SAMixError.io("\(name): tensor '\(key)' of shape \(shape) needs \(count * 4) bytes, data_offsets give \(e - b)")
            }
            entries.append(Entry(name: key, shape: shape, begin: b, end: e))
        }
        entries.sort { ($0.begin, $0.end) < ($1.begin, $1.end) }
        var expected = 0
        for e in entries {
            guard e.begin == expected else {
                throw SAMixError.io("\(name): tensor '\(e.name)' starts at \(e.begin), expected \(expected) (overlapping or non-contiguous data)")
            }
            expected = e.end
        }
        guard expected == dataBytes else {
            throw SAMixError.io("\(name): the tensors cover \(expected) bytes but the data section has \(dataBytes) bytes")
        }
        return (metadata, entries)
    }

    /// Parses a whole file's bytes; `name` is used in error messages.
    public static func parse(_ bytes: [UInt8], name: String = "safetensors data") throws -> SafetensorsFile {
        guard bytes.count >= 8 else {
            throw SAMixError.io("\(name): truncated safetensors file (\(bytes.count) bytes, need at least 8)")
        }
        let n = try headerLength(Array(bytes[0..<8]), fileSize: bytes.count, name: name)
        let h = try parseHeader(Array(bytes[8..<(8 + n)]), dataBytes: bytes.count - 8 - n, name: name)
        var tensors: [(String, Tensor)] = []
        tensors.reserveCapacity(h.entries.count)
        let start = 8 + n
        try bytes.withUnsafeBytes { raw in
            for e in h.entries {
                let t = try Tensor(uninitializedShape: e.shape)
                if t.count > 0 {
                    UnsafeMutableRawPointer(t.data).copyMemory(from: raw.baseAddress! + start + e.begin, byteCount: e.end - e.begin)
                }
                if let stored = h.metadata[checksumPrefix + e.name] {
                    let actual = hex8(crc32(of: t))
                    guard stored.lowercased() == actual else {
                        throw SAMixError.io("\(name): tensor '\(e.name)' fails its checksum (stored \(stored), data gives \(actual)): "
                            + "the file is corrupt")
                    }
                }
                if let i = firstNonFinite(t) {
                    throw SAMixError.numerical("\(name): tensor '\(e.name)' contains NaN or Inf (first at flat index \(i)); "
                        + "samix does not load non-finite state")
                }
                tensors.append((e.name, t))
            }
        }
        let names = Set(h.entries.map { checksumPrefix + $0.name })
        for key in h.metadata.keys where key.hasPrefix(checksumPrefix) && !names.contains(key) {
            throw SAMixError.io("\(name): checksum entry '\(key)' names no tensor in the file")
        }
        return SafetensorsFile(tensors: tensors, metadata: h.metadata.filter { !$0.key.hasPrefix(checksumPrefix) })
    }
}
