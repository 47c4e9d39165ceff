import CZlib

/// A minimal PNG encoder: 8-bit grayscale, RGB or RGBA, no interlacing, filter type 0 (None) on
/// every row, the image data compressed with zlib's `compress2` (a zlib stream, as IDAT requires),
/// chunk checksums from zlib's `crc32`.
public enum PNGWriter {
    public static let signature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]

    /// PNG bytes of a `width`×`height` image with `channels` (1 gray, 3 RGB, 4 RGBA) interleaved
    /// 8-bit samples per pixel, rows top to bottom.
    public static func encode(width: Int, height: Int, channels: Int, pixels: [UInt8]) throws -> [UInt8] {
        try require(width >= 1 && height >= 1 && width <= 1 << 24 && height <= 1 << 24,
                    "PNG size \(width)×\(height) is out of range")
        let colorType: UInt8
        switch channels {
        case 1: colorType = 0
        case 3: colorType = 2
        case 4: colorType = 6
        default: throw SAMixError.invalidArgument("PNG channels must be 1, 3 or 4, got \(channels)")
        }
        let (rowBytes, o1) = width.multipliedReportingOverflow(by: channels)
        let (total, o2) = rowBytes.multipliedReportingOverflow(by: height)
        try require(!o1 && !o2 && total <= 1 << 31, "PNG image is too large")
        try requireShape(pixels.count == total, "PNG needs \(total) samples for \(width)×\(height)×\(channels), got \(pixels.count)")

        // Raw scanlines: a filter byte (0) before each row.
        var raw = [UInt8](repeating: 0, count: (rowBytes + 1) * height)
        pixels.withUnsafeBufferPointer { src in
            raw.withUnsafeMutableBufferPointer { dst in
                for y in 0..<height {
                    let d = dst.baseAddress! + y * (rowBytes + 1) + 1
                    d.update(from: src.baseAddress! + y * rowBytes, count: rowBytes)
                }
            }
        }
        var bound = compressBound(uLong(raw.count))
        var compressed = [UInt8](repeating: 0, count: Int(bound))
        let status = compressed.withUnsafeMutableBufferPointer { c in
            raw.withUnsafeBufferPointer { r in
                compress2(c.baseAddress, &bound, r.baseAddress, uLong(r.count), 6)
            }
        }
        guard status == Z_OK else { throw SAMixError.invalidState("zlib compress2 failed with status \(status)") }
        compressed.removeSubrange(Int(bound)...)

        var out = signature
        var ihdr: [UInt8] = []
        ihdr += be32(UInt32(width)) + be32(UInt32(height))
        ihdr += [8, colorType, 0, 0, 0]  // bit depth, colour type, compression, filter, interlace
        appendChunk(&out, "IHDR", ihdr)
        appendChunk(&out, "IDAT", compressed)
        appendChunk(&out, "IEND", [])
        return out
    }

    /// Encodes and writes a PNG file atomically.
    public static func write(_ path: String, width: Int, height: Int, channels: Int, pixels: [UInt8]) throws {
        let bytes = try encode(width: width, height: height, channels: channels, pixels: pixels)
        try AtomicFile.write(path) { try $0.write(bytes) }
    }

    /// zlib's CRC-32 of `bytes`.
    public static func crc(_ bytes: [UInt8]) -> UInt32 {
        bytes.withUnsafeBufferPointer { b in UInt32(crc32(0, b.baseAddress, uInt(b.count))) }
    }

    static func be32(_ v: UInt32) -> [UInt8] {
        [UInt8(v >> 24), UInt8((v >> 16) & 0xFF), UInt8((v >> 8) & 0xFF), UInt8(v & 0xFF)]
    }

    static func appendChunk(_ out: inout [UInt8], _ type: String, _ data: [UInt8]) {
        let typed = Array(type.utf8) + data
        out += be32(UInt32(data.count))
        out += typed
        out += be32(crc(typed))
    }
}

/// Lays out a batch, its partner-weight masks and the mixed batch as a picture: one column per
/// sample, rows "original", "mask" (white = weight 1 of the partner) and "mixed", each cell
/// scaled up by an integer factor, separated by gaps. Produces 8-bit RGB samples for `PNGWriter`.
public struct MixGrid {
    public var scale: Int
    public var gap: Int
    /// Background (gap) colour.
    public var background: (UInt8, UInt8, UInt8) = (255, 255, 255)

    public init(scale: Int = 1, gap: Int = 2) throws {
        try require(scale >= 1 && scale <= 64, "scale must be in 1...64, got \(scale)")
        try require(gap >= 0 && gap <= 64, "gap must be in 0...64, got \(gap)")
        self.scale = scale
        self.gap = gap
    }

    /// (width, height, RGB pixels) of the grid. `original` and `mixed` are [N, C, H, W] with C = 1
    /// or 3, values in [0, 1] (clipped); `masks` holds N×H×W partner weights in [0, 1].
    public func render(original: Tensor, masks: [Float], mixed: Tensor) throws -> (Int, Int, [UInt8]) {
        try requireShape(original.rank == 4 && original.shape == mixed.shape,
                         "original \(original.shape) and mixed \(mixed.shape) must be equal [N, C, H, W] shapes")
        let n = original.shape[0], c = original.shape[1], h = original.shape[2], w = original.shape[3]
        try require(n >= 1, "the batch is empty")
        try require(c == 1 || c == 3, "images must have 1 or 3 channels, got \(c)")
        try requireShape(masks.count == n * h * w, "masks hold \(masks.count) values, need \(n)×\(h)×\(w)")
        let cw = w * scale, ch = h * scale
        let width = n * cw + (n + 1) * gap, height = 3 * ch + 4 * gap
        try require(width <= 1 << 15 && height <= 1 << 15, "grid of \(width)×\(height) pixels is too large")
        var px = [UInt8](repeating: 0, count: width * height * 3)
        for i in 0..<(width * height) {
            px[3 * i] = background.0; px[3 * i + 1] = background.1; px[3 * i + 2] = background.2
        }
        func byte(_ v: Float) -> UInt8 {
            guard v.isFinite else { return 0 }
            return UInt8((min(max(v, 0), 1) * 255).rounded())
        }
        for s in 0..<n {
            let x0 = gap + s * (cw + gap)
            for row in 0..<3 {
                let y0 = gap + row * (ch + gap)
                for y in 0..<ch {
                    for x in 0..<cw {
                        let sy = y / scale, sx = x / scale
                        var rgb: (UInt8, UInt8, UInt8)
                        if row == 1 {
                            let v = byte(masks[s * h * w + sy * w + sx])
                            rgb = (v, v, v)
                        } else {
                            let t = row == 0 ? original : mixed
                            let base = t.data + s * c * h * w + sy * w + sx
                            if c == 1 {
                                let v = byte(base[0])
                                rgb = (v, v, v)
                            } else {
                                rgb = (byte(base[0]), byte(base[h * w]), byte(base[2 * h * w]))
                            }
                        }
                        let o = 3 * ((y0 + y) * width + x0 + x)
                        px[o] = rgb.0; px[o + 1] = rgb.1; px[o + 2] = rgb.2
                    }
                }
            }
        }
        return (width, height, px)
    }
}
