import SAMixCore
import SAMixOps
import SAMixNN

/// Which part of a dataset to load.
public enum DatasetSplit: String, Sendable, CaseIterable {
    case train
    case test
}

/// An in-memory image classification dataset: uint8 pixels stored N×C×H×W (row-major, channel
/// planes per image, exactly like the CIFAR binary records) plus one label per image.
///
/// Storing uint8 keeps CIFAR-10's training set at 150 MB (float32 would be 600 MB); conversion to
/// normalised float happens per batch (`BatchBuilder`). The type is a value type backed by
/// copy-on-write arrays, so copies are cheap until mutated.
public struct ImageDataset: Sendable {
    /// Pixels, `count * channels * height * width` bytes, image after image, each image C planes of H×W.
    public private(set) var pixels: [UInt8]
    /// Labels in `0..<classCount`, one per image.
    public private(set) var labels: [Int32]
    /// Number of channels (3 for CIFAR, 1 for MNIST-style data).
    public let channels: Int
    /// Image height in pixels.
    public let height: Int
    /// Image width in pixels.
    public let width: Int
    /// Number of classes; every label is below it.
    public let classCount: Int
    /// Class names (`classCount` of them) if known, else empty.
    public let classNames: [String]
    /// A short description (e.g. "CIFAR-10 train"), for messages.
    public var name: String

    /// Number of images.
    public var count: Int { labels.count }
    /// Bytes per image (`channels * height * width`).
    public var imageSize: Int { channels * height * width }
    /// Shape of one image as `[C, H, W]`.
    public var imageShape: [Int] { [channels, height, width] }

    /// A dataset from raw arrays; checks that sizes agree and every label is in `0..<classCount`.
    public init(pixels: [UInt8], labels: [Int32], channels: Int, height: Int, width: Int,
                classCount: Int, classNames: [String] = [], name: String = "dataset") throws {
        guard channels > 0, height > 0, width > 0 else {
            throw SAMixError.invalidArgument("\(name): image dimensions \(channels)×\(height)×\(width) must be positive")
        }
        let (per, o1) = channels.multipliedReportingOverflow(by: height)
        let (imageSize, o2) = per.multipliedReportingOverflow(by: width)
        let (total, o3) = imageSize.multipliedReportingOverflow(by: labels.count)
        guard !o1, !o2, !o3, total == pixels.count else {
            throw SAMixError.invalidArgument(
                "\(name): \(pixels.count) pixel bytes do not match \(labels.count) images of \(channels)×\(height)×\(width)")
        }
        guard classCount > 0 else {
            throw SAMixError.invalidArgument("\(name): classCount must be positive, got \(classCount)")
        }
        guard classNames.isEmpty || classNames.count == classCount else {
            throw SAMixError.invalidArgument("\(name): \(classNames.count) class names for \(classCount) classes")
        }
        for (i, l) in labels.enumerated() where l < 0 || Int(l) >= classCount {
            throw SAMixError.invalidArgument("\(name): label \(l) of image \(i) is outside 0..<\(classCount)")
        }
        self.pixels = pixels
        self.labels = labels
        self.channels = channels
        self.height = height
        self.width = width
        self.classCount = classCount
        self.classNames = classNames
        self.name = name
    }

    /// Label of image `i` (throws if `i` is out of range).
    public func label(at i: Int) throws -> Int {
        guard i >= 0 && i < count else {
            throw SAMixError.invalidArgument("\(name): image index \(i) outside 0..<\(count)")
        }
        return Int(labels[i])
    }

    /// The pixels of image `i` as `[C*H*W]` bytes (copies; for inspection and tests).
    public func image(at i: Int) throws -> [UInt8] {
        guard i >= 0 && i < count else {
            throw SAMixError.invalidArgument("\(name): image index \(i) outside 0..<\(count)")
        }
        return Array(pixels[(i * imageSize)..<((i + 1) * imageSize)])
    }

    /// Number of images of each class (`classCount` entries).
    public var classCounts: [Int] {
        var c = [Int](repeating: 0, count: classCount)
        for l in labels { c[Int(l)] += 1 }
        return c
    }
}
