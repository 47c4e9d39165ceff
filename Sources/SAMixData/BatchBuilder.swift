import SAMixCore
import SAMixOps
import SAMixNN

/// Fills a float32 NCHW batch from a uint8 dataset in one fused pass per image:
/// uint8 → (crop / flip) → normalise, written straight into the caller's buffer with no per-image
/// allocation, in parallel over the images of the batch.
///
/// Image `j` of a fill draws its augmentation from `rng.fork(index: firstSample + j)`, so the result
/// does not depend on the number of threads or on how the work is split.
public struct BatchBuilder: Sendable {
    public let dataset: ImageDataset
    public let normalization: Normalization
    public let augmentation: Augmentation
    /// `channels × 256` normalised values (see `Normalization.table`).
    let table: [Float]

    public init(dataset: ImageDataset, normalization: Normalization, augmentation: Augmentation) throws {
        self.dataset = dataset
        self.normalization = normalization
        self.augmentation = augmentation
        table = try normalization.table(channels: dataset.channels)
    }

    /// Writes images `indices` into `output` (`capacity` floats available, needs
    /// `indices.count * C*H*W`). With `augment`, applies `augmentation` with per-image generators
    /// `rng.fork(index: UInt64(firstSample + j))`; otherwise only normalises.
    public func fill(_ output: UnsafeMutablePointer<Float>, capacity: Int, indices: [Int], rng: SplitMix64,
                     augment: Bool, firstSample: Int = 0) throws {
        let size = dataset.imageSize
        let n = dataset.count
        guard indices.count * size <= capacity else {
            throw SAMixError.shapeMismatch("batch of \(indices.count) images needs \(indices.count * size) floats, buffer has \(capacity)")
        }
        for i in indices where i < 0 || i >= n {
            throw SAMixError.invalidArgument("\(dataset.name): image index \(i) outside 0..<\(n)")
        }
        guard firstSample >= 0 else { throw SAMixError.invalidArgument("firstSample \(firstSample) is negative") }
        let aug = augment ? augmentation : .none
        let c = dataset.channels, h = dataset.height, w = dataset.width
        table.withUnsafeBufferPointer { tb in
            dataset.pixels.withUnsafeBufferPointer { px in
                guard let lut = tb.baseAddress, let src = px.baseAddress else { return }
                parallelFor(indices.count) { j in
                    var params = Augmentation.Params(offsetY: aug.padding, offsetX: aug.padding, flip: false)
                    if !aug.isIdentity {
                        var g = rng.fork(index: UInt64(firstSample + j))
                        params = aug.draw(&g)
                    }
                    BatchBuilder.render(src + indices[j] * size, channels: c, height: h, width: w,
                                        padding: aug.padding, params: params, table: lut,
                                        into: output + j * size)
                }
            }
        }
    }

    /// Fills `output` (shape `[B, C, H, W]` with `B >= indices.count`) — see the pointer version.
    public func fill(_ output: Tensor, indices: [Int], rng: SplitMix64, augment: Bool, firstSample: Int = 0) throws {
        try requireShape(output.rank == 4 && Array(output.shape[1...]) == dataset.imageShape && output.shape[0] >= indices.count,
                         "batch tensor \(output.shape) cannot hold \(indices.count) images of \(dataset.imageShape)")
        try fill(output.data, capacity: output.count, indices: indices, rng: rng, augment: augment, firstSample: firstSample)
    }

    /// Renders one image: out[c][y][x] = table[c][P[c][y + oy][x' + ox]] where P is the image padded
    /// by `padding` zeros on each side and x' = W-1-x when flipped, else x.
    @inline(__always)
    static func render(_ src: UnsafePointer<UInt8>, channels: Int, height h: Int, width w: Int, padding p: Int,
                       params: Augmentation.Params, table: UnsafePointer<Float>, into dst: UnsafeMutablePointer<Float>) {
        let dy = params.offsetY - p, dx = params.offsetX - p
        // Output columns whose source column lies inside the image.
        let lo: Int, hi: Int
        if params.flip {
            lo = max(0, dx); hi = min(w, w + dx)          // source column w-1-x+dx
        } else {
            lo = max(0, -dx); hi = min(w, w - dx)         // source column x+dx
        }
        for ch in 0..<channels {
            let lut = table + ch * 256
            let pad = lut[0]
            let plane = src + ch * h * w
            let out = dst + ch * h * w
            for y in 0..<h {
                let row = out + y * w
                let sy = y &+ dy
                if sy < 0 || sy >= h || lo >= hi {
                    row.update(repeating: pad, count: w)
                    continue
                }
                let srow = plane + sy * w
                if lo > 0 { row.update(repeating: pad, count: lo) }
                if params.flip {
                    let base = srow + (w - 1 + dx)
                    for x in lo..<hi { row[x] = lut[Int(base[-x])] }
                } else {
                    let base = srow + dx
                    for x in lo..<hi { row[x] = lut[Int(base[x])] }
                }
                if hi < w { (row + hi).update(repeating: pad, count: w - hi) }
            }
        }
    }
}
