import SAMixCore
import SAMixOps
import SAMixNN

/// One mini-batch produced by a `DataLoader`.
public struct Batch {
    /// Normalised (and in training mode augmented) images `[B, C, H, W]`.
    /// With `DataLoader.reuseBuffers` (the default) this tensor shares the loader's buffer and is
    /// **overwritten by the next batch the loader produces**; `copy()` it to keep it.
    public let images: Tensor
    /// Class labels, `B` of them.
    public let labels: [Int]
    /// Dataset indices of the images.
    public let indices: [Int]
    /// Epoch and batch number within the epoch.
    public let epoch: Int
    public let index: Int

    /// Number of images in the batch.
    public var size: Int { labels.count }

    /// The batch of rows `r` (images copied into a new tensor; same epoch and index).
    public func rows(_ r: Range<Int>) throws -> Batch {
        try require(r.lowerBound >= 0 && r.upperBound <= size, "rows \(r) outside a batch of \(size)")
        let s = images.shape
        let per = s.dropFirst().reduce(1, *)
        let out = try Tensor(uninitializedShape: [r.count] + Array(s.dropFirst()))
        out.data.update(from: images.data + r.lowerBound * per, count: r.count * per)
        return Batch(images: out, labels: Array(labels[r]), indices: Array(indices[r]), epoch: epoch, index: index)
    }

    public init(images: Tensor, labels: [Int], indices: [Int], epoch: Int, index: Int) {
        self.images = images
        self.labels = labels
        self.indices = indices
        self.epoch = epoch
        self.index = index
    }
}

/// Mini-batch iterator over an `ImageDataset`, like PyTorch's `DataLoader` without workers.
///
/// Determinism: the order of epoch `e` is a permutation drawn from a generator derived from
/// `(seed, e)` only, and the augmentation of the sample at position `p` of that order comes from
/// `fork(index: p)` of a second generator derived from `(seed, e)`; so the same seed gives
/// bit-identical batches for any thread count and any access pattern (sequential or
/// `batch(_:epoch:)` random access), and augmentation of a sample does not depend on the batch size.
///
/// Not thread-safe: use one loader per thread.
public final class DataLoader {
    public let dataset: ImageDataset
    public let batchSize: Int
    /// Shuffle every epoch (else dataset order).
    public let shuffle: Bool
    /// Drop the final incomplete batch.
    public let dropLast: Bool
    public let seed: UInt64
    public let normalization: Normalization
    public let augmentation: Augmentation
    /// Training mode applies `augmentation`; evaluation mode (`false`) only normalises.
    public var training: Bool
    /// Write batches into one buffer owned by the loader (see `Batch.images`). When `false`, every
    /// batch gets a fresh tensor.
    public var reuseBuffers: Bool

    private let builder: BatchBuilder
    private var buffer: Tensor?
    private var cachedEpoch: Int = -1
    private var cachedOrder: [Int] = []

    public init(dataset: ImageDataset, batchSize: Int, shuffle: Bool = true, dropLast: Bool = false,
                seed: UInt64 = 0, normalization: Normalization, augmentation: Augmentation = .none,
                training: Bool = true, reuseBuffers: Bool = true) throws {
        guard batchSize > 0 else { throw SAMixError.invalidArgument("batch size \(batchSize) must be positive") }
        guard dataset.count > 0 else { throw SAMixError.invalidArgument("\(dataset.name): dataset is empty") }
        self.dataset = dataset
        self.batchSize = batchSize
        self.shuffle = shuffle
        self.dropLast = dropLast
        self.seed = seed
        self.normalization = normalization
        self.augmentation = augmentation
        self.training = training
        self.reuseBuffers = reuseBuffers
        builder = try BatchBuilder(dataset: dataset, normalization: normalization, augmentation: augmentation)
    }

    /// Number of batches in one epoch.
    public var batchesPerEpoch: Int {
        dropLast ? dataset.count / batchSize : (dataset.count + batchSize - 1) / batchSize
    }

    /// Generator for epoch `epoch`, stream 0 (shuffle) or 1 (augmentation).
    private func generator(epoch: Int, stream: UInt64) -> SplitMix64 {
        SplitMix64(seed: seed).fork(index: UInt64(truncatingIfNeeded: epoch)).fork(index: stream)
    }

    /// The order in which epoch `epoch` visits the dataset (all indices, each exactly once).
    public func order(epoch: Int) throws -> [Int] {
        guard epoch >= 0 else { throw SAMixError.invalidArgument("epoch \(epoch) is negative") }
        if epoch == cachedEpoch { return cachedOrder }
        var g = generator(epoch: epoch, stream: 0)
        let o = shuffle ? g.permutation(dataset.count) : Array(0..<dataset.count)
        cachedEpoch = epoch
        cachedOrder = o
        return o
    }

    /// Position in the epoch of the first sample of batch `index`, and the batch's dataset indices.
    private func members(_ index: Int, epoch: Int) throws -> (start: Int, indices: [Int]) {
        guard index >= 0 && index < batchesPerEpoch else {
            throw SAMixError.invalidArgument("batch \(index) outside 0..<\(batchesPerEpoch)")
        }
        let o = try order(epoch: epoch)
        let start = index * batchSize
        return (start, Array(o[start..<min(start + batchSize, o.count)]))
    }

    /// Batch `index` of epoch `epoch` (random access; the same batch as sequential iteration).
    public func batch(_ index: Int, epoch: Int) throws -> Batch {
        let (start, idx) = try members(index, epoch: epoch)
        let c = dataset.channels, h = dataset.height, w = dataset.width
        let images: Tensor
        if reuseBuffers {
            let full: Tensor
            if let b = buffer { full = b } else {
                full = try Tensor(uninitializedShape: [batchSize, c, h, w])
                buffer = full
            }
            images = idx.count == batchSize ? full : try Tensor(storage: full.storage, shape: [idx.count, c, h, w])
        } else {
            images = try Tensor(uninitializedShape: [idx.count, c, h, w])
        }
        try builder.fill(images.data, capacity: images.count, indices: idx,
                         rng: generator(epoch: epoch, stream: 1), augment: training, firstSample: start)
        var labels = [Int]()
        labels.reserveCapacity(idx.count)
        for i in idx { labels.append(Int(dataset.labels[i])) }
        return Batch(images: images, labels: labels, indices: idx, epoch: epoch, index: index)
    }

    /// Writes batch `index` of epoch `epoch` into caller-owned memory (e.g. a NumPy array through
    /// the C ABI) and returns the batch size `b` (`batchSize`, or fewer for a final partial batch).
    /// `images` holds `capacity` floats, at least `b * C*H*W`; `labels`, if given, holds
    /// `labelCapacity >= b` entries. Same contents as `batch(_:epoch:)`.
    @discardableResult
    public func fillBatch(_ index: Int, epoch: Int, images: UnsafeMutablePointer<Float>, capacity: Int,
                          labels: UnsafeMutablePointer<Int32>?, labelCapacity: Int = 0) throws -> Int {
        let (start, idx) = try members(index, epoch: epoch)
        if labels != nil && labelCapacity < idx.count {
            throw SAMixError.shapeMismatch("label buffer holds \(labelCapacity) entries, batch has \(idx.count)")
        }
        try builder.fill(images, capacity: capacity, indices: idx,
                         rng: generator(epoch: epoch, stream: 1), augment: training, firstSample: start)
        if let labels {
            for (k, i) in idx.enumerated() { labels[k] = dataset.labels[i] }
        }
        return idx.count
    }

    /// Sequential iteration over one epoch: `var it = try loader.epoch(e); while let b = try it.next() { … }`.
    public func epoch(_ epoch: Int) throws -> EpochIterator {
        _ = try order(epoch: epoch)
        return EpochIterator(loader: self, epoch: epoch)
    }

    /// Calls `body` with every batch of epoch `epoch`, in order.
    public func forEachBatch(epoch: Int, _ body: (Batch) throws -> Void) throws {
        var it = try self.epoch(epoch)
        while let b = try it.next() { try body(b) }
    }

    /// Iterator over the batches of one epoch.
    public struct EpochIterator {
        public let loader: DataLoader
        public let epoch: Int
        private var nextIndex = 0

        init(loader: DataLoader, epoch: Int) {
            self.loader = loader
            self.epoch = epoch
        }

        /// The next batch, or nil after the last one.
        public mutating func next() throws -> Batch? {
            guard nextIndex < loader.batchesPerEpoch else { return nil }
            defer { nextIndex += 1 }
            return try loader.batch(nextIndex, epoch: epoch)
        }
    }
}
