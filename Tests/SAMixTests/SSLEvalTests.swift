import XCTest
import SAMix
@testable import SAMixCore
@testable import SAMixOps
@testable import SAMixNN
@testable import SAMixData
@testable import SAMixMixing
@testable import SAMixTraining

/// kNN monitor, k-means, linear probe, backbone checkpoints and the SSL training loop.
final class SSLEvalTests: XCTestCase {
    /// `perClass` points around each of `centers` (rows) with Gaussian noise σ.
    private func blobs(_ centers: [[Float]], perClass: Int, sigma: Float, seed: UInt64) throws -> (Tensor, [Int]) {
        var rng = SplitMix64(seed: seed)
        var data = [Float](), labels = [Int]()
        for (c, center) in centers.enumerated() {
            for _ in 0..<perClass {
                data += center.map { $0 + sigma * Float(rng.normal()) }
                labels.append(c)
            }
        }
        return (try Tensor(data, shape: [labels.count, centers[0].count]), labels)
    }

    func testKNNMatchesLoopReferenceAndSeparatesClusters() throws {
        let centers: [[Float]] = [[1, 0, 0], [0, 1, 0], [0, 0, 1]]
        let (train, ytr) = try blobs(centers, perClass: 20, sigma: 0.1, seed: 1)
        let (test, yte) = try blobs(centers, perClass: 10, sigma: 0.1, seed: 2)
        let acc = try KNNClassifier.accuracy(trainFeatures: train, trainLabels: ytr, testFeatures: test, testLabels: yte,
                                             classes: 3, k: 5, temperature: 0.1)
        XCTAssertEqual(acc, 1.0)
        // Weighted vote reference on a noisy set with overlapping classes.
        let (a, ya) = try blobs(centers, perClass: 15, sigma: 0.8, seed: 3)
        let (b, _) = try blobs(centers, perClass: 8, sigma: 0.8, seed: 4)
        let k = 7, t: Float = 0.5
        let pred = try KNNClassifier.predict(trainFeatures: a, trainLabels: ya, testFeatures: b, classes: 3, k: k, temperature: t)
        func norm(_ t: Tensor, _ i: Int) -> [Double] {
            let d = t.shape[1]
            let r = (0..<d).map { Double(t.data[i * d + $0]) }
            let s = r.reduce(0) { $0 + $1 * $1 }.squareRoot()
            return r.map { $0 / s }
        }
        for i in 0..<b.shape[0] {
            let q = norm(b, i)
            let sims = (0..<a.shape[0]).map { j in zip(q, norm(a, j)).reduce(0) { $0 + $1.0 * $1.1 } }
            let top = sims.indices.sorted { sims[$0] > sims[$1] || (sims[$0] == sims[$1] && $0 < $1) }.prefix(k)
            var score = [Double](repeating: 0, count: 3)
            for j in top { score[ya[j]] += exp(sims[j] / Double(t)) }
            let best = score.indices.max { score[$0] < score[$1] || (score[$0] == score[$1] && $0 > $1) }!
            XCTAssertEqual(pred[i], best, "test row \(i)")
        }
    }

    func testWeightedVoteCanOverruleTheMajority() throws {
        // Query e0: one very close neighbour of class 1 against two distant ones of class 0.
        let train = try Tensor([1, 0.05, 0, 1, 0.1, 1.5, 0.3, 1, 0.2], shape: [3, 3])
        let test = try Tensor([1, 0, 0], shape: [1, 3])
        let p1 = try KNNClassifier.predict(trainFeatures: train, trainLabels: [1, 0, 0], testFeatures: test,
                                           classes: 2, k: 3, temperature: 0.05)
        XCTAssertEqual(p1, [1])
        // With a very high temperature the votes are nearly equal and the majority wins.
        let p2 = try KNNClassifier.predict(trainFeatures: train, trainLabels: [1, 0, 0], testFeatures: test,
                                           classes: 2, k: 3, temperature: 100)
        XCTAssertEqual(p2, [0])
    }

    /// A warm start keeps the numbering: started from a clustering's centroids (in any order), k-means
    /// returns that clustering with the order of the start, whatever its seed; bad starts are refused.
    func testKMeansWarmStartKeepsClusterNumbers() throws {
        let centers: [[Float]] = [[5, 0], [0, 5], [-5, -5], [5, 5]]
        let (x, _) = try blobs(centers, perClass: 25, sigma: 0.3, seed: 5)
        let a = try KMeans.fit(x, clusters: 4, iterations: 30, seed: 11)
        let order = [2, 0, 3, 1]   // start cluster j = cluster order[j] of a
        let start = try Tensor(order.flatMap { a.centroids[$0] }, shape: [4, 2])
        for seed: UInt64 in [1, 2] {
            let b = try KMeans.fit(x, clusters: 4, iterations: 30, seed: seed, initialCentroids: start)
            XCTAssertEqual(b.assignments, a.assignments.map { order.firstIndex(of: $0)! }, "seed \(seed)")
            XCTAssertEqual(b.inertia, a.inertia, accuracy: 1e-3 * a.inertia)
        }
        // Fresh seeds renumber the same partition (what the warm start prevents).
        let fresh = (1...6).map { try? KMeans.fit(x, clusters: 4, iterations: 30, seed: UInt64($0)).assignments }
        XCTAssertTrue(fresh.contains { $0 != a.assignments })
        XCTAssertThrowsError(try KMeans.fit(x, clusters: 4, seed: 1, initialCentroids: try Tensor(zeros: [3, 2])))
        XCTAssertThrowsError(try KMeans.fit(x, clusters: 4, seed: 1,
                                            initialCentroids: try Tensor([0, 0, 1, 1, .nan, 2, 3, 3], shape: [4, 2])))
    }

    func testKMeansIsDeterministicPerSeedAndFindsSeparatedClusters() throws {
        let centers: [[Float]] = [[5, 0], [0, 5], [-5, -5], [5, 5]]
        let (x, truth) = try blobs(centers, perClass: 25, sigma: 0.3, seed: 5)
        let a = try KMeans.fit(x, clusters: 4, iterations: 30, seed: 11)
        let b = try KMeans.fit(x, clusters: 4, iterations: 30, seed: 11)
        XCTAssertEqual(a.assignments, b.assignments)
        XCTAssertEqual(a.inertia, b.inertia)
        for seed: UInt64 in [11, 12, 13] {
            let r = try KMeans.fit(x, clusters: 4, iterations: 30, seed: seed)
            // Same partition as the truth, up to renaming.
            var map: [Int: Int] = [:]
            for (c, t) in zip(r.assignments, truth) {
                if let m = map[c] { XCTAssertEqual(m, t, "seed \(seed)") } else { map[c] = t }
            }
            XCTAssertEqual(Set(map.values).count, 4, "seed \(seed)")
        }
        // Thread count does not change the result.
        let saved = Engine.threads
        Engine.threads = 1
        let c = try KMeans.fit(x, clusters: 4, iterations: 30, seed: 11)
        Engine.threads = saved
        XCTAssertEqual(c.assignments, a.assignments)
        // Different seeds of random data give different (valid) clusterings; all clusters used.
        let noise = try TestData.uniform([60, 3], seed: 6)
        let r1 = try KMeans.fit(noise, clusters: 6, seed: 1), r2 = try KMeans.fit(noise, clusters: 6, seed: 2)
        XCTAssertEqual(Set(r1.assignments).count, 6)
        XCTAssertNotEqual(r1.assignments, r2.assignments)
        XCTAssertThrowsError(try KMeans.fit(noise, clusters: 61, seed: 1))
    }

    func testLinearProbeSeparatesALinearlySeparableSet() throws {
        // 4 classes in 8-d, well separated along different directions.
        var centers = [[Float]]()
        for c in 0..<4 { var v = [Float](repeating: 0, count: 8); v[2 * c] = 3; v[2 * c + 1] = -2; centers.append(v) }
        let (train, ytr) = try blobs(centers, perClass: 40, sigma: 0.5, seed: 7)
        let (test, yte) = try blobs(centers, perClass: 20, sigma: 0.5, seed: 8)
        for scaling in LinearProbe.FeatureScaling.allCases {
            let probe = try LinearProbe(epochs: 30, batchSize: 32, learningRate: scaling == .l2 ? 1.0 : 0.1, scaling: scaling, seed: 1)
            let r = try probe.fit(trainFeatures: train, trainLabels: ytr, testFeatures: test, testLabels: yte, classes: 4)
            XCTAssertGreaterThanOrEqual(r.trainAccuracy, 0.99, "\(scaling)")
            XCTAssertGreaterThanOrEqual(r.testAccuracy, 0.98, "\(scaling)")
            XCTAssertLessThan(r.epochLosses.last!, r.epochLosses.first!, "\(scaling)")
        }
        // Random labels on the same features cannot be learned to test accuracy.
        var rng = SplitMix64(seed: 9)
        let shuffled = ytr.map { _ in rng.int(below: 4) }
        let r = try LinearProbe(epochs: 30, batchSize: 32, learningRate: 1, seed: 1)
            .fit(trainFeatures: train, trainLabels: shuffled, testFeatures: test, testLabels: yte, classes: 4)
        XCTAssertLessThan(r.testAccuracy, 0.6)
    }

    func testBackboneCheckpointRoundTrip() throws {
        var rng = SplitMix64(seed: 3)
        let b = try ModelZoo.makeBackbone("resnet20", rng: &rng)
        let x = try TestData.uniform([2, 3, 8, 8], seed: 4)
        _ = try b.forwardStages(x)   // move the BN running statistics away from their init
        b.eval()
        let dir = try DataFixtures.tempDir("sslckpt")
        defer { DataFixtures.remove(dir) }
        let path = dir + "/bb.bin"
        try BackboneCheckpoint.save(b, architecture: "resnet20", inChannels: 3, metadata: [("method", "samix-i")], to: path)
        let loaded = try BackboneCheckpoint.load(from: path)
        XCTAssertEqual(loaded.architecture, "resnet20")
        XCTAssertEqual(loaded.metadata["method"], "samix-i")
        loaded.backbone.eval()
        let y1 = try GradMode.withDisabled { try b.forwardStages(x).last! }
        let y2 = try GradMode.withDisabled { try loaded.backbone.forwardStages(x).last! }
        XCTAssertEqual(y1.scalars, y2.scalars)
        try DataFixtures.write([1, 2, 3], to: path)
        XCTAssertThrowsError(try BackboneCheckpoint.load(from: path))
    }

    private func toyDataset(_ n: Int, size: Int = 8, seed: UInt64) throws -> ImageDataset {
        var rng = SplitMix64(seed: seed)
        var px = [UInt8](), labels = [Int32]()
        for i in 0..<n {
            let c = i % 2
            for ch in 0..<3 {
                for _ in 0..<(size * size) {
                    let base = c == 0 ? (ch == 0 ? 200 : 40) : (ch == 2 ? 200 : 40)
                    px.append(UInt8(max(0, min(255, base + rng.int(below: 40) - 20))))
                }
            }
            labels.append(Int32(c))
        }
        return try ImageDataset(pixels: px, labels: labels, channels: 3, height: size, width: size, classCount: 2, name: "toy")
    }

    /// Every method trains end to end on a toy set; the same seed gives the same losses.
    func testTrainerRunsEveryMethodDeterministically() throws {
        let data = try toyDataset(12, seed: 1)
        let norm = Normalization.computed(from: data)
        let methods: [SSLMix] = [.none, .mixup(alpha: 2),
                                 .samix(try SAMixSSLConfig(variant: .instance, maskLayer: 1, clusters: 2)),
                                 .samix(try SAMixSSLConfig(variant: .cluster, maskLayer: 1, clusters: 3, kmeansIterations: 5)),
                                 .samix(try SAMixSSLConfig(variant: .cluster, maskLayer: 1, clusters: 3, kmeansIterations: 5,
                                                           kmeansWarmStart: true))]
        for mix in methods {
            func run() throws -> [Double] {
                let cfg = try MoCoConfig(architecture: "resnet20", neckHidden: 16, embeddingDim: 8, queueSize: 8, seed: 2)
                let model = try MoCo(config: cfg, mix: mix)
                let trainer = try SSLTrainer(model: model, config: try SSLTrainingConfig(epochs: 2, batchSize: 4, knnEvery: 1, knnK: 3, seed: 5),
                                             augmentation: try .mocoV2(height: 8, width: 8), normalization: norm)
                var out = [Double]()
                try trainer.fit(train: data, test: data) { r in
                    XCTAssertEqual(r.steps, 3)
                    XCTAssertNotNil(r.knnTop1)
                    if case .samix(let s) = mix, s.variant == .cluster {
                        XCTAssertNotNil(r.clusterInertia)
                        XCTAssertEqual(r.pseudoLabelsKept == nil, r.epoch == 1)   // no previous labels in epoch 1
                        if let k = r.pseudoLabelsKept { XCTAssertTrue((0...1).contains(k)) }
                    }
                    out.append(r.loss)
                    out += r.metrics.map { $0.1 }
                    return true
                }
                if case .samix(let s) = mix, s.variant == .cluster {
                    XCTAssertEqual(model.pseudoLabels?.count, 12)
                    XCTAssertEqual(trainer.clusterCentroids?.shape, s.kmeansWarmStart ? [3, 64] : nil)
                }
                return out
            }
            let a = try run(), b = try run()
            XCTAssertTrue(a.allSatisfy { $0.isFinite }, "\(mix.name)")
            XCTAssertEqual(a, b, "\(mix.name) is not deterministic")
        }
    }

    /// Stopping after one epoch, saving, loading into a fresh trainer and finishing gives exactly the
    /// uninterrupted run (weights, queue, optimizer state), for every method; a checkpoint from a
    /// differently seeded model is refused without touching the trainer.
    func testCheckpointResumeIsBitIdentical() throws {
        let data = try toyDataset(8, seed: 4)
        let norm = Normalization.computed(from: data)
        let methods: [SSLMix] = [.none, .mixup(alpha: 2),
                                 .samix(try SAMixSSLConfig(variant: .instance, maskLayer: 1, clusters: 2)),
                                 .samix(try SAMixSSLConfig(variant: .cluster, maskLayer: 1, clusters: 3, kmeansIterations: 5)),
                                 .samix(try SAMixSSLConfig(variant: .cluster, maskLayer: 1, clusters: 3, kmeansIterations: 5,
                                                           kmeansWarmStart: true))]
        let dir = try DataFixtures.tempDir("sslresume")
        defer { DataFixtures.remove(dir) }
        let path = dir + "/ssl.safetensors"
        for mix in methods {
            func make() throws -> SSLTrainer {
                let cfg = try MoCoConfig(architecture: "resnet20", neckHidden: 16, embeddingDim: 8, queueSize: 8, seed: 2)
                return try SSLTrainer(model: try MoCo(config: cfg, mix: mix),
                                      config: try SSLTrainingConfig(epochs: 2, batchSize: 4, knnEvery: 0, seed: 5),
                                      augmentation: try .mocoV2(height: 8, width: 8), normalization: norm)
            }
            func state(_ t: SSLTrainer) throws -> [(String, [Float])] {
                var v: [(String, [Float])] = []
                for (p, m) in SSLCheckpoint.modules(t.model) { for (n, x) in m.stateDict() { v.append((p + n, x.scalars)) } }
                for (n, x) in try t.optimizer.stateDict() { v.append(("optimizer." + n, x.scalars)) }
                return v + [("queue", t.model.queue.keys.scalars), ("counters", [Float(t.model.queue.pointer), Float(t.step)]),
                            ("centroids", t.clusterCentroids?.scalars ?? [])]
            }
            func assertSame(_ a: [(String, [Float])], _ b: [(String, [Float])], _ what: String) {
                XCTAssertEqual(a.map { $0.0 }, b.map { $0.0 }, what)
                let differing = zip(a, b).filter { $0.0.1 != $0.1.1 }.map { $0.0.0 }
                XCTAssertTrue(differing.isEmpty, "\(what): \(differing.count) tensors differ, first \(differing.prefix(3))")
            }
            let full = try make()
            try full.fit(train: data)
            let first = try make()
            try first.fit(train: data) { _ in false }
            XCTAssertEqual(first.epochsDone, 1)
            try SSLCheckpoint.save(first, to: path)
            let resumed = try make()
            try SSLCheckpoint.load(into: resumed, from: path)
            XCTAssertEqual(resumed.epochsDone, 1)
            try resumed.fit(train: data)
            assertSame(try state(resumed), try state(full), "\(mix.name) resume")
            // A checkpoint of another method is refused and changes nothing.
            let other = try SSLTrainer(model: try MoCo(config: try MoCoConfig(architecture: "resnet20", neckHidden: 16, embeddingDim: 8,
                                                                               queueSize: 8, seed: 3), mix: mix),
                                       config: try SSLTrainingConfig(epochs: 2, batchSize: 4, seed: 5),
                                       augmentation: try .mocoV2(height: 8, width: 8), normalization: norm)
            let before = try state(other)
            XCTAssertThrowsError(try SSLCheckpoint.load(into: other, from: path))
            assertSame(try state(other), before, "\(mix.name) refused load")
            // The same method with another learning rate (or epochs, ...) is another run: refused, naming it.
            let changedLR = try SSLTrainer(
                model: try MoCo(config: try MoCoConfig(architecture: "resnet20", neckHidden: 16, embeddingDim: 8, queueSize: 8, seed: 2),
                                mix: mix),
                config: try SSLTrainingConfig(epochs: 2, batchSize: 4, learningRate: 0.03, knnEvery: 0, seed: 5),
                augmentation: try .mocoV2(height: 8, width: 8), normalization: norm)
            XCTAssertThrowsError(try SSLCheckpoint.load(into: changedLR, from: path)) { e in
                XCTAssertTrue("\(e)".contains("lr = 0.06, this trainer has 0.03"), "\(e)")
            }
        }
    }

    func testLinearProbeOnABackboneEndToEnd() throws {
        let data = try toyDataset(16, seed: 3)
        var rng = SplitMix64(seed: 1)
        let b = try ModelZoo.makeBackbone("resnet20", rng: &rng)
        let r = try SSLEvaluation.linearProbe(backbone: b, train: data, test: data, normalization: .computed(from: data),
                                              probe: try LinearProbe(epochs: 20, batchSize: 8, learningRate: 0.1, scaling: .standardize, seed: 0))
        // The two colour classes are separable even from random features.
        XCTAssertEqual(r.trainAccuracy, 1.0)
    }
}
