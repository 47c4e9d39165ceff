import Glibc
import XCTest
import SAMix
@testable import SAMixCore
@testable import SAMixOps
@testable import SAMixNN
@testable import SAMixData
@testable import SAMixMixing
@testable import SAMixTraining

/// samix's integrity rules on safetensors files: no non-finite state written or read, per-tensor
/// CRC-32 checksums, stale temporary files of dead writers removed.
final class SafetensorsIntegrityTests: XCTestCase {
    private var tmp: TemporaryDirectory!
    private var dir: String { tmp.path }

    override func setUpWithError() throws { tmp = try TemporaryDirectory(prefix: "samix-integrity") }
    override func tearDown() { tmp.remove() }
    private func files() -> [String] { tmp.files() }

    private func touch(_ name: String) {
        let f = fopen(dir + "/" + name, "wb")!
        fputs("partial", f)
        fclose(f)
    }

    /// A file without checksums (as other writers make it) holding `values`.
    private func foreignFile(_ values: [Float]) -> [UInt8] {
        let header = #"{"w":{"dtype":"F32","shape":[\#(values.count)],"data_offsets":[0,\#(values.count * 4)]}}"#
        var bytes = [UInt8](repeating: 0, count: 8)
        let hb = Array(header.utf8)
        for k in 0..<8 { bytes[k] = UInt8((hb.count >> (8 * k)) & 0xFF) }
        bytes += hb
        for v in values { withUnsafeBytes(of: v.bitPattern.littleEndian) { bytes += $0 } }
        return bytes
    }

    private func numericalMessage(_ body: () throws -> Void) -> String? {
        do { try body() } catch SAMixError.numerical(let m) { return m } catch { return "other error: \(error)" }
        return nil
    }

    func testNonFiniteTensorIsNeverWrittenAndPreviousFileIsKept() throws {
        let path = dir + "/model.safetensors"
        try SafetensorsFile(tensors: [("w", try Tensor([1, 2, 3], shape: [3]))]).write(to: path)
        let before = try FileBytes.read(path)
        for bad: Float in [.nan, .infinity, -.infinity] {
            let m = numericalMessage {
                try SafetensorsFile(tensors: [("ok", try Tensor([0], shape: [1])), ("w", try Tensor([1, bad, 3], shape: [3]))])
                    .write(to: path)
            }
            XCTAssertNotNil(m, "wrote \(bad)")
            XCTAssertTrue(m?.contains("'w'") == true && m?.contains("flat index 1") == true, m ?? "")
            XCTAssertEqual(try FileBytes.read(path), before, "the good file was replaced")
        }
        XCTAssertEqual(files(), ["model.safetensors"], "no temporary file left")
    }

    func testNonFiniteFileIsNeverRead() throws {
        XCTAssertEqual(try SafetensorsFile.parse(foreignFile([1, 2])).tensors[0].1.scalars, [1, 2])
        let m = numericalMessage { _ = try SafetensorsFile.parse(foreignFile([1, .nan, 2]), name: "f") }
        XCTAssertTrue(m?.contains("tensor 'w' contains NaN or Inf (first at flat index 1)") == true, m ?? "accepted")
    }

    func testModelLoadPathsRefuseNaNWeights() throws {
        let model = try ModelZoo.make("resnet20", numClasses: 10, inChannels: 3, seed: 0)
        let path = dir + "/r20.safetensors"
        try Checkpoint.save(model, to: path)
        model.namedParameters()[0].1.data[0] = .nan
        XCTAssertNotNil(numericalMessage { try Checkpoint.save(model, to: path) }, "saved a NaN weight")
        // The good file is intact and loads (through both load paths).
        _ = try Checkpoint.loadModel(from: path)
        try Checkpoint.load(into: model, from: path)
        XCTAssertTrue(model.namedParameters()[0].1.data[0].isFinite)
    }

    func testChecksumsDetectBitFlipsAndStayOutOfMetadata() throws {
        let path = dir + "/c.safetensors"
        let t = try Tensor((0..<64).map { Float($0) * 0.25 }, shape: [8, 8])
        try SafetensorsFile(tensors: [("t", t)], metadata: ["user": "x"]).write(to: path)
        var bytes = try FileBytes.read(path)
        let f = try SafetensorsFile.parse(bytes)
        XCTAssertEqual(f.metadata, ["user": "x"], "checksums are verified and removed from the metadata")
        XCTAssertEqual(try SafetensorsFile.readHeader(path).metadata, ["user": "x"])
        // Flip one mantissa bit of one value in the data section (still a finite number).
        bytes[bytes.count - 10] ^= 0x01
        do {
            _ = try SafetensorsFile.parse(bytes, name: "c")
            XCTFail("a bit flip loaded silently")
        } catch SAMixError.io(let m) {
            XCTAssertTrue(m.contains("tensor 't' fails its checksum"), m)
        }
        // The metadata prefix is reserved.
        XCTAssertThrowsError(try SafetensorsFile(tensors: [("t", t)], metadata: ["crc32:t": "0"]).write(to: path))
    }

    func testStaleTemporariesOfDeadWritersAreRemoved() throws {
        let path = dir + "/run.ckpt"
        // A pid that cannot exist (above Linux's pid_max limit of 2^22), one that is alive (ours),
        // and unrelated files that only look similar.
        let dead = ".run.ckpt.tmp-4194305-1a2b", alive = ".run.ckpt.tmp-\(getpid())-ff"
        let other = ".other.ckpt.tmp-4194305-1a2b", odd = ".run.ckpt.tmp-notapid-1"
        for n in [dead, alive, other, odd] { touch(n) }
        try SafetensorsFile(tensors: [("w", try Tensor([1], shape: [1]))]).write(to: path)
        XCTAssertEqual(files(), [alive, other, odd, "run.ckpt"].sorted())
    }
}
