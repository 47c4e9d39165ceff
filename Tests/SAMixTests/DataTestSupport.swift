import XCTest
import Glibc
import CZlib
import SAMix
@testable import SAMixCore
@testable import SAMixOps
@testable import SAMixNN
@testable import SAMixData
@testable import SAMixMixing
@testable import SAMixTraining

/// Temporary directories and synthetic dataset files for the data-path tests.
enum DataFixtures {
    /// A fresh empty directory under /tmp.
    static func tempDir(_ tag: String) throws -> String {
        var template = Array("/tmp/samix-data-\(tag)-XXXXXX".utf8CString)
        let made = template.withUnsafeMutableBufferPointer { b -> Bool in
            guard let base = b.baseAddress else { return false }
            return mkdtemp(base) != nil
        }
        guard made else { throw SAMixError.io("mkdtemp failed") }
        return String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    static func mkdir(_ path: String) { _ = Glibc.mkdir(path, 0o755) }

    /// Removes a directory tree created by a test (only paths under /tmp/samix-data-).
    static func remove(_ path: String) {
        guard path.hasPrefix("/tmp/samix-data-") else { return }
        var st = stat()
        guard lstat(path, &st) == 0 else { return }
        if (st.st_mode & S_IFMT) == S_IFDIR {
            if let d = opendir(path) {
                var names = [String]()
                while let e = readdir(d) {
                    let name = withUnsafePointer(to: e.pointee.d_name) {
                        $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
                    }
                    if name != "." && name != ".." { names.append(name) }
                }
                closedir(d)
                for n in names { remove(path + "/" + n) }
            }
            rmdir(path)
        } else {
            unlink(path)
        }
    }

    static func write(_ bytes: [UInt8], to path: String) throws {
        guard let f = fopen(path, "wb") else { throw SAMixError.io("cannot create \(path)") }
        defer { fclose(f) }
        let n = bytes.withUnsafeBufferPointer { fwrite($0.baseAddress, 1, bytes.count, f) }
        guard n == bytes.count else { throw SAMixError.io("short write \(path)") }
    }

    static func write(_ text: String, to path: String) throws { try write(Array(text.utf8), to: path) }

    /// gzip-compresses `bytes` into `path` (one gzip member per element of `members`).
    static func writeGzip(_ members: [[UInt8]], to path: String) throws {
        var all = [UInt8]()
        for m in members { all += try gzip(m) }
        try write(all, to: path)
    }

    /// One gzip member holding `bytes` (via zlib's gz* API on a scratch file).
    static func gzip(_ bytes: [UInt8]) throws -> [UInt8] {
        let dir = try tempDir("gz")
        defer { remove(dir) }
        let p = dir + "/x.gz"
        guard let gz = gzopen(p, "wb9") else { throw SAMixError.io("gzopen failed") }
        let w = bytes.withUnsafeBufferPointer { gzwrite(gz, $0.baseAddress, UInt32(bytes.count)) }
        gzclose(gz)
        guard Int(w) == bytes.count else { throw SAMixError.io("gzwrite failed") }
        return try FileBytes.read(p)
    }

    /// Deterministic pseudo-random pixel bytes.
    static func bytes(_ n: Int, seed: UInt64) -> [UInt8] {
        var g = SplitMix64(seed: seed)
        return (0..<n).map { _ in UInt8(truncatingIfNeeded: g.next()) }
    }

    /// An IDX file of unsigned bytes.
    static func idx(dims: [Int], data: [UInt8]) -> [UInt8] {
        var out: [UInt8] = [0, 0, 0x08, UInt8(dims.count)]
        for d in dims { out += [UInt8(d >> 24 & 255), UInt8(d >> 16 & 255), UInt8(d >> 8 & 255), UInt8(d & 255)] }
        return out + data
    }

    /// A synthetic dataset with the given labels and random pixels.
    static func dataset(labels: [Int], channels: Int = 3, height: Int = 5, width: Int = 7,
                        classCount: Int, seed: UInt64 = 1) throws -> ImageDataset {
        try ImageDataset(pixels: bytes(labels.count * channels * height * width, seed: seed),
                         labels: labels.map { Int32($0) }, channels: channels, height: height, width: width,
                         classCount: classCount, name: "synthetic")
    }

    /// Asserts that `body` throws `SAMixError.io` whose message contains every string in `contains`.
    static func assertIOError<T>(_ body: @autoclosure () throws -> T, contains: [String],
                                 file: StaticString = #filePath, line: UInt = #line) {
        do {
            _ = try body()
            XCTFail("expected SAMixError.io containing \(contains)", file: file, line: line)
        } catch let SAMixError.io(message) {
            for s in contains {
                XCTAssertTrue(message.contains(s), "message \"\(message)\" lacks \"\(s)\"", file: file, line: line)
            }
        } catch {
            XCTFail("expected SAMixError.io, got \(error)", file: file, line: line)
        }
    }
}
