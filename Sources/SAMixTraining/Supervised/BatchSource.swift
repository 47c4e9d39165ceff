import SAMixCore
import SAMixOps
import SAMixNN
import SAMixData
import SAMixMixing

/// Anything that yields the mini-batches of an epoch by index: the `DataLoader` over uint8 datasets,
/// or `ArrayBatchSource` over float arrays a caller already holds (NumPy via the C ABI).
public protocol BatchSource: AnyObject {
    /// Number of batches in one epoch.
    var batchesPerEpoch: Int { get }
    /// Number of samples in one epoch.
    var sampleCount: Int { get }
    /// Batch `index` of epoch `epoch`; deterministic in (seed, epoch, index).
    func batch(_ index: Int, epoch: Int) throws -> Batch
    /// Training (augmenting) or evaluation mode.
    var training: Bool { get set }
}

extension DataLoader: BatchSource {
    public var sampleCount: Int { dataset.count }
}

/// Batches over caller-owned float32 images [N, C, H, W] and integer labels, with optional seeded
/// shuffling and random-crop (zero padding) + horizontal-flip augmentation done on the fly.
/// The images are read in place (no copy); the caller keeps them alive and unchanged while the
/// source is used.
public final class ArrayBatchSource: BatchSource {
    public let images: Tensor
    public let labels: [Int]
    public let batchSize: Int
    public let shuffle: Bool
    public let dropLast: Bool
    public let seed: UInt64
    public let augmentation: Augmentation
    public var training: Bool
    private var buffer: Tensor?
    private var cachedEpoch = -1
    private var cachedOrder: [Int] = []

    public init(images: Tensor, labels: [Int], batchSize: Int, shuffle: Bool = true, dropLast: Bool = false,
                seed: UInt64 = 0, augmentation: Augmentation = .none, training: Bool = true) throws {
        try requireShape(images.rank == 4, "images must be [N, C, H, W], got \(images.shape)")
        try requireShape(images.shape[0] == labels.count, "\(images.shape[0]) images but \(labels.count) labels")
        try require(images.shape[0] > 0, "the dataset is empty")
        try require(batchSize > 0, "batch size must be positive, got \(batchSize)")
        self.images = images; self.labels = labels; self.batchSize = batchSize
        self.shuffle = shuffle; self.dropLast = dropLast; self.seed = seed
        self.augmentation = augmentation; self.training = training
    }

    public var sampleCount: Int { labels.count }
    public var batchesPerEpoch: Int {
        dropLast ? labels.count / batchSize : (labels.count + batchSize - 1) / batchSize
    }

    private func generator(epoch: Int, stream: UInt64) -> SplitMix64 {
        SplitMix64(seed: seed).fork(index: UInt64(truncatingIfNeeded: epoch)).fork(index: stream)
    }

    public func batch(_ index: Int, epoch: Int) throws -> Batch {
        try require(index >= 0 && index < batchesPerEpoch, "batch \(index) outside 0..<\(batchesPerEpoch)")
        try require(epoch >= 0, "epoch \(epoch) is negative")
        if cachedEpoch != epoch {
            var g = generator(epoch: epoch, stream: 0)
            cachedOrder = shuffle ? g.permutation(labels.count) : Array(0..<labels.count)
            cachedEpoch = epoch
        }
        let start = index * batchSize, end = min(start + batchSize, labels.count)
        let idx = Array(cachedOrder[start..<end])
        let c = images.shape[1], h = images.shape[2], w = images.shape[3], size = c * h * w
        let full: Tensor
        if let b = buffer { full = b } else {
            full = try Tensor(uninitializedShape: [batchSize, c, h, w])
            buffer = full
        }
        let out = idx.count == batchSize ? full : try Tensor(storage: full.storage, shape: [idx.count, c, h, w])
        let aug = training ? augmentation : .none
        let augRNG = generator(epoch: epoch, stream: 1)
        let src = images.data, dst = out.data
        parallelFor(idx.count) { k in
            var r = augRNG.fork(index: UInt64(start + k))
            let p = aug.draw(&r)
            FloatImageAugment.render(src + idx[k] &* size, channels: c, height: h, width: w,
                                     padding: aug.padding, params: p, into: dst + k &* size)
        }
        return Batch(images: out, labels: idx.map { labels[$0] }, indices: idx, epoch: epoch, index: index)
    }
}

/// Crop-with-zero-padding and flip on float images (the float counterpart of the uint8 path).
enum FloatImageAugment {
    /// out[c][y][x] = P[c][y + oy][x' + ox], P = image zero-padded by `padding`, x' = W−1−x if flipped.
    static func render(_ src: UnsafePointer<Float>, channels: Int, height h: Int, width w: Int, padding p: Int,
                       params: Augmentation.Params, into dst: UnsafeMutablePointer<Float>) {
        let dy = params.offsetY - p, dx = params.offsetX - p
        for c in 0..<channels {
            let s = src + c &* h &* w, d = dst + c &* h &* w
            for y in 0..<h {
                let sy = y &+ dy
                let row = d + y &* w
                if sy < 0 || sy >= h { row.update(repeating: 0, count: w); continue }
                let srow = s + sy &* w
                for x in 0..<w {
                    let xx = params.flip ? w &- 1 &- x : x
                    let sx = xx &+ dx
                    row[x] = (sx >= 0 && sx < w) ? srow[sx] : 0
                }
            }
        }
    }
}
