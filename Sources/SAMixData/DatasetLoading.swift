import Glibc
import SAMixCore
import SAMixOps
import SAMixNN

/// Which dataset `ImageDataset.load(directory:split:kind:)` should read.
public enum DatasetKind: String, Sendable, CaseIterable {
    /// Detect from the directory contents.
    case auto
    case cifar10
    case cifar100
    case cifar100Coarse
    /// MNIST-style IDX files (MNIST, Fashion-MNIST).
    case idx
}

extension ImageDataset {
    /// Loads a dataset split from a directory: the extracted dataset folder or its parent.
    /// With `.auto`, looks for CIFAR-10 binary, then CIFAR-100 binary (fine labels), then IDX files.
    /// CIFAR files must hold the official record counts unless `allowPartial` (see `CIFARReader`).
    public static func load(directory: String, split: DatasetSplit, kind: DatasetKind = .auto,
                            allowPartial: Bool = false) throws -> ImageDataset {
        // A folder that cannot be reached or read is reported as such, not as "not a directory" or
        // "no dataset files found".
        var st = stat()
        if stat(directory, &st) != 0, errno == EACCES {
            throw SAMixError.io("\(directory): cannot access the path (\(String(cString: strerror(EACCES))))")
        }
        if DatasetFiles.isDirectory(directory), access(directory, R_OK | X_OK) != 0 {
            throw SAMixError.io("\(directory): cannot read the directory (\(String(cString: strerror(errno))))")
        }
        switch kind {
        case .cifar10: return try CIFARReader.loadCIFAR10(directory: directory, split: split, allowPartial: allowPartial)
        case .cifar100: return try CIFARReader.loadCIFAR100(directory: directory, split: split, labels: .fine, allowPartial: allowPartial)
        case .cifar100Coarse: return try CIFARReader.loadCIFAR100(directory: directory, split: split, labels: .coarse, allowPartial: allowPartial)
        case .idx: return try IDXReader.load(directory: directory, split: split)
        case .auto:
            guard DatasetFiles.isDirectory(directory) else {
                throw SAMixError.io("\(directory): not a directory")
            }
            if CIFARReader.locate(directory, folder: "cifar-10-batches-bin", marker: "test_batch.bin") != nil {
                return try CIFARReader.loadCIFAR10(directory: directory, split: split, allowPartial: allowPartial)
            }
            if CIFARReader.locate(directory, folder: "cifar-100-binary", marker: "test.bin") != nil {
                return try CIFARReader.loadCIFAR100(directory: directory, split: split, allowPartial: allowPartial)
            }
            if IDXReader.locate(directory: directory, split: split) != nil {
                return try IDXReader.load(directory: directory, split: split)
            }
            throw SAMixError.io("\(directory): no CIFAR-10 / CIFAR-100 binary or IDX (MNIST-style) \(split.rawValue) files found")
        }
    }
}
