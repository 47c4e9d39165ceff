import CZlib
import XCTest
import SAMix
@testable import SAMixCore
@testable import SAMixOps
@testable import SAMixNN
@testable import SAMixData
@testable import SAMixMixing
@testable import SAMixTraining

/// PNG encoder: chunk structure, CRCs and the decompressed scanlines; the mixing grid layout.
final class PNGWriterTests: XCTestCase {
    private func be32(_ b: [UInt8], _ o: Int) -> UInt32 {
        UInt32(b[o]) << 24 | UInt32(b[o + 1]) << 16 | UInt32(b[o + 2]) << 8 | UInt32(b[o + 3])
    }

    /// Splits a PNG into (type, data) chunks, checking every CRC against zlib's crc32.
    private func chunks(_ png: [UInt8]) throws -> [(String, [UInt8])] {
        XCTAssertEqual(Array(png[0..<8]), [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
        var out: [(String, [UInt8])] = []
        var o = 8
        while o < png.count {
            let n = Int(be32(png, o))
            let type = String(decoding: png[(o + 4)..<(o + 8)], as: UTF8.self)
            let data = Array(png[(o + 8)..<(o + 8 + n)])
            let typed = Array(png[(o + 4)..<(o + 8 + n)])
            let expected = typed.withUnsafeBufferPointer { UInt32(crc32(0, $0.baseAddress, uInt($0.count))) }
            XCTAssertEqual(be32(png, o + 8 + n), expected, "CRC of \(type)")
            out.append((type, data))
            o += 12 + n
        }
        XCTAssertEqual(o, png.count)
        return out
    }

    private func inflate(_ data: [UInt8], size: Int) throws -> [UInt8] {
        var out = [UInt8](repeating: 0, count: size + 16)
        var n = uLongf(out.count)
        let st = out.withUnsafeMutableBufferPointer { o in
            data.withUnsafeBufferPointer { d in uncompress(o.baseAddress, &n, d.baseAddress, uLong(d.count)) }
        }
        XCTAssertEqual(st, Z_OK)
        return Array(out[0..<Int(n)])
    }

    func testRGBImageDecodes() throws {
        let w = 5, h = 3
        var px: [UInt8] = []
        for y in 0..<h { for x in 0..<w { px += [UInt8(x * 40), UInt8(y * 100), UInt8((x + y) % 256)] } }
        let png = try PNGWriter.encode(width: w, height: h, channels: 3, pixels: px)
        let c = try chunks(png)
        XCTAssertEqual(c.map(\.0), ["IHDR", "IDAT", "IEND"])
        let ihdr = c[0].1
        XCTAssertEqual(ihdr.count, 13)
        XCTAssertEqual(be32(ihdr, 0), 5)
        XCTAssertEqual(be32(ihdr, 4), 3)
        XCTAssertEqual(Array(ihdr[8..<13]), [8, 2, 0, 0, 0])
        XCTAssertEqual(c[2].1, [])
        let raw = try inflate(c[1].1, size: (w * 3 + 1) * h)
        XCTAssertEqual(raw.count, (w * 3 + 1) * h)
        for y in 0..<h {
            XCTAssertEqual(raw[y * (w * 3 + 1)], 0, "filter type None")
            XCTAssertEqual(Array(raw[(y * (w * 3 + 1) + 1)..<((y + 1) * (w * 3 + 1))]), Array(px[(y * w * 3)..<((y + 1) * w * 3)]))
        }
        // The IEND chunk is the well-known constant.
        XCTAssertEqual(Array(png.suffix(12)), [0, 0, 0, 0, 0x49, 0x45, 0x4E, 0x44, 0xAE, 0x42, 0x60, 0x82])
    }

    func testGrayAndRGBAAndErrors() throws {
        for ch in [1, 4] {
            let px = (0..<(4 * 2 * ch)).map { UInt8($0 * 7 % 256) }
            let c = try chunks(try PNGWriter.encode(width: 4, height: 2, channels: ch, pixels: px))
            XCTAssertEqual(c[0].1[9], ch == 1 ? 0 : 6)
            let raw = try inflate(c[1].1, size: (4 * ch + 1) * 2)
            XCTAssertEqual(Array(raw[1...(4 * ch)]), Array(px[0..<(4 * ch)]))
        }
        XCTAssertThrowsError(try PNGWriter.encode(width: 2, height: 2, channels: 3, pixels: [1, 2, 3]))
        XCTAssertThrowsError(try PNGWriter.encode(width: 0, height: 2, channels: 3, pixels: []))
        XCTAssertThrowsError(try PNGWriter.encode(width: 1, height: 1, channels: 2, pixels: [1, 2]))
    }

    func testMixGridLayout() throws {
        // Two 1×2×2 images: originals 0 and 1, masks 0.5 / 1, mixed 0.25.
        let x = try Tensor([0, 0, 0, 0, 1, 1, 1, 1], shape: [2, 1, 2, 2])
        let mixed = try Tensor(repeating: 0.25, shape: [2, 1, 2, 2])
        let masks: [Float] = [0.5, 0.5, 0.5, 0.5, 1, 1, 1, 1]
        let g = try MixGrid(scale: 2, gap: 1)
        let (w, h, px) = try g.render(original: x, masks: masks, mixed: mixed)
        XCTAssertEqual(w, 2 * 4 + 3)
        XCTAssertEqual(h, 3 * 4 + 4)
        func at(_ x: Int, _ y: Int) -> UInt8 { px[3 * (y * w + x)] }
        XCTAssertEqual(at(0, 0), 255, "gap is white")
        XCTAssertEqual(at(1, 1), 0, "first original")
        XCTAssertEqual(at(6, 4), 255, "second original")
        XCTAssertEqual(at(1, 6), 128, "first mask")
        XCTAssertEqual(at(6, 9), 255, "second mask")
        XCTAssertEqual(at(1, 11), 64, "mixed")
        XCTAssertThrowsError(try g.render(original: x, masks: [0], mixed: mixed))
        XCTAssertThrowsError(try MixGrid(scale: 0))
    }
}
