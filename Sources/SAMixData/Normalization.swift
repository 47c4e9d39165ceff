import SAMixCore
import SAMixOps
import SAMixNN

/// Per-channel normalisation of uint8 pixels to float: `(pixel / 255 - mean[c]) / std[c]`.
///
/// The conversion is done through a 256-entry table per channel computed in Double, so every
/// normalised value is the correctly rounded float of the exact formula and identical wherever
/// it is computed.
public struct Normalization: Sendable, Equatable {
    /// Per-channel means in [0, 1] pixel units (one value applies to every channel).
    public let mean: [Float]
    /// Per-channel standard deviations in [0, 1] pixel units, all > 0.
    public let std: [Float]

    public init(mean: [Float], std: [Float]) throws {
        guard !mean.isEmpty, mean.count == std.count else {
            throw SAMixError.invalidArgument("normalisation needs as many means as stds (got \(mean.count) and \(std.count))")
        }
        for s in std where !(s > 0 && s.isFinite) {
            throw SAMixError.invalidArgument("normalisation std \(s) must be positive and finite")
        }
        for m in mean where !m.isFinite {
            throw SAMixError.invalidArgument("normalisation mean \(m) must be finite")
        }
        self.mean = mean
        self.std = std
    }

    private init(unchecked mean: [Float], _ std: [Float]) {
        self.mean = mean
        self.std = std
    }

    /// CIFAR-10 training-set statistics.
    public static let cifar10 = Normalization(unchecked: [0.4914, 0.4822, 0.4465], [0.2470, 0.2435, 0.2616])
    /// CIFAR-100 training-set statistics.
    public static let cifar100 = Normalization(unchecked: [0.5071, 0.4865, 0.4409], [0.2673, 0.2564, 0.2762])
    /// Fashion-MNIST training-set statistics.
    public static let fashionMNIST = Normalization(unchecked: [0.2860], [0.3530])
    /// MNIST training-set statistics.
    public static let mnist = Normalization(unchecked: [0.1307], [0.3081])
    /// Only scales to [0, 1] (`pixel / 255`).
    public static let unitRange = Normalization(unchecked: [0], [1])

    /// The usual statistics for a dataset by its class count and channels: CIFAR-10 for 3-channel
    /// 10-class data, CIFAR-100 for 3-channel data with 20 or 100 classes, Fashion-MNIST or MNIST
    /// for 1-channel data whose name says so; otherwise statistics computed from the dataset.
    public static func standard(for dataset: ImageDataset) -> Normalization {
        if dataset.channels == 3 && dataset.classCount == 10 { return .cifar10 }
        if dataset.channels == 3 && (dataset.classCount == 100 || dataset.classCount == 20) { return .cifar100 }
        let name = dataset.name.lowercased()
        if dataset.channels == 1 && name.contains("fashion") { return .fashionMNIST }
        if dataset.channels == 1 && name.contains("mnist") { return .mnist }
        return computed(from: dataset)
    }

    /// Per-channel mean and (population) standard deviation of a dataset's pixels / 255.
    /// A constant channel gets std 1 so the result is always usable.
    public static func computed(from dataset: ImageDataset) -> Normalization {
        let c = dataset.channels, plane = dataset.height * dataset.width
        var hist = [[Int]](repeating: [Int](repeating: 0, count: 256), count: c)
        dataset.pixels.withUnsafeBufferPointer { p in
            guard let base = p.baseAddress else { return }
            for i in 0..<dataset.count {
                for ch in 0..<c {
                    let src = base + (i * c + ch) * plane
                    hist[ch].withUnsafeMutableBufferPointer { h in
                        for k in 0..<plane { h[Int(src[k])] += 1 }
                    }
                }
            }
        }
        var means = [Float](), stds = [Float]()
        for ch in 0..<c {
            var n = 0.0, s = 0.0, s2 = 0.0
            for v in 0..<256 {
                let w = Double(hist[ch][v]), x = Double(v) / 255
                n += w; s += w * x; s2 += w * x * x
            }
            let m = n > 0 ? s / n : 0
            let variance = n > 0 ? max(0, s2 / n - m * m) : 0
            let sd = variance.squareRoot()
            means.append(Float(m))
            stds.append(sd > 1e-12 ? Float(sd) : 1)
        }
        return Normalization(unchecked: means, stds)
    }

    /// `channels × 256` floats: entry `[c * 256 + v]` is the normalised value of pixel `v` in channel `c`.
    /// A normalisation with a single mean/std applies it to every channel.
    public func table(channels: Int) throws -> [Float] {
        guard mean.count == channels || mean.count == 1 else {
            throw SAMixError.invalidArgument("normalisation has \(mean.count) channels, images have \(channels)")
        }
        var t = [Float](repeating: 0, count: channels * 256)
        for c in 0..<channels {
            let m = Double(mean.count == 1 ? mean[0] : mean[c])
            let s = Double(std.count == 1 ? std[0] : std[c])
            for v in 0..<256 { t[c * 256 + v] = Float((Double(v) / 255 - m) / s) }
        }
        return t
    }
}

extension ImageDataset {
    /// The images at `indices` (default: all) normalised to a new float32 tensor `[n, C, H, W]`,
    /// without augmentation.
    public func normalizedTensor(_ normalization: Normalization, indices: [Int]? = nil) throws -> Tensor {
        let idx = indices ?? Array(0..<count)
        let out = try Tensor(uninitializedShape: [idx.count, channels, height, width])
        try BatchBuilder(dataset: self, normalization: normalization, augmentation: .none)
            .fill(out.data, capacity: out.count, indices: idx, rng: SplitMix64(seed: 0), augment: false)
        return out
    }
}
