import SAMixCore
import SAMixOps
import SAMixNN

/// Subsets of an `ImageDataset`: explicit indices, first-N, and seeded class-balanced samples.
extension ImageDataset {
    /// A dataset holding the images at `indices`, in that order (repeats allowed).
    public func subset(indices: [Int], name newName: String? = nil) throws -> ImageDataset {
        let size = imageSize
        for i in indices where i < 0 || i >= count {
            throw SAMixError.invalidArgument("\(name): subset index \(i) outside 0..<\(count)")
        }
        var newLabels = [Int32]()
        newLabels.reserveCapacity(indices.count)
        let newPixels = [UInt8](unsafeUninitializedCapacity: indices.count * size) { dst, initialized in
            pixels.withUnsafeBufferPointer { src in
                guard let s = src.baseAddress, let d = dst.baseAddress else { return }
                for (k, i) in indices.enumerated() {
                    (d + k * size).initialize(from: s + i * size, count: size)
                }
            }
            initialized = indices.count * size
        }
        for i in indices { newLabels.append(labels[i]) }
        return try ImageDataset(pixels: newPixels, labels: newLabels, channels: channels, height: height,
                                width: width, classCount: classCount, classNames: classNames,
                                name: newName ?? "\(name) subset(\(indices.count))")
    }

    /// The first `n` images (all of them if `n >= count`). `n` must be non-negative.
    public func prefix(_ n: Int) throws -> ImageDataset {
        guard n >= 0 else { throw SAMixError.invalidArgument("\(name): prefix length \(n) is negative") }
        let m = min(n, count)
        if m == count { return self }
        return try ImageDataset(pixels: Array(pixels[0..<(m * imageSize)]), labels: Array(labels[0..<m]),
                                channels: channels, height: height, width: width, classCount: classCount,
                                classNames: classNames, name: "\(name) first \(m)")
    }

    /// Indices of a class-balanced subset of `n` images chosen deterministically from `seed`.
    ///
    /// Each class gets `n / classCount` images; when `n` is not a multiple of `classCount`, the
    /// remaining `n % classCount` images go one each to classes picked by the seed. Within a class,
    /// images are a seeded random sample without replacement. The result is sorted by dataset
    /// index. Throws if a class has too few images.
    public func balancedSubsetIndices(count n: Int, seed: UInt64) throws -> [Int] {
        guard n >= 0 else { throw SAMixError.invalidArgument("\(name): subset size \(n) is negative") }
        guard n <= count else {
            throw SAMixError.invalidArgument("\(name): subset size \(n) exceeds the \(count) images available")
        }
        var byClass = [[Int]](repeating: [], count: classCount)
        for (i, l) in labels.enumerated() { byClass[Int(l)].append(i) }
        let root = SplitMix64(seed: seed)
        var want = [Int](repeating: n / classCount, count: classCount)
        let extra = n % classCount
        if extra > 0 {
            var g = root.fork(index: UInt64.max)
            let order = g.permutation(classCount)
            for k in 0..<extra { want[order[k]] += 1 }
        }
        var chosen = [Int]()
        chosen.reserveCapacity(n)
        for c in 0..<classCount where want[c] > 0 {
            let pool = byClass[c]
            guard pool.count >= want[c] else {
                throw SAMixError.invalidArgument(
                    "\(name): class \(c) has \(pool.count) images, balanced subset of \(n) needs \(want[c])")
            }
            var g = root.fork(index: UInt64(c))
            // Partial Fisher–Yates: the first want[c] entries become a uniform sample.
            var p = pool
            for k in 0..<want[c] {
                let j = k + g.int(below: p.count - k)
                p.swapAt(k, j)
            }
            chosen.append(contentsOf: p[0..<want[c]])
        }
        chosen.sort()
        return chosen
    }

    /// A class-balanced subset of `n` images chosen deterministically from `seed`
    /// (see `balancedSubsetIndices(count:seed:)`).
    public func balancedSubset(count n: Int, seed: UInt64) throws -> ImageDataset {
        try subset(indices: try balancedSubsetIndices(count: n, seed: seed),
                   name: "\(name) balanced(\(n), seed \(seed))")
    }
}
