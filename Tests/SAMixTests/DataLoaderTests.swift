import XCTest
import SAMix
@testable import SAMixCore
@testable import SAMixOps
@testable import SAMixNN
@testable import SAMixData
@testable import SAMixMixing
@testable import SAMixTraining

/// Normalisation, crop/flip augmentation and the batch iterator. (The class name contains
/// "DataTests" so `--filter DataTests` runs it.)
final class LoaderDataTests: XCTestCase {
    typealias F = DataFixtures

    private var savedThreads = 1

    override func setUp() {
        super.setUp()
        savedThreads = Engine.threads
    }

    override func tearDown() {
        Engine.threads = savedThreads
        super.tearDown()
    }

    /// The exact normalised value, computed independently of `Normalization.table`.
    private func norm(_ v: UInt8, _ c: Int, _ n: Normalization) -> Float {
        let m = Double(n.mean.count == 1 ? n.mean[0] : n.mean[c])
        let s = Double(n.std.count == 1 ? n.std[0] : n.std[c])
        return Float((Double(v) / 255 - m) / s)
    }

    /// Reference augmentation: builds the zero-padded image explicitly, cuts the crop, mirrors it,
    /// then normalises.
    private func reference(_ img: [UInt8], c: Int, h: Int, w: Int, pad: Int,
                           _ p: Augmentation.Params, _ n: Normalization) -> [Float] {
        let ph = h + 2 * pad, pw = w + 2 * pad
        var padded = [UInt8](repeating: 0, count: c * ph * pw)
        for ch in 0..<c { for y in 0..<h { for x in 0..<w {
            padded[(ch * ph + y + pad) * pw + x + pad] = img[(ch * h + y) * w + x]
        } } }
        var crop = [UInt8](repeating: 0, count: c * h * w)
        for ch in 0..<c { for y in 0..<h { for x in 0..<w {
            crop[(ch * h + y) * w + x] = padded[(ch * ph + y + p.offsetY) * pw + x + p.offsetX]
        } } }
        var out = [Float](repeating: 0, count: c * h * w)
        for ch in 0..<c { for y in 0..<h { for x in 0..<w {
            let sx = p.flip ? w - 1 - x : x
            out[(ch * h + y) * w + x] = norm(crop[(ch * h + y) * w + sx], ch, n)
        } } }
        return out
    }

    func testNormalizationValues() throws {
        let n = Normalization.cifar10
        XCTAssertEqual(n.mean, [0.4914, 0.4822, 0.4465])
        XCTAssertEqual(n.std, [0.2470, 0.2435, 0.2616])
        XCTAssertEqual(Normalization.fashionMNIST.mean, [0.2860])
        XCTAssertEqual(Normalization.fashionMNIST.std, [0.3530])
        let t = try n.table(channels: 3)
        XCTAssertEqual(t[0], -0.4914 / 0.2470, accuracy: 1e-6)
        XCTAssertEqual(t[255], (1 - 0.4914) / 0.2470, accuracy: 1e-6)
        XCTAssertEqual(t[256 + 128], (128.0 / 255 - 0.4822) / 0.2435, accuracy: 1e-6)
        XCTAssertEqual(t[512 + 255], (1 - 0.4465) / 0.2616, accuracy: 1e-6)
        XCTAssertThrowsError(try n.table(channels: 1))
        XCTAssertEqual(try Normalization.fashionMNIST.table(channels: 2)[256 + 7], norm(7, 0, .fashionMNIST))
        XCTAssertThrowsError(try Normalization(mean: [0.5], std: [0]))
        XCTAssertThrowsError(try Normalization(mean: [0.5, 0.5], std: [1]))
        XCTAssertThrowsError(try Normalization(mean: [.nan], std: [1]))

        // Whole-dataset conversion: every element is exactly the reference value.
        let d = try F.dataset(labels: [0, 1, 2, 3], channels: 3, height: 4, width: 6, classCount: 10)
        let x = try d.normalizedTensor(n)
        XCTAssertEqual(x.shape, [4, 3, 4, 6])
        let v = x.scalars
        for i in 0..<v.count {
            let ch = (i / 24) % 3
            XCTAssertEqual(v[i], norm(d.pixels[i], ch, n))
        }
        let sub = try d.normalizedTensor(n, indices: [3, 0])
        XCTAssertEqual(Array(sub.scalars[0..<72]), Array(v[216..<288]))
        XCTAssertEqual(Array(sub.scalars[72...]), Array(v[0..<72]))

        // Computed statistics of a known two-valued image: mean 0.5·(0+1), std 0.5.
        let bw = try ImageDataset(pixels: [0, 255, 0, 255], labels: [0], channels: 1, height: 2, width: 2, classCount: 1)
        let st = Normalization.computed(from: bw)
        XCTAssertEqual(st.mean[0], 0.5, accuracy: 1e-7)
        XCTAssertEqual(st.std[0], 0.5, accuracy: 1e-7)
    }

    func testCropAndFlipByHand() throws {
        // 1 channel, 2×3 image, pad 1, unit normalisation (value = pixel/255).
        let img: [UInt8] = [10, 20, 30,
                            40, 50, 60]
        let n = Normalization.unitRange
        let table = try n.table(channels: 1)
        func run(_ p: Augmentation.Params) -> [Float] {
            var out = [Float](repeating: -1, count: 6)
            img.withUnsafeBufferPointer { s in
                table.withUnsafeBufferPointer { t in
                    out.withUnsafeMutableBufferPointer { o in
                        BatchBuilder.render(s.baseAddress!, channels: 1, height: 2, width: 3, padding: 1,
                                            params: p, table: t.baseAddress!, into: o.baseAddress!)
                    }
                }
            }
            return out.map { ($0 * 255).rounded() }
        }
        // Centre, no flip: identity.
        XCTAssertEqual(run(.init(offsetY: 1, offsetX: 1, flip: false)), [10, 20, 30, 40, 50, 60])
        // Window at the padded top-left: image shifted down-right by one, zeros enter.
        XCTAssertEqual(run(.init(offsetY: 0, offsetX: 0, flip: false)), [0, 0, 0, 0, 10, 20])
        // Window at the bottom-right: shifted up-left.
        XCTAssertEqual(run(.init(offsetY: 2, offsetX: 2, flip: false)), [50, 60, 0, 0, 0, 0])
        // Flip only.
        XCTAssertEqual(run(.init(offsetY: 1, offsetX: 1, flip: true)), [30, 20, 10, 60, 50, 40])
        // Crop then flip: crop of offset (1, 0) is [0,10,20 / 0,40,50], mirrored.
        XCTAssertEqual(run(.init(offsetY: 1, offsetX: 0, flip: true)), [20, 10, 0, 50, 40, 0])
        XCTAssertEqual(run(.init(offsetY: 0, offsetX: 2, flip: true)), [0, 0, 0, 0, 30, 20])
    }

    func testCropFlipMatchesReferenceAndIsThreadIndependent() throws {
        let c = 3, h = 5, w = 7
        let d = try F.dataset(labels: Array(repeating: 0, count: 64), channels: c, height: h, width: w, classCount: 1, seed: 4)
        let aug = try Augmentation(padding: 2, horizontalFlip: true)
        let n = try Normalization(mean: [0.3, 0.5, 0.7], std: [0.2, 0.25, 0.3])
        let builder = try BatchBuilder(dataset: d, normalization: n, augmentation: aug)
        let indices = (0..<40).map { ($0 * 13) % 64 }
        let rng = SplitMix64(seed: 99)
        let size = c * h * w

        Engine.threads = 2
        let out = try Tensor(uninitializedShape: [40, c, h, w])
        try builder.fill(out, indices: indices, rng: rng, augment: true, firstSample: 5)
        var offsets = Set<[Int]>(), flips = Set<Bool>()
        for j in 0..<40 {
            var g = rng.fork(index: UInt64(5 + j))
            let p = aug.draw(&g)
            offsets.insert([p.offsetY, p.offsetX]); flips.insert(p.flip)
            let ref = reference(try d.image(at: indices[j]), c: c, h: h, w: w, pad: 2, p, n)
            XCTAssertEqual(Array(out.scalars[(j * size)..<((j + 1) * size)]), ref, "image \(j) params \(p)")
        }
        // The draws actually vary: many of the 25 offsets and both flip states occur.
        XCTAssertGreaterThan(offsets.count, 12)
        XCTAssertEqual(flips, [false, true])

        Engine.threads = 1
        let one = try Tensor(uninitializedShape: [40, c, h, w])
        try builder.fill(one, indices: indices, rng: rng, augment: true, firstSample: 5)
        XCTAssertEqual(one.scalars, out.scalars)
        Engine.threads = 7
        try builder.fill(one, indices: indices, rng: rng, augment: true, firstSample: 5)
        XCTAssertEqual(one.scalars, out.scalars)

        // Without augmentation: plain normalisation.
        try builder.fill(one, indices: indices, rng: rng, augment: false)
        XCTAssertEqual(one.scalars, try d.normalizedTensor(n, indices: indices).scalars)

        // Buffer too small, wrong shape, bad index.
        let small = try Tensor(uninitializedShape: [3, c, h, w])
        XCTAssertThrowsError(try builder.fill(small, indices: indices, rng: rng, augment: true))
        XCTAssertThrowsError(try builder.fill(try Tensor(uninitializedShape: [40, c, w, h]), indices: indices, rng: rng, augment: true))
        XCTAssertThrowsError(try builder.fill(out, indices: [64], rng: rng, augment: true))
        XCTAssertThrowsError(try Augmentation(padding: -1, horizontalFlip: false))
    }

    private func loader(_ d: ImageDataset, batch: Int = 8, seed: UInt64, dropLast: Bool = false,
                        training: Bool = true, reuse: Bool = true) throws -> DataLoader {
        try DataLoader(dataset: d, batchSize: batch, shuffle: true, dropLast: dropLast, seed: seed,
                       normalization: .cifar10, augmentation: .cifar, training: training, reuseBuffers: reuse)
    }

    /// All batches of an epoch as (images, labels, indices) copies.
    private func collect(_ l: DataLoader, epoch: Int) throws -> [([Float], [Int], [Int])] {
        var out = [([Float], [Int], [Int])]()
        try l.forEachBatch(epoch: epoch) { b in
            XCTAssertEqual(b.images.shape, [b.size, 3, 32, 32])
            out.append((b.images.scalars, b.labels, b.indices))
        }
        return out
    }

    func testLoaderIsDeterministicPerSeedAndDiffersAcrossSeeds() throws {
        let d = try F.dataset(labels: (0..<37).map { $0 % 10 }, height: 32, width: 32, classCount: 10, seed: 2)
        let a = try collect(try loader(d, seed: 42), epoch: 0)
        Engine.threads = 1
        let b = try collect(try loader(d, seed: 42), epoch: 0)
        Engine.threads = savedThreads
        XCTAssertEqual(a.count, 5)
        for (x, y) in zip(a, b) {
            XCTAssertEqual(x.0, y.0)  // bit-exact images
            XCTAssertEqual(x.1, y.1)
            XCTAssertEqual(x.2, y.2)
        }
        let c = try collect(try loader(d, seed: 43), epoch: 0)
        XCTAssertNotEqual(a.map { $0.2 }, c.map { $0.2 })
        XCTAssertNotEqual(a[0].0, c[0].0)
        let e1 = try collect(try loader(d, seed: 42), epoch: 1)
        XCTAssertNotEqual(a.map { $0.2 }, e1.map { $0.2 })

        // Random access equals sequential iteration, in any order.
        let l = try loader(d, seed: 42)
        for k in [3, 0, 4] {
            let bt = try l.batch(k, epoch: 0)
            XCTAssertEqual(bt.images.scalars, a[k].0)
            XCTAssertEqual(bt.labels, a[k].1)
            XCTAssertEqual(bt.indices, a[k].2)
        }
        // Filling caller-owned memory gives the same batch.
        var raw = [Float](repeating: .nan, count: 8 * 3072)
        var labs = [Int32](repeating: -1, count: 8)
        let last = try raw.withUnsafeMutableBufferPointer { r in
            try labs.withUnsafeMutableBufferPointer { lb in
                try l.fillBatch(4, epoch: 0, images: r.baseAddress!, capacity: r.count, labels: lb.baseAddress!, labelCapacity: lb.count)
            }
        }
        XCTAssertEqual(last, 5)
        XCTAssertEqual(Array(raw[0..<(5 * 3072)]), a[4].0)
        XCTAssertEqual(Array(labs[0..<5]).map { Int($0) }, a[4].1)
        XCTAssertThrowsError(try raw.withUnsafeMutableBufferPointer { r in
            try l.fillBatch(0, epoch: 0, images: r.baseAddress!, capacity: 7 * 3072, labels: nil)
        })
        XCTAssertThrowsError(try l.batch(5, epoch: 0))
        XCTAssertThrowsError(try l.batch(0, epoch: -1))

        // Labels match the dataset; each image is the augmented version of its dataset image.
        for (imgs, labels, idx) in a {
            XCTAssertEqual(labels, idx.map { Int(d.labels[$0]) })
            XCTAssertEqual(imgs.count, idx.count * 3072)
        }
        // Augmentation of a sample does not depend on the batch size.
        let big = try collect(try loader(d, batch: 37, seed: 42), epoch: 0)
        XCTAssertEqual(big.count, 1)
        XCTAssertEqual(big[0].2, a.flatMap { $0.2 })
        XCTAssertEqual(big[0].0, a.flatMap { $0.0 })
    }

    func testEverySampleOncePerEpochAndDropLast() throws {
        let d = try F.dataset(labels: (0..<37).map { $0 % 10 }, height: 32, width: 32, classCount: 10)
        let l = try loader(d, seed: 5)
        XCTAssertEqual(l.batchesPerEpoch, 5)
        for e in 0..<3 {
            let batches = try collect(l, epoch: e)
            XCTAssertEqual(batches.map { $0.2.count }, [8, 8, 8, 8, 5])
            XCTAssertEqual(batches.flatMap { $0.2 }.sorted(), Array(0..<37))
        }
        let ld = try loader(d, seed: 5, dropLast: true)
        XCTAssertEqual(ld.batchesPerEpoch, 4)
        let bd = try collect(ld, epoch: 0)
        XCTAssertEqual(bd.map { $0.2.count }, [8, 8, 8, 8])
        XCTAssertEqual(Set(bd.flatMap { $0.2 }).count, 32)
        // Without shuffling: dataset order.
        let seq = try DataLoader(dataset: d, batchSize: 10, shuffle: false, seed: 5, normalization: .cifar10)
        XCTAssertEqual(try seq.order(epoch: 3), Array(0..<37))
        XCTAssertThrowsError(try DataLoader(dataset: d, batchSize: 0, normalization: .cifar10))
        XCTAssertThrowsError(try DataLoader(dataset: try d.prefix(0), batchSize: 4, normalization: .cifar10))
        XCTAssertThrowsError(try DataLoader(dataset: d, batchSize: 4, normalization: try Normalization(mean: [0.1, 0.2], std: [1, 1])))
    }

    func testEvalModeOnlyNormalisesAndBufferReuse() throws {
        let d = try F.dataset(labels: (0..<20).map { $0 % 10 }, height: 32, width: 32, classCount: 10, seed: 8)
        let l = try loader(d, batch: 6, seed: 1, training: false)
        var it = try l.epoch(0)
        var pointers = Set<UnsafeMutablePointer<Float>>()
        var count = 0
        while let b = try it.next() {
            XCTAssertEqual(b.images.scalars, try d.normalizedTensor(.cifar10, indices: b.indices).scalars)
            pointers.insert(b.images.data)
            count += b.size
        }
        XCTAssertEqual(count, 20)
        XCTAssertEqual(pointers.count, 1, "reused buffer")

        // Training mode changes the images; fresh buffers when reuse is off.
        let t = try loader(d, batch: 6, seed: 1, training: true, reuse: false)
        let b0 = try t.batch(0, epoch: 0), b1 = try t.batch(1, epoch: 0)
        XCTAssertNotEqual(b0.images.data, b1.images.data)
        XCTAssertNotEqual(b0.images.scalars, try d.normalizedTensor(.cifar10, indices: b0.indices).scalars)
        // Switching the same loader to eval gives the plain images.
        t.training = false
        XCTAssertEqual(try t.batch(0, epoch: 0).images.scalars, try d.normalizedTensor(.cifar10, indices: b0.indices).scalars)
    }
}
