import SAMixCore
import SAMixOps
import SAMixNN

/// A class-balanced validation hold-out of a training set, so tuning decisions are made on held-out
/// training images and the test set is only reported.
extension ImageDataset {
    /// Splits the dataset into (train, validation): `validation` holds `count` images chosen by
    /// `balancedSubsetIndices(count:seed:)` (count / classes per class, the remainder spread over
    /// classes drawn by the seed), `train` every other image; both keep dataset order. The split
    /// depends only on the dataset and `seed` — not on a run's seed — so every run of a protocol
    /// holds out the same images (CIFAR-10, count 5,000: 500 per class). Throws when count is
    /// negative, not smaller than the dataset, or a class has too few images.
    public func validationSplit(count n: Int, seed: UInt64 = 0) throws -> (train: ImageDataset, validation: ImageDataset) {
        guard n >= 1, n < count else {
            throw SAMixError.invalidArgument("\(name): validation split of \(n) images needs 1 ≤ n < \(count)")
        }
        let held = try balancedSubsetIndices(count: n, seed: seed)
        var isHeld = [Bool](repeating: false, count: count)
        for i in held { isHeld[i] = true }
        let rest = (0..<count).filter { !isHeld[$0] }
        return (try subset(indices: rest, name: "\(name) minus validation(\(n), seed \(seed))"),
                try subset(indices: held, name: "\(name) validation(\(n), seed \(seed))"))
    }
}
