import Glibc
import SAMixCore
import SAMixOps
import SAMixNN

/// Reader for the IDX format of MNIST and Fashion-MNIST (LeCun et al.), plain or gzip-compressed.
///
/// Layout: two zero bytes, a type byte (0x08 = unsigned byte, the only type used for image data),
/// the number of dimensions, then each dimension as a big-endian UInt32, then the data.
public enum IDXReader {
    /// A decoded IDX file of unsigned bytes.
    public struct File: Sendable {
        public let dimensions: [Int]
        public let data: [UInt8]
    }

    /// Fashion-MNIST class names, in label order.
    public static let fashionMNISTClassNames = [
        "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
        "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
    ]

    /// Reads an IDX file of unsigned bytes (gzip-compressed or plain, detected by content).
    /// Throws `SAMixError.io` on a bad header, unsupported type, or a payload shorter or longer
    /// than the header's dimensions.
    public static func read(_ path: String) throws -> File {
        let bytes = try FileBytes.readMaybeGzip(path)
        return try parse(bytes, path: path)
    }

    static func parse(_ bytes: [UInt8], path: String) throws -> File {
        guard bytes.count >= 4 else {
            throw SAMixError.io("\(path): IDX file of \(bytes.count) bytes is too short for a header")
        }
        guard bytes[0] == 0, bytes[1] == 0 else {
            throw SAMixError.io("\(path): not an IDX file (magic bytes \(bytes[0]), \(bytes[1]) instead of 0, 0)")
        }
        guard bytes[2] == 0x08 else {
            throw SAMixError.io("\(path): IDX element type 0x\(String(bytes[2], radix: 16)) is not supported (only unsigned byte, 0x08)")
        }
        let ndims = Int(bytes[3])
        guard ndims >= 1 && ndims <= 4 else {
            throw SAMixError.io("\(path): IDX file has \(ndims) dimensions (expected 1 to 4)")
        }
        let headerSize = 4 + 4 * ndims
        guard bytes.count >= headerSize else {
            throw SAMixError.io("\(path): truncated IDX header (\(bytes.count) bytes, need \(headerSize))")
        }
        var dims = [Int]()
        var total = 1
        for d in 0..<ndims {
            let o = 4 + 4 * d
            let v = Int(bytes[o]) << 24 | Int(bytes[o + 1]) << 16 | Int(bytes[o + 2]) << 8 | Int(bytes[o + 3])
            dims.append(v)
            let (t, overflow) = total.multipliedReportingOverflow(by: v)
            guard !overflow, t <= FileBytes.maxBytes else {
                throw SAMixError.io("\(path): IDX dimensions \(dims) are too large")
            }
            total = t
        }
        let payload = bytes.count - headerSize
        guard payload == total else {
            if payload < total {
                throw SAMixError.io("\(path): truncated IDX data: dimensions \(dims) need \(total) bytes, file has \(payload)")
            }
            throw SAMixError.io("\(path): IDX data has \(payload - total) unexpected trailing bytes after dimensions \(dims)")
        }
        return File(dimensions: dims, data: Array(bytes[headerSize...]))
    }

    /// An image dataset from an IDX image file (N×H×W, or N×C×H×W) and an IDX label file (N).
    public static func loadDataset(images imagesPath: String, labels labelsPath: String,
                                   classCount: Int = 10, classNames: [String] = [],
                                   name: String? = nil) throws -> ImageDataset {
        let images = try read(imagesPath)
        let labels = try read(labelsPath)
        let d = images.dimensions
        guard d.count == 3 || d.count == 4 else {
            throw SAMixError.io("\(imagesPath): IDX image file has dimensions \(d), expected N×H×W or N×C×H×W")
        }
        guard labels.dimensions.count == 1 else {
            throw SAMixError.io("\(labelsPath): IDX label file has dimensions \(labels.dimensions), expected one (N)")
        }
        guard labels.dimensions[0] == d[0] else {
            throw SAMixError.io("\(labelsPath): \(labels.dimensions[0]) labels for \(d[0]) images in \(imagesPath)")
        }
        let (c, h, w) = d.count == 3 ? (1, d[1], d[2]) : (d[1], d[2], d[3])
        guard c > 0, h > 0, w > 0 else {
            throw SAMixError.io("\(imagesPath): IDX image dimensions \(d) contain a zero")
        }
        for (i, l) in labels.data.enumerated() where Int(l) >= classCount {
            throw SAMixError.io("\(labelsPath): label \(l) of image \(i) is outside 0..<\(classCount)")
        }
        return try ImageDataset(pixels: images.data, labels: labels.data.map { Int32($0) },
                                channels: c, height: h, width: w, classCount: classCount,
                                classNames: classNames, name: name ?? imagesPath)
    }

    /// Loads an MNIST-style split from a directory holding the four IDX files
    /// (`train-images-idx3-ubyte[.gz]`, `train-labels-idx1-ubyte[.gz]`, `t10k-…`; the
    /// `train-images.idx3-ubyte` spelling is accepted too). `directory` may also be a parent of a
    /// `fashion-mnist`, `FashionMNIST/raw`, `mnist` or `MNIST/raw` folder holding them.
    /// Class names default to Fashion-MNIST's when the folder name mentions "fashion".
    public static func load(directory: String, split: DatasetSplit, classNames: [String]? = nil,
                            name: String? = nil) throws -> ImageDataset {
        guard let found = locate(directory: directory, split: split) else {
            let prefix = split == .train ? "train" : "t10k"
            throw SAMixError.io("\(directory): no \(prefix)-images-idx3-ubyte[.gz] and \(prefix)-labels-idx1-ubyte[.gz] found "
                                + "(also looked in fashion-mnist/, FashionMNIST/raw/, mnist/, MNIST/raw/)")
        }
        let isFashion = found.folder.lowercased().contains("fashion")
        let names = classNames ?? (isFashion ? fashionMNISTClassNames : [])
        let title = name ?? "\(isFashion ? "Fashion-MNIST" : "IDX") \(split.rawValue)"
        return try loadDataset(images: found.images, labels: found.labels, classCount: 10, classNames: names, name: title)
    }

    /// The image and label files of `split` in `directory` or one of the usual sub-folders.
    static func locate(directory: String, split: DatasetSplit) -> (folder: String, images: String, labels: String)? {
        let prefix = split == .train ? "train" : "t10k"
        let candidates = [directory] + ["fashion-mnist", "FashionMNIST/raw", "fashion_mnist", "mnist", "MNIST/raw"]
            .map { DatasetFiles.join(directory, $0) }
        for dir in candidates {
            if let img = DatasetFiles.firstExisting(in: dir, names: idxNames(prefix, "images", 3)),
               let lab = DatasetFiles.firstExisting(in: dir, names: idxNames(prefix, "labels", 1)) {
                return (dir, img, lab)
            }
        }
        return nil
    }

    static func idxNames(_ prefix: String, _ kind: String, _ rank: Int) -> [String] {
        let a = "\(prefix)-\(kind)-idx\(rank)-ubyte", b = "\(prefix)-\(kind).idx\(rank)-ubyte"
        return [a + ".gz", a, b + ".gz", b]
    }
}
