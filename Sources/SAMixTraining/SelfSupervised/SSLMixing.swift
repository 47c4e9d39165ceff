import SAMixCore
import SAMixOps
import SAMixNN
import SAMixData
import SAMixMixing

/// Cross-view mixing of SSL mixup / SAMix (docs/method.md §5.2), shared by the Mixup baseline and SAMix-I/C.
///
/// Sample i of a mixed batch takes image i from view q (weight λ, own mask M₀ = 1 − M₁) and image
/// π(i) from view k (weight 1 − λ, partner mask M₁):
/// `x̃ᵢ = xq[i]⊙(1 − M₁ᵢ) + xk[π(i)]⊙M₁ᵢ`.
/// Its positives are the keys of the *other* view of each source: `k_a = kk[i]` (image i, view k)
/// for the λ part and `k_b = kq[π(i)]` (image π(i), view q) for the 1 − λ part. A single
/// permutation π is used for images, Mixer features and keys — the reference permutes the Mixer's
/// partner features twice (π_bb then π_mb, docs/method.md §5.6), leaking; that is not reproduced.
public enum SSLMixing {
    /// `xq + (xk[π] − xq)⊙M₁` for images [N, C, H, W] and a partner mask [N, 1, H, W]. Differentiable
    /// in the mask (the images are data).
    public static func crossViewMix(viewQ xq: Tensor, viewK xk: Tensor, permutation: [Int], partnerMask m: Tensor) throws -> Tensor {
        try requireShape(xq.rank == 4 && xq.shape == xk.shape, "crossViewMix: views \(xq.shape) and \(xk.shape)")
        let n = xq.shape[0]
        try requireShape(m.shape == [n, 1, xq.shape[2], xq.shape[3]], "crossViewMix: mask \(m.shape) for images \(xq.shape)")
        try require(permutation.count == n, "crossViewMix: permutation of \(permutation.count) for \(n) images")
        let partner = try xk.detached().gatherRows(permutation)
        let q = xq.detached()
        return try q + (partner - q) * m
    }

    /// Constant-ratio (Mixup) cross-view images `λ·xq + (1 − λ)·xk[π]` (no gradient).
    public static func crossViewMixup(viewQ xq: Tensor, viewK xk: Tensor, permutation: [Int], lam: Float) throws -> Tensor {
        try GradMode.withDisabled {
            let m = try Tensor(repeating: 1 - lam, shape: [xq.shape[0], 1, xq.shape[2], xq.shape[3]])
            return try crossViewMix(viewQ: xq, viewK: xk, permutation: permutation, partnerMask: m)
        }
    }

    /// The positives of the mixed samples: (k_a, k_b) = (kk, kq[π]).
    public static func crossViewPositives(keysQ kq: Tensor, keysK kk: Tensor, permutation: [Int]) throws -> (a: Tensor, b: Tensor) {
        try requireShape(kq.rank == 2 && kq.shape == kk.shape, "crossViewPositives: keys \(kq.shape) and \(kk.shape)")
        return (kk, try kq.gatherRows(permutation))
    }

    /// The Mixer's partner mask M₁ [N, 1, H, W] for pairs (view-q features of i, view-k features of
    /// π(i)) — the reference's SSL call `Mixer([F_q, F_k[π]], λ)`.
    ///
    /// The shared `Mixer` reads one feature batch and its permutation (x_j = F[p]). It is called on
    /// the stacked batch [F_q; F_k] (2N rows) with p(i) = N + π(i) for *both* halves and the first
    /// N masks are kept. This is exact, not an approximation: attention and λ encoding are per
    /// sample, and the only batch-coupled layer, the value network's batch norm, sees x_j = F_k[π]
    /// twice, which has the same mean and (biased) variance as F_k[π] once; the discarded half gets
    /// no gradient. Cost: the Mixer runs on 2N rows (small next to the encoders).
    public static func crossViewMask(mixer: Mixer, featuresQ fq: Tensor, featuresK fk: Tensor, lam: Float,
                                     permutation: [Int], imageHeight: Int, imageWidth: Int,
                                     rng: inout SplitMix64) throws -> Tensor {
        try requireShape(fq.rank == 4 && fq.shape == fk.shape, "crossViewMask: features \(fq.shape) and \(fk.shape)")
        let n = fq.shape[0]
        try require(permutation.count == n, "crossViewMask: permutation of \(permutation.count) for \(n) maps")
        let stacked = try Tensor.concat([fq, fk], axis: 0)
        let half = permutation.map { n + $0 }
        let out = try mixer(features: stacked, lam: lam, permutation: half + half,
                            imageHeight: imageHeight, imageWidth: imageWidth, rng: &rng)
        return try out.partnerMask.narrow(axis: 0, start: 0, length: n)
    }

    /// Positive feature extension (docs/method.md §5.4, "Improving Contrastive Learning by Visualizing Feature
    /// Transformation"): per-dimension weights w ~ Beta(2, 2) [N, d], plus 1 for extrapolation;
    /// `q' = norm(w·kq + (1 − w)·kk)`, `k' = norm(w·kk + (1 − w)·kq)`; the extended positives of
    /// the mixed samples are (q', k'[π]). With `.both` one coin per call picks extrapolation or
    /// interpolation.
    public enum PositiveExtension: String, Equatable, Sendable, CaseIterable {
        case off, interpolate, extrapolate, both
    }

    public static func extendedPositives(keysQ kq: Tensor, keysK kk: Tensor, permutation: [Int],
                                         mode: PositiveExtension, rng: inout SplitMix64) throws -> (a: Tensor, b: Tensor) {
        if mode == .off { return try crossViewPositives(keysQ: kq, keysK: kk, permutation: permutation) }
        return try GradMode.withDisabled {
            let n = kq.shape[0], d = kq.shape[1]
            let extrapolate = mode == .extrapolate || (mode == .both && rng.uniformDouble() < 0.5)
            let w = try Tensor(uninitializedShape: [n, d])
            for i in 0..<(n * d) { w.data[i] = Float(rng.beta(2, 2)) + (extrapolate ? 1 : 0) }
            let qe = try (w * kq + (1 - w) * kk).l2NormalizedRows()
            let ke = try (w * kk + (1 - w) * kq).l2NormalizedRows()
            return (qe, try ke.gatherRows(permutation))
        }
    }

    /// `mix_mask_adjust` of `MoCoSAMix` (docs/method.md §5.3) for the backbone mask.
    public enum MaskAdjustMode: Equatable, Sendable {
        case off
        /// Rescale (`MaskAdjust.adjustMean`) only the samples whose own-image share deviates from λ by
        /// more than `meanMargin` (the reference default, margin 0.1).
        case auto(meanMargin: Double)
        /// As `auto`, and the constant λ mask for pairs whose two images share a cluster pseudo-label.
        case autoLabel(meanMargin: Double)
        /// Rescale every sample with probability p (the supervised `mask_adjust = p`).
        case probability(Double)
    }

    /// Applies `mode` in place to a detached partner mask [N, 1, H, W]; returns how many samples
    /// were changed.
    @discardableResult
    public static func adjust(partnerMask m: Tensor, lam: Float, mode: MaskAdjustMode, permutation: [Int],
                              labels: [Int]? = nil, rng: inout SplitMix64) throws -> Int {
        try require(!m.hasGradFn, "mask adjustment works in place on a detached mask")
        let n = m.shape[0], size = m.count / Swift.max(n, 1)
        var changed = 0
        func row(_ i: Int) throws -> Tensor { try Tensor(borrowing: m.data + i * size, shape: [1, size]) }
        switch mode {
        case .off:
            return 0
        case .probability(let p):
            if rng.uniformDouble() < p { try MaskAdjust.adjustMean(partnerMask: m, lam: lam); changed = n }
        case .auto(let margin), .autoLabel(let margin):
            var sameLabel = [Bool](repeating: false, count: n)
            if case .autoLabel = mode, let labels {
                try require(labels.count == n, "mask adjust: \(labels.count) labels for \(n) masks")
                for i in 0..<n { sameLabel[i] = labels[i] == labels[permutation[i]] }
            }
            for i in 0..<n {
                if sameLabel[i] {
                    (m.data + i * size).update(repeating: 1 - lam, count: size)
                    changed += 1
                    continue
                }
                let own = 1 - Double(sumFloats(m.data + i * size, size)) / Double(size)
                if abs(own - Double(lam)) > margin {
                    try MaskAdjust.adjustMean(partnerMask: try row(i), lam: lam)
                    changed += 1
                }
            }
        }
        return changed
    }
}
