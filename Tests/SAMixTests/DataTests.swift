import XCTest
import Glibc
import SAMix
@testable import SAMixCore
@testable import SAMixOps
@testable import SAMixNN
@testable import SAMixData
@testable import SAMixMixing
@testable import SAMixTraining

/// Dataset readers (CIFAR binary, IDX plain/gzip), corruption handling, subsets, and the real
/// Fashion-MNIST test file.
final class DataTests: XCTestCase {
    typealias F = DataFixtures

    /// A CIFAR-10 record: label, then 3072 pixel bytes derived from (file, record).
    private func cifar10Record(file: Int, record: Int, label: Int) -> [UInt8] {
        [UInt8(label)] + F.bytes(3072, seed: UInt64(file * 1000 + record))
    }

    func testCIFAR10ParsesSyntheticBinaryBatches() throws {
        let root = try F.tempDir("c10")
        defer { F.remove(root) }
        let dir = root + "/cifar-10-batches-bin"
        F.mkdir(dir)
        // Batches of different lengths; labels cycle so each file starts at a different class.
        var expectedLabels = [Int32](), expectedPixels = [UInt8]()
        for f in 1...5 {
            var file = [UInt8]()
            for r in 0..<(f + 1) {
                let l = (f * 3 + r) % 10
                let rec = cifar10Record(file: f, record: r, label: l)
                file += rec
                expectedLabels.append(Int32(l))
                expectedPixels += rec[1...]
            }
            try F.write(file, to: "\(dir)/data_batch_\(f).bin")
        }
        var test = [UInt8]()
        for r in 0..<4 { test += cifar10Record(file: 9, record: r, label: 9 - r) }
        try F.write(test, to: dir + "/test_batch.bin")
        let names = ["a0", "b1", "c2", "d3", "e4", "f5", "g6", "h7", "i8", "j9"]
        try F.write(names.joined(separator: "\n") + "\n\n", to: dir + "/batches.meta.txt")

        for path in [root, dir, dir + "/"] {
            let train = try ImageDataset.load(directory: path, split: .train, allowPartial: true)
            XCTAssertEqual(train.count, 2 + 3 + 4 + 5 + 6)
            XCTAssertEqual(train.imageShape, [3, 32, 32])
            XCTAssertEqual(train.classCount, 10)
            XCTAssertEqual(train.classNames, names)
            XCTAssertEqual(train.labels, expectedLabels)
            XCTAssertTrue(train.pixels == expectedPixels)
        }
        let t = try CIFARReader.loadCIFAR10(directory: root, split: .test, allowPartial: true)
        XCTAssertEqual(t.labels, [9, 8, 7, 6])
        // Channel layout: byte k of the record's pixel part is channel k/1024, row (k%1024)/32, col k%32.
        let rec2 = cifar10Record(file: 9, record: 2, label: 7)
        let img2 = try t.image(at: 2)
        XCTAssertEqual(img2[1024 + 5 * 32 + 7], rec2[1 + 1024 + 5 * 32 + 7])
        XCTAssertEqual(img2, Array(rec2[1...]))

        // Missing metadata falls back to the standard names.
        unlink(dir + "/batches.meta.txt")
        XCTAssertEqual(try CIFARReader.loadCIFAR10(directory: dir, split: .test, allowPartial: true).classNames, CIFARReader.cifar10ClassNames)
    }

    func testCIFAR100FineAndCoarseLabels() throws {
        let root = try F.tempDir("c100")
        defer { F.remove(root) }
        let dir = root + "/cifar-100-binary"
        F.mkdir(dir)
        var train = [UInt8](), fine = [Int32](), coarse = [Int32]()
        for r in 0..<7 {
            let c = (r * 3) % 20, f = (r * 37 + 5) % 100
            train += [UInt8(c), UInt8(f)] + F.bytes(3072, seed: UInt64(r))
            fine.append(Int32(f)); coarse.append(Int32(c))
        }
        try F.write(train, to: dir + "/train.bin")
        try F.write([UInt8(19), UInt8(99)] + F.bytes(3072, seed: 77), to: dir + "/test.bin")
        try F.write((0..<100).map { "fine\($0)" }.joined(separator: "\n"), to: dir + "/fine_label_names.txt")

        let d = try ImageDataset.load(directory: root, split: .train, allowPartial: true)
        XCTAssertEqual(d.classCount, 100)
        XCTAssertEqual(d.labels, fine)
        XCTAssertEqual(d.classNames.count, 100)
        XCTAssertEqual(d.classNames[42], "fine42")
        XCTAssertEqual(try d.image(at: 3), F.bytes(3072, seed: 3))
        let dc = try CIFARReader.loadCIFAR100(directory: dir, split: .train, labels: .coarse, allowPartial: true)
        XCTAssertEqual(dc.classCount, 20)
        XCTAssertEqual(dc.labels, coarse)
        XCTAssertEqual(dc.classNames, [])  // no coarse names file
        XCTAssertTrue(dc.pixels == d.pixels)
        let t = try ImageDataset.load(directory: dir, split: .test, kind: .cifar100Coarse, allowPartial: true)
        XCTAssertEqual(t.labels, [19])
    }

    func testCIFARCorruptFilesThrowWithPath() throws {
        let root = try F.tempDir("c10bad")
        defer { F.remove(root) }
        let dir = root + "/cifar-10-batches-bin"
        F.mkdir(dir)
        let good = cifar10Record(file: 0, record: 0, label: 3) + cifar10Record(file: 0, record: 1, label: 4)
        for f in 1...5 { try F.write(good, to: "\(dir)/data_batch_\(f).bin") }
        // Truncated by one byte.
        try F.write(Array(good.dropLast()), to: dir + "/test_batch.bin")
        F.assertIOError(try CIFARReader.loadCIFAR10(directory: root, split: .test, allowPartial: true),
                        contains: [dir + "/test_batch.bin", "not a multiple of the 3073-byte"])
        // Label byte out of range.
        var bad = good
        bad[3073] = 10
        try F.write(bad, to: dir + "/test_batch.bin")
        F.assertIOError(try CIFARReader.loadCIFAR10(directory: root, split: .test, allowPartial: true),
                        contains: [dir + "/test_batch.bin", "record 1", "label 10"])
        // Whole records, but fewer than the official file holds (a truncated download): refused
        // unless a partial file is allowed; exactly 10,000 records load.
        try F.write(good, to: dir + "/test_batch.bin")
        F.assertIOError(try CIFARReader.loadCIFAR10(directory: root, split: .test),
                        contains: [dir + "/test_batch.bin", "holds 2 records, the official file holds 10000"])
        XCTAssertEqual(try CIFARReader.loadCIFAR10(directory: root, split: .test, allowPartial: true).count, 2)
        var official = [UInt8]()
        official.reserveCapacity(10_000 * 3073)
        for _ in 0..<5_000 { official += good }
        try F.write(official, to: dir + "/test_batch.bin")
        XCTAssertEqual(try ImageDataset.load(directory: root, split: .test).count, 10_000)
        official += good
        try F.write(official, to: dir + "/test_batch.bin")
        F.assertIOError(try ImageDataset.load(directory: root, split: .test), contains: ["holds 10002 records"])
        // Empty file.
        try F.write([UInt8](), to: dir + "/test_batch.bin")
        F.assertIOError(try CIFARReader.loadCIFAR10(directory: root, split: .test, allowPartial: true), contains: ["empty"])
        // A missing training batch.
        unlink(dir + "/data_batch_4.bin")
        F.assertIOError(try CIFARReader.loadCIFAR10(directory: root, split: .train, allowPartial: true),
                        contains: [dir + "/data_batch_4.bin", "cannot open"])
        // A directory without any dataset.
        let empty = root + "/nothing"
        F.mkdir(empty)
        F.assertIOError(try ImageDataset.load(directory: empty, split: .train, allowPartial: true), contains: [empty])
        F.assertIOError(try ImageDataset.load(directory: root + "/missing", split: .train), contains: ["missing"])
        // CIFAR-100 reader on a file with a wrong record size.
        let d100 = root + "/cifar-100-binary"
        F.mkdir(d100)
        try F.write(good, to: d100 + "/test.bin")
        F.assertIOError(try CIFARReader.loadCIFAR100(directory: root, split: .test),
                        contains: [d100 + "/test.bin", "3074"])
    }

    /// Writes an IDX image/label pair: 5 images of 4×3 (H×W), labels 0..4 reversed.
    private func writeIDXPair(dir: String, prefix: String, gzip: Bool, multiMember: Bool = false) throws -> (pixels: [UInt8], labels: [Int32]) {
        let pixels = F.bytes(5 * 4 * 3, seed: 11)
        let labels: [UInt8] = [4, 3, 2, 1, 0]
        let images = F.idx(dims: [5, 4, 3], data: pixels)
        let labs = F.idx(dims: [5], data: labels)
        let ip = "\(dir)/\(prefix)-images-idx3-ubyte", lp = "\(dir)/\(prefix)-labels-idx1-ubyte"
        if gzip {
            let split = multiMember ? [Array(images[0..<20]), Array(images[20...])] : [images]
            try F.writeGzip(split, to: ip + ".gz")
            try F.writeGzip([labs], to: lp + ".gz")
        } else {
            try F.write(images, to: ip)
            try F.write(labs, to: lp)
        }
        return (pixels, labels.map { Int32($0) })
    }

    func testIDXPlainAndGzipParseExactly() throws {
        let root = try F.tempDir("idx")
        defer { F.remove(root) }
        let plainDir = root + "/plain", gzDir = root + "/fashion-mnist", multiDir = root + "/multi"
        for d in [plainDir, gzDir, multiDir] { F.mkdir(d) }
        let expected = try writeIDXPair(dir: plainDir, prefix: "t10k", gzip: false)
        _ = try writeIDXPair(dir: gzDir, prefix: "train", gzip: true)
        _ = try writeIDXPair(dir: multiDir, prefix: "train", gzip: true, multiMember: true)

        let plain = try IDXReader.load(directory: plainDir, split: .test)
        XCTAssertEqual(plain.count, 5)
        XCTAssertEqual(plain.imageShape, [1, 4, 3])
        XCTAssertEqual(plain.labels, expected.labels)
        XCTAssertTrue(plain.pixels == expected.pixels)
        XCTAssertEqual(plain.classCount, 10)

        // The parent directory works (finds fashion-mnist/), names are Fashion-MNIST's.
        let gz = try ImageDataset.load(directory: root, split: .train)
        XCTAssertTrue(gz.pixels == expected.pixels)
        XCTAssertEqual(gz.labels, expected.labels)
        XCTAssertEqual(gz.classNames, IDXReader.fashionMNISTClassNames)
        XCTAssertEqual(Normalization.standard(for: gz), .fashionMNIST)

        let multi = try IDXReader.load(directory: multiDir, split: .train)
        XCTAssertTrue(multi.pixels == expected.pixels)

        let file = try IDXReader.read(gzDir + "/train-images-idx3-ubyte.gz")
        XCTAssertEqual(file.dimensions, [5, 4, 3])
        XCTAssertEqual(file.data, expected.pixels)
        XCTAssertThrowsError(try IDXReader.load(directory: plainDir, split: .train))
    }

    func testIDXCorruptAndTruncatedFilesThrow() throws {
        let dir = try F.tempDir("idxbad")
        defer { F.remove(dir) }
        let p = dir + "/x-idx3-ubyte"
        let good = F.idx(dims: [6, 5, 4], data: F.bytes(120, seed: 5))
        XCTAssertEqual(try IDXReader.parse(good, path: p).dimensions, [6, 5, 4])

        try F.write(Array(good.dropLast(7)), to: p)
        F.assertIOError(try IDXReader.read(p), contains: [p, "truncated IDX data", "120", "113"])
        try F.write(good + [1, 2], to: p)
        F.assertIOError(try IDXReader.read(p), contains: [p, "2 unexpected trailing bytes"])
        try F.write(Array(good.prefix(9)), to: p)
        F.assertIOError(try IDXReader.read(p), contains: [p, "truncated IDX header"])
        try F.write([0, 0], to: p)
        F.assertIOError(try IDXReader.read(p), contains: [p, "too short"])
        var badMagic = good; badMagic[0] = 7
        try F.write(badMagic, to: p)
        F.assertIOError(try IDXReader.read(p), contains: [p, "not an IDX file"])
        var badType = good; badType[2] = 0x0D
        try F.write(badType, to: p)
        F.assertIOError(try IDXReader.read(p), contains: [p, "0xd", "not supported"])
        var badRank = good; badRank[3] = 0
        try F.write(badRank, to: p)
        F.assertIOError(try IDXReader.read(p), contains: [p, "0 dimensions"])
        var huge = good; huge[4] = 0xFF  // first dimension ≈ 4.3e9: claims more data than present
        try F.write(huge, to: p)
        XCTAssertThrowsError(try IDXReader.read(p))

        // gzip: truncated stream, corrupt stream, garbage after the stream.
        let gz = try F.gzip(F.idx(dims: [50, 20, 20], data: F.bytes(20_000, seed: 9)))
        let gp = dir + "/x-idx3-ubyte.gz"
        try F.write(Array(gz.prefix(gz.count / 2)), to: gp)
        F.assertIOError(try IDXReader.read(gp), contains: [gp, "truncated gzip"])
        try F.write(Array(gz.dropLast(4)), to: gp)  // trailer cut: CRC present, size missing
        F.assertIOError(try IDXReader.read(gp), contains: [gp, "truncated gzip"])
        var corrupt = gz
        for k in 0..<64 { corrupt[gz.count / 2 + k] ^= 0x5A }
        try F.write(corrupt, to: gp)
        F.assertIOError(try IDXReader.read(gp), contains: [gp, "corrupt gzip"])
        try F.write(gz + [0x41, 0x42, 0x43], to: gp)
        F.assertIOError(try IDXReader.read(gp), contains: [gp, "trailing garbage"])
        try F.write(gz + [0, 0, 0], to: gp)  // zero padding (as from tape blocks) is accepted
        XCTAssertEqual(try IDXReader.read(gp).dimensions, [50, 20, 20])

        // Label file problems.
        let ip = dir + "/t10k-images-idx3-ubyte", lp = dir + "/t10k-labels-idx1-ubyte"
        try F.write(good, to: ip)
        try F.write(F.idx(dims: [5], data: [0, 1, 2, 3, 4]), to: lp)
        F.assertIOError(try IDXReader.load(directory: dir, split: .test), contains: [lp, "5 labels for 6 images"])
        try F.write(F.idx(dims: [6], data: [0, 1, 2, 3, 10, 4]), to: lp)
        F.assertIOError(try IDXReader.load(directory: dir, split: .test), contains: [lp, "label 10 of image 4"])
        try F.write(F.idx(dims: [6, 1], data: [0, 1, 2, 3, 4, 5]), to: lp)
        F.assertIOError(try IDXReader.load(directory: dir, split: .test), contains: [lp, "expected one"])
        try F.write(F.idx(dims: [6], data: [0, 1, 2, 3, 4, 5]), to: lp)
        XCTAssertEqual(try IDXReader.load(directory: dir, split: .test).labels, [0, 1, 2, 3, 4, 5])
    }

    func testDatasetValidationAndPrefixSubset() throws {
        XCTAssertThrowsError(try ImageDataset(pixels: [1, 2, 3], labels: [0], channels: 1, height: 2, width: 2, classCount: 2))
        XCTAssertThrowsError(try ImageDataset(pixels: [1, 2, 3, 4], labels: [2], channels: 1, height: 2, width: 2, classCount: 2))
        XCTAssertThrowsError(try ImageDataset(pixels: [], labels: [], channels: 0, height: 2, width: 2, classCount: 2))
        XCTAssertThrowsError(try ImageDataset(pixels: [], labels: [], channels: 1, height: 2, width: 2, classCount: 2, classNames: ["x"]))

        let d = try F.dataset(labels: [0, 1, 2, 0, 1, 2, 0], classCount: 3)
        let p = try d.prefix(3)
        XCTAssertEqual(p.count, 3)
        XCTAssertEqual(p.labels, [0, 1, 2])
        XCTAssertTrue(p.pixels == Array(d.pixels[0..<(3 * d.imageSize)]))
        XCTAssertEqual(try d.prefix(100).count, 7)
        XCTAssertEqual(try d.prefix(0).count, 0)
        XCTAssertThrowsError(try d.prefix(-1))
        let s = try d.subset(indices: [6, 1, 1])
        XCTAssertEqual(s.labels, [0, 1, 1])
        XCTAssertEqual(try s.image(at: 0), try d.image(at: 6))
        XCTAssertEqual(try s.image(at: 2), try d.image(at: 1))
        XCTAssertThrowsError(try d.subset(indices: [7]))
        XCTAssertThrowsError(try d.subset(indices: [-1]))
        XCTAssertThrowsError(try d.image(at: 7))
        XCTAssertThrowsError(try d.label(at: -1))
        XCTAssertEqual(d.classCounts, [3, 2, 2])
    }

    func testBalancedSubsetIsBalancedAndDeterministic() throws {
        // Unbalanced source: class c has 10 + 7c images, interleaved.
        var labels = [Int]()
        for c in 0..<4 { labels += Array(repeating: c, count: 10 + 7 * c) }
        var g = SplitMix64(seed: 3)
        labels = g.permutation(labels.count).map { labels[$0] }
        let d = try F.dataset(labels: labels, channels: 1, height: 2, width: 2, classCount: 4)

        let a = try d.balancedSubsetIndices(count: 40, seed: 7)
        let b = try d.balancedSubsetIndices(count: 40, seed: 7)
        let c = try d.balancedSubsetIndices(count: 40, seed: 8)
        XCTAssertEqual(a, b)
        XCTAssertNotEqual(a, c)
        XCTAssertEqual(Set(a).count, 40)
        XCTAssertEqual(a, a.sorted())
        let sub = try d.balancedSubset(count: 40, seed: 7)
        XCTAssertEqual(sub.classCounts, [10, 10, 10, 10])
        XCTAssertEqual(sub.labels, a.map { d.labels[$0] })
        XCTAssertEqual(try sub.image(at: 5), try d.image(at: a[5]))
        XCTAssertEqual(try d.balancedSubset(count: 40, seed: 8).classCounts, [10, 10, 10, 10])

        // Not a multiple of the class count: counts differ by at most one.
        let odd = try d.balancedSubset(count: 18, seed: 1).classCounts
        XCTAssertEqual(odd.reduce(0, +), 18)
        XCTAssertEqual(odd.max()! - odd.min()!, 1)
        // Class 0 has only 10 images.
        XCTAssertThrowsError(try d.balancedSubsetIndices(count: 44, seed: 1))
        XCTAssertThrowsError(try d.balancedSubsetIndices(count: -1, seed: 1))
        // Different seeds choose different images across many draws (not just a fixed prefix).
        var seen = Set<Int>()
        for s in 0..<20 { seen.formUnion(try d.balancedSubsetIndices(count: 8, seed: UInt64(s))) }
        XCTAssertGreaterThan(seen.count, 30)
    }

    func testRealFashionMNISTTestSet() throws {
        let dir = "/usr/share/datasets/fashion-mnist"
        guard DatasetFiles.isFile(dir + "/t10k-images-idx3-ubyte.gz") else {
            throw XCTSkip("Fashion-MNIST not installed at \(dir)")
        }
        let d = try ImageDataset.load(directory: dir, split: .test)
        XCTAssertEqual(d.count, 10_000)
        XCTAssertEqual(d.imageShape, [1, 28, 28])
        XCTAssertEqual(d.classCounts, Array(repeating: 1000, count: 10))
        XCTAssertEqual(d.classNames, IDXReader.fashionMNISTClassNames)
        XCTAssertEqual(Array(d.labels.prefix(5)), [9, 2, 1, 1, 6])
        // Per-channel mean of the test set is close to the published training mean 0.2860.
        let stats = Normalization.computed(from: d)
        XCTAssertEqual(stats.mean[0], 0.2860, accuracy: 0.005)
        XCTAssertEqual(stats.std[0], 0.3530, accuracy: 0.005)
    }

    /// The real CIFAR-10 binary set, if unpacked (SAMIX_CIFAR10_DIR, /tmp/samix-cifar or /tmp).
    func testRealCIFAR10IfUnpacked() throws {
        var dirs = ["/tmp/samix-cifar", "/tmp"]
        if let e = getenv("SAMIX_CIFAR10_DIR") { dirs.insert(String(cString: e), at: 0) }
        guard let dir = dirs.first(where: { DatasetFiles.isFile($0 + "/cifar-10-batches-bin/data_batch_5.bin") || DatasetFiles.isFile($0 + "/data_batch_5.bin") }) else {
            throw XCTSkip("CIFAR-10 binary not unpacked (tar -xJf cifar-10-batches-bin.tar.xz -C /tmp)")
        }
        let test = try ImageDataset.load(directory: dir, split: .test)
        XCTAssertEqual(test.count, 10_000)
        XCTAssertEqual(test.classCounts, Array(repeating: 1000, count: 10))
        XCTAssertEqual(test.classNames, CIFARReader.cifar10ClassNames)
        let train = try CIFARReader.loadCIFAR10(directory: dir, split: .train)
        XCTAssertEqual(train.count, 50_000)
        XCTAssertEqual(train.pixels.count, 153_600_000)
        XCTAssertEqual(train.classCounts, Array(repeating: 5000, count: 10))
        let stats = Normalization.computed(from: train)
        for c in 0..<3 {
            XCTAssertEqual(stats.mean[c], Normalization.cifar10.mean[c], accuracy: 1e-4)
            XCTAssertEqual(stats.std[c], Normalization.cifar10.std[c], accuracy: 1e-4)
        }
        XCTAssertEqual(Normalization.standard(for: train), .cifar10)
    }
}
