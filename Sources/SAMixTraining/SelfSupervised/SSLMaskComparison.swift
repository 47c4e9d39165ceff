import Glibc
import SAMixCore
import SAMixOps
import SAMixNN
import SAMixData
import SAMixMixing

/// Does a trained SSL Mixer make better mixed samples than hand-crafted masks *for its own
/// objective*? For the same images, views, pairs (i, π(i)) and λ, each mask kind mixes the views
/// (`SSLMixing.crossViewMix`) and the trained momentum encoder scores the mixed batch with the
/// Mixer objective L_mb (`MoCo.mixerObjective`):
///
/// - `mixer`: the Mixer's masks for these pairs (what SAMix trains on);
/// - `mixer-shuffled`: the same masks given to other pairs (mask of pair i+1 on pair i) — the same
///   shapes and means, but not aligned with the content of the pair;
/// - `mixup`: the constant mask 1 − λ;
/// - `cutmix`: one box of side ⌊H·√(1−λ)⌋ × ⌊W·√(1−λ)⌋ per sample, uniformly placed inside the image.
///
/// SAMix-I rows also report the local term's excess over its minimum (the entropy H(λ) of the
/// target (λ, 1 − λ)) and how often the mixed embedding is closer to the positive of the source
/// with the larger weight. A Mixer that learned content-aware mixing scores lower L_mb than
/// `mixer-shuffled`; below `mixup`/`cutmix` it also beats the hand-crafted baselines.
///
/// Running it changes no weight, BN statistic, queue entry or pseudo-label of the model.
public enum SSLMaskComparison {
    public static let maskKinds = ["mixer", "mixer-shuffled", "mixup", "cutmix"]

    public struct Row: Equatable, Sendable {
        public let mask: String
        /// Mean L_mb over the batches.
        public var loss: Double = 0
        /// SAMix-I with the η-balanced objective: mean local term, its excess over H(λ), the global
        /// term, and the share of mixed samples whose embedding is closer to the dominant source's
        /// positive (samples with λ ≠ 0.5); nil otherwise.
        public var local: Double?
        public var localExcess: Double?
        public var global: Double?
        public var dominantCorrect: Double?
        /// Mean own-image share 1 − mean(M₁) (λ would be exact) and mean per-sample spatial std of M₁.
        public var ownShare: Double = 0
        public var spatialStd: Double = 0
    }

    /// Scores every mask kind on `batches` batches of `batchSize` images of `dataset` (two views
    /// each, drawn with `augmentation`), λ ~ Beta(α, α) of the model's SAMix config per batch.
    /// Deterministic in `seed`.
    public static func run(model: MoCo, dataset: ImageDataset, augmentation: SSLAugmentation,
                           normalization: Normalization, batches: Int, batchSize: Int, seed: UInt64) throws -> [Row] {
        guard let mixer = model.mixer, let s = model.samixConfig else {
            throw SAMixError.invalidState("\(model.mix.name) has no Mixer to compare (only SAMix-I and SAMix-C)")
        }
        try require(batches >= 1, "mask comparison needs ≥ 1 batch, got \(batches)")
        try require(batchSize >= 2 && batchSize <= dataset.count,
                    "mask comparison batch size must be in 2...\(dataset.count), got \(batchSize)")
        var labels: [Int]? = nil
        if s.variant == .cluster {
            guard let pl = model.pseudoLabels, pl.count == dataset.count else {
                throw SAMixError.invalidState("SAMix-C compares masks on the data of its last training (it needs their pseudo-labels)")
            }
            labels = pl
        }
        // Train-mode batch statistics, as in training; every BN buffer is restored afterwards.
        let buffers = (model.key.namedBuffers() + mixer.namedBuffers()).map { $0.1 }
        let copies = try buffers.map { try $0.copy() }
        let wasTraining = (model.key.isTraining, mixer.isTraining)
        defer {
            for (b, c) in zip(buffers, copies) { b.data.update(from: c.data, count: b.count) }
            model.key.train(wasTraining.0)
            mixer.train(wasTraining.1)
        }
        model.key.train()
        mixer.train()
        var rows = maskKinds.map { Row(mask: $0) }
        var dominantBatches = [Int](repeating: 0, count: maskKinds.count)
        let root = SplitMix64(seed: seed)
        try GradMode.withDisabled {
            for b in 0..<batches {
                try Interruption.checkpoint("the mask comparison")
                var rng = root.fork(index: UInt64(b))
                var order = Array(0..<dataset.count)
                order.shuffle(using: &rng)
                let idx = Array(order.prefix(batchSize))
                let (xq, xk) = try augmentation.twoViews(of: dataset, indices: idx, normalization: normalization,
                                                         rng: rng.fork(index: 1))
                let n = batchSize, h = xq.shape[2], w = xq.shape[3]
                let keyOut = try model.key.forward(try Tensor.concat([xq, xk], axis: 0),
                                                   groups: model.config.shuffleBNGroups, order: rng.permutation(2 * n))
                let kq = try keyOut.embedding.narrow(axis: 0, start: 0, length: n)
                let kk = try keyOut.embedding.narrow(axis: 0, start: n, length: n)
                let maps = keyOut.stages[s.maskLayer]
                let fq = try maps.narrow(axis: 0, start: 0, length: n), fk = try maps.narrow(axis: 0, start: n, length: n)
                let lam = Float(rng.beta(s.alpha, s.alpha))
                let perm = rng.permutation(n)
                let y = labels.map { pl in idx.map { pl[$0] } }
                let masks = try makeMasks(mixer: mixer, featuresQ: fq, featuresK: fk, lam: lam, permutation: perm,
                                          height: h, width: w, rng: &rng)
                for (k, m) in masks.enumerated() {
                    let x = try SSLMixing.crossViewMix(viewQ: xq, viewK: xk, permutation: perm, partnerMask: m)
                    var orng = rng.fork(index: 100)   // the same extended positives for every mask kind
                    let out = try model.mixerObjective(mixed: x, keysQ: kq, keysK: kk, permutation: perm, lam: lam,
                                                       labels: y, rng: &orng)
                    rows[k].loss += Double(out.loss.data[0])
                    let terms = Dictionary(uniqueKeysWithValues: out.metrics)
                    if let local = terms["loss_mb_local"], let global = terms["loss_mb_global"] {
                        rows[k].local = (rows[k].local ?? 0) + local
                        rows[k].localExcess = (rows[k].localExcess ?? 0) + local - binaryEntropy(Double(lam))
                        rows[k].global = (rows[k].global ?? 0) + global
                        let pos = try SSLMixing.crossViewPositives(keysQ: kq, keysK: kk, permutation: perm)
                        if let z = out.embedding, let share = try dominantShare(z: z, a: pos.a, b: pos.b, lam: lam) {
                            rows[k].dominantCorrect = (rows[k].dominantCorrect ?? 0) + share
                            dominantBatches[k] += 1
                        }
                    }
                    rows[k].ownShare += 1 - Double(sumFloats(m.data, m.count)) / Double(m.count)
                    rows[k].spatialStd += LearnedMixing.meanSpatialStd(m)
                }
            }
        }
        let d = Double(batches)
        return rows.enumerated().map { k, r in
            var o = r
            o.loss /= d; o.ownShare /= d; o.spatialStd /= d
            o.local = r.local.map { $0 / d }; o.localExcess = r.localExcess.map { $0 / d }
            o.global = r.global.map { $0 / d }; o.dominantCorrect = r.dominantCorrect.map { $0 / Double(Swift.max(dominantBatches[k], 1)) }
            return o
        }
    }

    /// The partner masks [N, 1, H, W] of every kind, in `maskKinds` order.
    static func makeMasks(mixer: Mixer, featuresQ fq: Tensor, featuresK fk: Tensor, lam: Float, permutation: [Int],
                          height h: Int, width w: Int, rng: inout SplitMix64) throws -> [Tensor] {
        let n = permutation.count, size = h * w
        let learned = try SSLMixing.crossViewMask(mixer: mixer, featuresQ: fq, featuresK: fk, lam: lam,
                                                  permutation: permutation, imageHeight: h, imageWidth: w, rng: &rng)
        let shuffled = try learned.gatherRows((0..<n).map { ($0 + 1) % n })
        let constant = try Tensor(repeating: 1 - lam, shape: [n, 1, h, w])
        let box = try Tensor(zeros: [n, 1, h, w])
        let ratio = Double(max(0, 1 - lam)).squareRoot()
        let cutH = Int(Double(h) * ratio), cutW = Int(Double(w) * ratio)
        for i in 0..<n {
            let y0 = rng.int(below: h - cutH + 1), x0 = rng.int(below: w - cutW + 1)
            for y in y0..<(y0 + cutH) {
                (box.data + i * size + y * w + x0).update(repeating: 1, count: cutW)
            }
        }
        return [learned, shuffled, constant, box]
    }

    /// H(λ) = −λ·ln λ − (1 − λ)·ln(1 − λ), the minimum of the 2-way soft CE with target (λ, 1 − λ).
    static func binaryEntropy(_ lam: Double) -> Double {
        func term(_ p: Double) -> Double { p > 0 ? -p * log(p) : 0 }
        return term(lam) + term(1 - lam)
    }

    /// Share of rows whose embedding z is closer to the positive of the source with the larger
    /// weight (a for λ > 0.5, b for λ < 0.5); nil when λ = 0.5.
    static func dominantShare(z: Tensor, a: Tensor, b: Tensor, lam: Float) throws -> Double? {
        if lam == 0.5 { return nil }
        let sa = try Contrastive.rowDot(z, a), sb = try Contrastive.rowDot(z, b)
        let n = z.shape[0]
        var correct = 0
        for i in 0..<n where (sa.data[i] > sb.data[i]) == (lam > 0.5) { correct += 1 }
        return Double(correct) / Double(n)
    }
}
