import Glibc
import SAMixCore
import SAMixOps
import SAMixNN

/// Reader for the official **binary** versions of CIFAR-10 and CIFAR-100 (Krizhevsky 2009).
///
/// CIFAR-10 (`cifar-10-batches-bin/`): `data_batch_1.bin` … `data_batch_5.bin`, `test_batch.bin`,
/// records of 3073 bytes = 1 label byte + 1024 R + 1024 G + 1024 B (32×32 row-major);
/// class names in `batches.meta.txt`.
/// CIFAR-100 (`cifar-100-binary/`): `train.bin`, `test.bin`, records of 3074 bytes = coarse label
/// byte, fine label byte, then the 3072 pixel bytes; names in `fine_label_names.txt` and
/// `coarse_label_names.txt`.
public enum CIFARReader {
    /// Which CIFAR-100 label to use.
    public enum CIFAR100Labels: String, Sendable {
        /// The 100 fine classes (default, the usual benchmark).
        case fine
        /// The 20 coarse superclasses.
        case coarse
    }

    static let imageBytes = 3 * 32 * 32

    /// CIFAR-10 class names (used when `batches.meta.txt` is missing or malformed).
    public static let cifar10ClassNames = [
        "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
    ]

    /// Parses CIFAR binary files into one dataset.
    ///
    /// - Parameters:
    ///   - paths: the batch files, concatenated in this order.
    ///   - labelBytes: label bytes before the pixels of each record (1 for CIFAR-10, 2 for CIFAR-100).
    ///   - labelIndex: which of those label bytes is the label (CIFAR-100: 0 coarse, 1 fine).
    ///   - classCount: labels must be below this.
    ///   - expectedRecords: records each file must hold (the official counts), nil = any whole number.
    public static func read(paths: [String], labelBytes: Int, labelIndex: Int, classCount: Int,
                            classNames: [String] = [], name: String, expectedRecords: [Int]? = nil) throws -> ImageDataset {
        guard labelBytes >= 1, labelIndex >= 0, labelIndex < labelBytes else {
            throw SAMixError.invalidArgument("CIFAR reader: label index \(labelIndex) with \(labelBytes) label bytes")
        }
        guard !paths.isEmpty else { throw SAMixError.invalidArgument("CIFAR reader: no files given") }
        if let e = expectedRecords, e.count != paths.count {
            throw SAMixError.invalidArgument("CIFAR reader: \(e.count) expected record counts for \(paths.count) files")
        }
        let record = labelBytes + imageBytes
        // Size the output once from the file sizes, so the whole set is one allocation.
        var expected = 0
        for p in paths {
            var st = stat()
            if stat(p, &st) == 0 { expected += max(0, Int(st.st_size)) / record }
        }
        var pixels = [UInt8]()
        var labels = [Int32]()
        pixels.reserveCapacity(expected * imageBytes)
        labels.reserveCapacity(expected)
        for (fileIndex, p) in paths.enumerated() {
            let bytes = try FileBytes.read(p)
            guard !bytes.isEmpty else { throw SAMixError.io("\(p): CIFAR batch file is empty") }
            guard bytes.count % record == 0 else {
                throw SAMixError.io("\(p): size \(bytes.count) is not a multiple of the \(record)-byte CIFAR record "
                                    + "(truncated or wrong format; \(bytes.count / record) whole records + \(bytes.count % record) bytes)")
            }
            let n = bytes.count / record
            if let e = expectedRecords?[fileIndex], n != e {
                throw SAMixError.io("\(p): holds \(n) records, the official file holds \(e) (truncated or modified; "
                                    + "load with allowPartial / allow_partial=True to read a custom subset)")
            }
            try bytes.withUnsafeBufferPointer { b in
                guard let base = b.baseAddress else { return }
                for r in 0..<n {
                    let rec = base + r * record
                    let l = Int(rec[labelIndex])
                    guard l < classCount else {
                        throw SAMixError.io("\(p): record \(r) has label \(l), expected 0..<\(classCount) (corrupt file or wrong CIFAR variant)")
                    }
                    labels.append(Int32(l))
                    pixels.append(contentsOf: UnsafeBufferPointer(start: rec + labelBytes, count: imageBytes))
                }
            }
        }
        return try ImageDataset(pixels: pixels, labels: labels, channels: 3, height: 32, width: 32,
                                classCount: classCount, classNames: classNames, name: name)
    }

    /// Loads CIFAR-10. `directory` is the extracted `cifar-10-batches-bin` folder or its parent.
    /// Each official file holds exactly the official number of records (10,000 per CIFAR-10 batch;
    /// CIFAR-100: 50,000 train, 10,000 test) unless `allowPartial` (custom subsets, test fixtures).
    public static func loadCIFAR10(directory: String, split: DatasetSplit, allowPartial: Bool = false) throws -> ImageDataset {
        guard let dir = locate(directory, folder: "cifar-10-batches-bin", marker: "test_batch.bin") else {
            throw SAMixError.io("\(directory): no CIFAR-10 binary data (cifar-10-batches-bin/test_batch.bin) found here or in cifar-10-batches-bin/")
        }
        let files = split == .train
            ? (1...5).map { DatasetFiles.join(dir, "data_batch_\($0).bin") }
            : [DatasetFiles.join(dir, "test_batch.bin")]
        var names = cifar10ClassNames
        if let meta = DatasetFiles.lines(DatasetFiles.join(dir, "batches.meta.txt")), meta.count == 10 { names = meta }
        return try read(paths: files, labelBytes: 1, labelIndex: 0, classCount: 10, classNames: names,
                        name: "CIFAR-10 \(split.rawValue)",
                        expectedRecords: allowPartial ? nil : Array(repeating: 10_000, count: files.count))
    }

    /// Loads CIFAR-100 with fine (default, 100 classes) or coarse (20 classes) labels.
    /// `directory` is the extracted `cifar-100-binary` folder or its parent.
    public static func loadCIFAR100(directory: String, split: DatasetSplit,
                                    labels: CIFAR100Labels = .fine, allowPartial: Bool = false) throws -> ImageDataset {
        guard let dir = locate(directory, folder: "cifar-100-binary", marker: "test.bin") else {
            throw SAMixError.io("\(directory): no CIFAR-100 binary data (cifar-100-binary/test.bin) found here or in cifar-100-binary/")
        }
        let file = DatasetFiles.join(dir, split == .train ? "train.bin" : "test.bin")
        let fine = labels == .fine
        let classCount = fine ? 100 : 20
        var names: [String] = []
        if let l = DatasetFiles.lines(DatasetFiles.join(dir, fine ? "fine_label_names.txt" : "coarse_label_names.txt")),
           l.count == classCount { names = l }
        return try read(paths: [file], labelBytes: 2, labelIndex: fine ? 1 : 0, classCount: classCount,
                        classNames: names, name: "CIFAR-100 \(split.rawValue) (\(labels.rawValue))",
                        expectedRecords: allowPartial ? nil : [split == .train ? 50_000 : 10_000])
    }

    /// `directory` itself if it holds `marker`, else `directory/folder` if that does.
    static func locate(_ directory: String, folder: String, marker: String) -> String? {
        if DatasetFiles.isFile(DatasetFiles.join(directory, marker)) { return directory }
        let sub = DatasetFiles.join(directory, folder)
        if DatasetFiles.isFile(DatasetFiles.join(sub, marker)) { return sub }
        return nil
    }
}
