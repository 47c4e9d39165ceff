import Glibc
import SAMixCore
import SAMixOps
import SAMixNN
import SAMixData
import SAMixMixing

/// Frozen-backbone features for SSL evaluation: global-average-pooled last-stage maps, computed in
/// evaluation mode (BN running statistics) without a graph.
public enum SSLFeatures {
    /// Features [n, C] of `dataset` (un-augmented, normalised), in dataset order. The backbone's
    /// train/eval mode is restored afterwards. Over a group of several processes (identical
    /// backbones), each rank extracts a contiguous share of the images and the shares are
    /// all-gathered, so every rank returns the same whole feature bank.
    public static func extract(_ backbone: Backbone, dataset: ImageDataset, normalization: Normalization,
                               batchSize: Int = 256, l2Normalize: Bool = false,
                               group: ProcessGroup = .single) throws -> Tensor {
        try require(batchSize >= 1, "batch size must be ≥ 1")
        let wasTraining = backbone.isTraining
        backbone.eval()
        defer { backbone.train(wasTraining) }
        let all = dataset.count, c = backbone.featureChannels
        let first = all * group.rank / group.size, end = all * (group.rank + 1) / group.size
        let out = try Tensor(uninitializedShape: [end - first, c])
        try GradMode.withDisabled {
            var start = first
            while start < end {
                try Interruption.checkpoint("the feature extraction")
                let idx = Array(start..<Swift.min(end, start + batchSize))
                let x = try dataset.normalizedTensor(normalization, indices: idx)
                guard let last = try backbone.forwardStages(x).last else {
                    throw SAMixError.invalidState("backbone produced no stages")
                }
                let f = try last.globalAvgPool2d()
                (out.data + (start - first) * c).update(from: f.data, count: f.count)
                start += idx.count
            }
        }
        let bank = try group.allgatherRows(out)
        return l2Normalize ? try GradMode.withDisabled { try bank.l2NormalizedRows() } : bank
    }
}

/// The weighted kNN classifier of the common SSL kNN monitor (InstDisc / MoCo CIFAR demo):
/// cosine similarities of L2-normalised features, the k most similar training samples vote for
/// their class with weight exp(s / τ); k = 200, τ = 0.1.
public enum KNNClassifier {
    /// Top-1 accuracy in [0, 1]. Both feature sets are L2-normalised here (rows [n, d]).
    public static func accuracy(trainFeatures: Tensor, trainLabels: [Int], testFeatures: Tensor, testLabels: [Int],
                                classes: Int, k: Int = 200, temperature: Float = 0.1) throws -> Double {
        let pred = try predict(trainFeatures: trainFeatures, trainLabels: trainLabels, testFeatures: testFeatures,
                               classes: classes, k: k, temperature: temperature)
        try require(pred.count == testLabels.count, "kNN: \(testLabels.count) labels for \(pred.count) test samples")
        guard !pred.isEmpty else { return .nan }
        return Double(zip(pred, testLabels).filter { $0 == $1 }.count) / Double(pred.count)
    }

    /// Predicted class of every test row (ties → the lowest class index).
    public static func predict(trainFeatures: Tensor, trainLabels: [Int], testFeatures: Tensor,
                               classes: Int, k: Int = 200, temperature: Float = 0.1) throws -> [Int] {
        try requireShape(trainFeatures.rank == 2 && testFeatures.rank == 2 && trainFeatures.shape[1] == testFeatures.shape[1],
                         "kNN: features \(trainFeatures.shape) and \(testFeatures.shape)")
        let nTrain = trainFeatures.shape[0], nTest = testFeatures.shape[0]
        try require(trainLabels.count == nTrain && trainLabels.allSatisfy { $0 >= 0 && $0 < classes },
                    "kNN: need \(nTrain) training labels in 0..<\(classes)")
        try require(k >= 1 && temperature > 0, "kNN needs k ≥ 1 and τ > 0")
        let kk = Swift.min(k, nTrain)
        let (tr, te) = try GradMode.withDisabled { (try trainFeatures.l2NormalizedRows(), try testFeatures.l2NormalizedRows()) }
        var pred = [Int](repeating: 0, count: nTest)
        let chunk = 256
        var start = 0
        while start < nTest {
            try Interruption.checkpoint("the kNN evaluation")
            let len = Swift.min(chunk, nTest - start)
            let sims = try GradMode.withDisabled {
                try Tensor.matmul(te.narrow(axis: 0, start: start, length: len), tr, transposeB: true)
            }
            pred.withUnsafeMutableBufferPointer { pb in
                let pp = pb.baseAddress!
                parallelFor(len) { r in
                    let row = sims.data + r * nTrain
                    // Partial selection of the k largest similarities (ties: lower index first).
                    var idx = Array(0..<nTrain)
                    idx.withUnsafeMutableBufferPointer { ib in
                        Self.selectTop(ib, count: kk) { a, b in row[a] > row[b] || (row[a] == row[b] && a < b) }
                    }
                    var score = [Double](repeating: 0, count: classes)
                    for j in 0..<kk { score[trainLabels[idx[j]]] += exp(Double(row[idx[j]]) / Double(temperature)) }
                    var best = 0
                    for c in 1..<Swift.max(classes, 1) where score[c] > score[best] { best = c }
                    pp[start + r] = best
                }
            }
            start += len
        }
        return pred
    }

    /// Moves the `count` best elements (by `better`) to the front (quickselect, then unordered).
    static func selectTop(_ a: UnsafeMutableBufferPointer<Int>, count k: Int, by better: (Int, Int) -> Bool) {
        var lo = 0, hi = a.count - 1
        guard k < a.count else { return }
        while lo < hi {
            // Median-of-three pivot, Lomuto partition: elements better than the pivot go left.
            let mid = (lo + hi) / 2
            if better(a[mid], a[lo]) { a.swapAt(mid, lo) }
            if better(a[hi], a[lo]) { a.swapAt(hi, lo) }
            if better(a[hi], a[mid]) { a.swapAt(hi, mid) }
            a.swapAt(mid, hi)
            let pivot = a[hi]
            var store = lo
            for i in lo..<hi where better(a[i], pivot) { a.swapAt(i, store); store += 1 }
            a.swapAt(store, hi)
            if store == k || store == k - 1 { return }
            if store < k { lo = store + 1 } else { hi = store - 1 }
        }
    }
}

/// Deterministic k-means (Lloyd's algorithm with k-means++ seeding) on feature rows, for SAMix-C
/// pseudo-labels (the reference's `DeepClusterAutoMixHook` runs k-means on extracted features
/// every epoch). Same inputs and seed → same assignments, for any thread count: the only
/// randomness is the seeding generator, each row's distances are computed by one thread with a
/// fixed summation order (`‖c‖² − 2⟨x, c⟩` with SIMD dot products), centroid sums run in row order
/// in Double, and ties go to the lower centroid index. An empty cluster is re-seeded with the
/// point farthest from its centroid. Cost per iteration ≈ n·k·d multiply-adds (CIFAR-10, 512-d,
/// k = 100: ~2.6 GFLOP).
public enum KMeans {
    public struct Result {
        /// Cluster of every row.
        public let assignments: [Int]
        /// Centroids [k, d].
        public let centroids: [[Float]]
        /// Σ squared distance of each row to its centroid.
        public let inertia: Double
        public let iterations: Int
    }

    /// Lloyd's algorithm from k-means++ seeds drawn with `seed`, or from `initialCentroids` ([k, d],
    /// a warm start: cluster c of the result continues cluster c of the start, so the numbering of
    /// clusters carries over between successive fits on slowly changing features).
    public static func fit(_ features: Tensor, clusters k: Int, iterations: Int = 20, seed: UInt64,
                           initialCentroids: Tensor? = nil) throws -> Result {
        try requireShape(features.rank == 2, "k-means expects [n, d] features, got \(features.shape)")
        let n = features.shape[0], d = features.shape[1]
        try require(k >= 1 && k <= n, "k-means needs 1 ≤ k ≤ n (k = \(k), n = \(n))")
        try require(iterations >= 1, "k-means needs ≥ 1 iteration")
        if let c = initialCentroids {
            try requireShape(c.shape == [k, d], "k-means initial centroids must be [\(k), \(d)], got \(c.shape)")
            try require((0..<c.count).allSatisfy { c.data[$0].isFinite }, "k-means initial centroids must be finite")
        }
        let x = UnsafePointer(features.data)
        var rng = SplitMix64(seed: seed)
        var rowNorm = [Float](repeating: 0, count: n)
        rowNorm.withUnsafeMutableBufferPointer { rb in
            let rp = rb.baseAddress!
            parallelFor(n, minChunk: 256) { i in rp[i] = dotFloats(x + i * d, x + i * d, d) }
        }
        let cen = UnsafeMutablePointer<Float>.allocate(capacity: k * d)
        defer { cen.deallocate() }
        var cenNorm = [Float](repeating: 0, count: k)
        func setCentroid(_ c: Int, fromRow i: Int) {
            (cen + c * d).update(from: x + i * d, count: d)
            cenNorm[c] = rowNorm[i]
        }
        // Seeds: the warm start's centroids, or k-means++ (D² sampling, distances maintained per row
        // in parallel) — centroid 0 uniformly, centroids 1..<k by the loop below.
        var plusPlusSeeds = k
        if let c0 = initialCentroids {
            cen.update(from: c0.data, count: k * d)
            for c in 0..<k { cenNorm[c] = dotFloats(cen + c * d, cen + c * d, d) }
            plusPlusSeeds = 1   // nothing left to draw
        } else {
            setCentroid(0, fromRow: rng.int(below: n))
        }
        var nearest = [Float](repeating: .infinity, count: n)
        for c in 1..<plusPlusSeeds {
            let prev = UnsafePointer(cen + (c - 1) * d), pn = cenNorm[c - 1]
            nearest.withUnsafeMutableBufferPointer { nb in
                let np = nb.baseAddress!
                rowNorm.withUnsafeBufferPointer { rb in
                    let rp = rb.baseAddress!
                    parallelFor(n, minChunk: 64) { i in
                        let dd = Swift.max(rp[i] + pn - 2 * dotFloats(x + i * d, prev, d), 0)
                        if dd < np[i] { np[i] = dd }
                    }
                }
            }
            var total = 0.0
            for v in nearest { total += Double(v) }
            var pick = n - 1
            if total > 0 {
                var u = rng.uniformDouble() * total
                for i in 0..<n { u -= Double(nearest[i]); if u < 0 { pick = i; break } }
            } else {
                pick = rng.int(below: n)
            }
            setCentroid(c, fromRow: pick)
        }
        var assign = [Int](repeating: 0, count: n)
        var best = [Float](repeating: 0, count: n)
        /// Nearest centroid of every row; returns whether any assignment changed.
        func assignAll() -> Bool {
            var changed = [Bool](repeating: false, count: n)
            let cn = cenNorm
            assign.withUnsafeMutableBufferPointer { ab in
                best.withUnsafeMutableBufferPointer { bb in
                    changed.withUnsafeMutableBufferPointer { chb in
                        let ap = ab.baseAddress!, bp = bb.baseAddress!, chp = chb.baseAddress!
                        rowNorm.withUnsafeBufferPointer { rb in
                            let rp = rb.baseAddress!
                            parallelFor(n, minChunk: 64) { i in
                                let xi = x + i * d
                                var bi = 0, bd = Float.infinity
                                for c in 0..<k {
                                    let dd = cn[c] - 2 * dotFloats(xi, cen + c * d, d)
                                    if dd < bd { bd = dd; bi = c }
                                }
                                chp[i] = ap[i] != bi
                                ap[i] = bi
                                bp[i] = Swift.max(bd + rp[i], 0)
                            }
                        }
                    }
                }
            }
            return changed.contains(true)
        }
        _ = assignAll()
        var iters = 0
        for _ in 0..<iterations {
            iters += 1
            // Update: centroid = mean of its rows (sequential Double sums in row order).
            var sums = [Double](repeating: 0, count: k * d)
            var counts = [Int](repeating: 0, count: k)
            for i in 0..<n {
                let c = assign[i]
                counts[c] += 1
                let xi = x + i * d
                sums.withUnsafeMutableBufferPointer { sb in
                    let sp = sb.baseAddress! + c * d
                    for j in 0..<d { sp[j] += Double(xi[j]) }
                }
            }
            var taken = Set<Int>()
            for c in 0..<k {
                if counts[c] > 0 {
                    let inv = 1 / Double(counts[c])
                    for j in 0..<d { cen[c * d + j] = Float(sums[c * d + j] * inv) }
                    cenNorm[c] = dotFloats(cen + c * d, cen + c * d, d)
                } else {
                    // Re-seed with the worst-fitted point not used yet.
                    var far = -1
                    for i in 0..<n where !taken.contains(i) && (far < 0 || best[i] > best[far]) { far = i }
                    taken.insert(far)
                    setCentroid(c, fromRow: far)
                }
            }
            if !assignAll() && taken.isEmpty { break }   // converged: no assignment moved
        }
        var inertia = 0.0
        for v in best { inertia += Double(v) }
        let cs = (0..<k).map { Array(UnsafeBufferPointer(start: cen + $0 * d, count: d)) }
        return Result(assignments: assign, centroids: cs, inertia: inertia, iterations: iters)
    }
}

/// The linear probe (docs/method.md §5.7): frozen backbone, GAP features (precomputed once), one Linear layer
/// trained with SGD (momentum 0.9, weight decay 0 by default, cosine learning rate to 0), batch
/// cross-entropy. OpenMixup uses 100 epochs, lr 1.0 for CIFAR R-18 at batch 256 on raw GAP features.
///
/// Default here: L2-normalised features and lr 10. Unit-norm features make the step size independent
/// of the backbone's feature scale (raw ResNet GAP features have norms of several units, so lr 1 on
/// raw features is roughly lr 10–30 on normalised ones). Measured on a ResNet-20 MoCo backbone
/// (2 epochs, 2,000 CIFAR-10 images): l2/lr 1 underfits (train 29.8 %, test 28.3 %), l2/lr 10 gives
/// train 36.8 % / test 31.8 %, standardize/lr 0.1 39.3 % / 30.9 %.
public struct LinearProbe: Equatable, Sendable {
    /// Fixed per-feature preprocessing (folds into the linear layer, so the probe stays linear).
    public enum FeatureScaling: String, Equatable, Sendable, CaseIterable {
        case none
        /// Unit L2 norm per sample.
        case l2
        /// Per-dimension mean 0 / std 1 from the training features (BN without affine, frozen).
        case standardize
    }

    public var epochs: Int
    public var batchSize: Int
    public var learningRate: Float
    public var momentum: Float
    public var weightDecay: Float
    public var scaling: FeatureScaling
    public var seed: UInt64

    public init(epochs: Int = 100, batchSize: Int = 256, learningRate: Float = 10, momentum: Float = 0.9,
                weightDecay: Float = 0, scaling: FeatureScaling = .l2, seed: UInt64 = 0) throws {
        try require(epochs >= 1 && batchSize >= 1, "probe needs ≥ 1 epoch and batch size ≥ 1")
        try require(learningRate > 0 && learningRate.isFinite, "probe learning rate must be > 0")
        self.epochs = epochs; self.batchSize = batchSize; self.learningRate = learningRate
        self.momentum = momentum; self.weightDecay = weightDecay; self.scaling = scaling; self.seed = seed
    }

    public struct Result {
        public let trainAccuracy: Double
        public let testAccuracy: Double
        /// Mean training loss of each epoch.
        public let epochLosses: [Double]
        public let classifier: Linear
    }

    /// Trains on `trainFeatures` [n, d] and evaluates on `testFeatures`.
    public func fit(trainFeatures: Tensor, trainLabels: [Int], testFeatures: Tensor, testLabels: [Int],
                    classes: Int) throws -> Result {
        try requireShape(trainFeatures.rank == 2 && testFeatures.rank == 2 && trainFeatures.shape[1] == testFeatures.shape[1],
                         "probe: features \(trainFeatures.shape) and \(testFeatures.shape)")
        let n = trainFeatures.shape[0], d = trainFeatures.shape[1]
        try require(trainLabels.count == n && testLabels.count == testFeatures.shape[0], "probe: label counts")
        try require((trainLabels + testLabels).allSatisfy { $0 >= 0 && $0 < classes }, "probe: labels outside 0..<\(classes)")
        let (tr, te) = try scaled(trainFeatures, testFeatures)
        var rng = SplitMix64(seed: seed)
        let fc = try Linear(d, classes, rng: &rng)
        fc.weight.fill(0)
        fc.bias?.fill(0)
        let opt = try SGD(fc.namedParameters(), lr: learningRate, momentum: momentum, weightDecay: weightDecay)
        let schedule = try LearningRateSchedule(.cosine(minLR: 0), baseLR: learningRate)
        let steps = (n + batchSize - 1) / batchSize, total = steps * epochs
        var losses: [Double] = []
        var t = 0
        for e in 0..<epochs {
            var order = Array(0..<n)
            var erng = rng.fork(index: UInt64(e))
            order.shuffle(using: &erng)
            var sum = 0.0
            for s in 0..<steps {
                try Interruption.checkpoint("the linear probe")
                let idx = Array(order[(s * batchSize)..<Swift.min(n, (s + 1) * batchSize)])
                opt.learningRate = schedule.value(step: t, total: total)
                let loss = try fc(tr.gatherRows(idx)).crossEntropy(labels: idx.map { trainLabels[$0] })
                try loss.backward()
                try opt.step()
                opt.zeroGrad()
                sum += Double(loss.data[0]) * Double(idx.count)
                t += 1
            }
            losses.append(sum / Double(n))
        }
        let acc = { (x: Tensor, y: [Int]) throws -> Double in
            guard !y.isEmpty else { return .nan }
            let logits = try GradMode.withDisabled { try fc(x) }
            let k = classes
            var correct = 0
            for i in 0..<y.count {
                let row = logits.data + i * k
                var b = 0
                for c in 1..<k where row[c] > row[b] { b = c }
                if b == y[i] { correct += 1 }
            }
            return Double(correct) / Double(y.count)
        }
        return Result(trainAccuracy: try acc(tr, trainLabels), testAccuracy: try acc(te, testLabels),
                      epochLosses: losses, classifier: fc)
    }

    func scaled(_ train: Tensor, _ test: Tensor) throws -> (Tensor, Tensor) {
        switch scaling {
        case .none: return (train.detached(), test.detached())
        case .l2: return try GradMode.withDisabled { (try train.l2NormalizedRows(), try test.l2NormalizedRows()) }
        case .standardize:
            let n = train.shape[0], d = train.shape[1]
            var mean = [Double](repeating: 0, count: d), sq = [Double](repeating: 0, count: d)
            for i in 0..<n { for j in 0..<d { let v = Double(train.data[i * d + j]); mean[j] += v; sq[j] += v * v } }
            let m = mean.map { $0 / Double(Swift.max(n, 1)) }
            let inv = (0..<d).map { j -> Float in
                let v = sq[j] / Double(Swift.max(n, 1)) - m[j] * m[j]
                return Float(1 / (Swift.max(v, 0).squareRoot() + 1e-5))
            }
            let apply = { (x: Tensor) throws -> Tensor in
                let y = try x.copy()
                y.requiresGrad = false
                for i in 0..<x.shape[0] { for j in 0..<d { y.data[i * d + j] = (y.data[i * d + j] - Float(m[j])) * inv[j] } }
                return y
            }
            return (try apply(train), try apply(test))
        }
    }
}

/// A saved SSL backbone. File format (little-endian): magic `SAMIXBB1`; UInt32 metadata length and
/// UTF-8 `key=value` lines (`architecture`, `in_channels`, free-form extras); UInt32 tensor count;
/// per tensor UInt32 name length, UTF-8 name, UInt32 rank, Int64 dimensions, float32 data.
public enum BackboneCheckpoint {
    static let magic: [UInt8] = Array("SAMIXBB1".utf8)

    public static func save(_ backbone: Backbone, architecture: String, inChannels: Int,
                            metadata extra: [(String, String)] = [], to path: String) throws {
        var bytes = magic
        func u32(_ v: Int) { var x = UInt32(v).littleEndian; withUnsafeBytes(of: &x) { bytes += $0 } }
        func i64(_ v: Int) { var x = Int64(v).littleEndian; withUnsafeBytes(of: &x) { bytes += $0 } }
        let meta = ([("architecture", architecture), ("in_channels", "\(inChannels)")] + extra)
            .map { "\($0.0)=\($0.1.replacingNewlines())" }.joined(separator: "\n")
        let mb = Array(meta.utf8)
        u32(mb.count); bytes += mb
        let state = backbone.stateDict()
        u32(state.count)
        for (name, t) in state {
            let nb = Array(name.utf8)
            u32(nb.count); bytes += nb
            u32(t.rank)
            for s in t.shape { i64(s) }
            let raw = UnsafeRawBufferPointer(start: t.data, count: t.count * 4)
            bytes += raw
        }
        guard let f = fopen(path, "wb") else { throw SAMixError.io("cannot open \(path) for writing") }
        defer { fclose(f) }
        let written = bytes.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, f) }
        guard written == bytes.count else { throw SAMixError.io("short write to \(path)") }
    }

    /// The backbone and the metadata of a saved file.
    public static func load(from path: String) throws -> (backbone: Backbone, architecture: String, inChannels: Int,
                                                          metadata: [String: String]) {
        guard let f = fopen(path, "rb") else { throw SAMixError.io("cannot open \(path)") }
        defer { fclose(f) }
        var bytes: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let r = buf.withUnsafeMutableBytes { fread($0.baseAddress, 1, $0.count, f) }
            if r <= 0 { break }
            bytes += buf[0..<r]
        }
        var pos = 0
        func take(_ k: Int) throws -> ArraySlice<UInt8> {
            guard k >= 0, pos + k <= bytes.count else { throw SAMixError.io("\(path): truncated backbone checkpoint") }
            defer { pos += k }
            return bytes[pos..<(pos + k)]
        }
        func u32() throws -> Int { Int(try take(4).enumerated().reduce(UInt32(0)) { $0 | UInt32($1.element) << (8 * UInt32($1.offset)) }) }
        func i64() throws -> Int { Int(Int64(bitPattern: try take(8).enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) })) }
        guard Array(try take(8)) == magic else { throw SAMixError.io("\(path) is not a samix backbone checkpoint") }
        let meta = String(decoding: try take(u32()), as: UTF8.self)
        var md: [String: String] = [:]
        for line in meta.split(separator: "\n") {
            if let eq = line.firstIndex(of: "=") { md[String(line[..<eq])] = String(line[line.index(after: eq)...]) }
        }
        guard let arch = md["architecture"], let cin = md["in_channels"].flatMap({ Int($0) }) else {
            throw SAMixError.io("\(path): checkpoint metadata lacks architecture / in_channels")
        }
        let count = try u32()
        var state: [String: Tensor] = [:]
        for _ in 0..<count {
            let name = String(decoding: try take(u32()), as: UTF8.self)
            let rank = try u32()
            try require(rank <= 8, "\(path): tensor \(name) has rank \(rank)")
            var shape: [Int] = []
            for _ in 0..<rank { shape.append(try i64()) }
            try require(shape.allSatisfy { $0 >= 0 && $0 < (1 << 31) }, "\(path): tensor \(name) has shape \(shape)")
            let elems = shape.reduce(1, *)
            let raw = try take(elems * 4)
            let t = try Tensor(zeros: shape)
            raw.withUnsafeBytes { src in UnsafeMutableRawPointer(t.data).copyMemory(from: src.baseAddress!, byteCount: elems * 4) }
            state[name] = t
        }
        var rng = SplitMix64(seed: 0)
        let b = try ModelZoo.makeBackbone(arch, inChannels: cin, rng: &rng)
        try b.loadStateDict(state)
        return (b, arch, cin, md)
    }
}

extension String {
    fileprivate func replacingNewlines() -> String { String(map { $0 == "\n" ? " " : $0 }) }
}
