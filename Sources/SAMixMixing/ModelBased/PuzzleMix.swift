import Glibc
import SAMixCore
import SAMixOps
import SAMixNN
import SAMixData

/// PuzzleMix (Kim et al. 2020; OpenMixup `puzzlemix.py` / the official `mixup_graph`, docs/method.md §7).
///
/// Per batch: a ~ Beta(α, α) (the mixing prior), a partner permutation π and a block grid
/// b = 2^randint(1, blockNum) per side (CIFAR `block_num = 5` → b ∈ {2, 4, 8, 16}). Per sample i with
/// partner j = π(i):
///  1. saliency s = |∇ₓ CE| as the RMS over channels (`PuzzleMix.saliency`: an extra eval-mode
///     forward/backward), average-pooled per block and normalised to sum 1 → S_i, S_j;
///  2. pairwise data terms: the (denormalised) images average-pooled with `neighSize`, and for every
///     block boundary the mean |difference| across it for the four (own/partner) combinations, scaled by
///     β' γ with β' = β/b/16; decomposed (exactly, up to a constant) into unary additions and one edge
///     weight w = (pw₁₀ + pw₀₁ − pw₁₁ − pw₀₀)/2 + β';
///  3. a labelling l of the b×b blocks with n_labels levels, label l ↔ own weight m = 1 − l/(n − 1),
///     minimising  Σ_p [m·cost_own + (1 − m)·cost_partner + η/b² · −log(C(n−1, l)·a^{n−1−l}(1−a)^l + 1e−8)]
///     + Σ_edges w·(l_p − l_q)²/(n − 1)²,  where choosing "own" costs the partner's saliency and vice
///     versa. Solved like the reference (gco `cut_grid_graph(..., algorithm='swap')`): **α-β-swap**
///     from the all-0 labelling with an exact min-cut per move (`GridEnergy`, Dinic max-flow written
///     here), costs quantised to integers at gco's scale (1000·b², times (n−1)² so the label-distance
///     costs are integral; rounded rather than truncated);
///  4. optional transport (`transport`, t_eps = 0.8, t_size = 4): each image's blocks of side t_size are
///     re-arranged by the reference's greedy assignment (`mask_transport`: cost ε·‖Δpos‖²/(g−1)² − s·z,
///     `g` iterations of row-argmin + column conflict resolution) so that salient blocks move to where the
///     mask keeps that image; the reference's quirks are kept (target blocks nobody wins stay 0 — they
///     lie where the mask does not use that image);
///  5. x̃ = m·T(x_i) + (1 − m)·T'(x_j) with m nearest-upsampled; λᵢ = mean(m) per sample; labels are
///     soft targets with the per-sample λᵢ.
///
/// Deviations (documented): block sizes that do not divide the image are skipped (b is drawn uniformly
/// from the admissible 2^e; OpenMixup would crash), `neighSize`/`tSize` fall back to the largest divisor
/// of the block side not above them; rectangular images use b×b blocks of (H/b)×(W/b); negative edge
/// weights (possible only with un-denormalised inputs) are clamped to 0 since swap moves need w ≥ 0;
/// the adversarial-noise and multi-processing options of the reference are not implemented.
public struct PuzzleMixConfig: Sendable {
    public var alpha: Double = 1
    /// Exclusive upper exponent: b = 2^randint(1, blockNum).
    public var blockNum: Int = 5
    public var beta: Double = 1.2
    public var gamma: Double = 0.5
    public var eta: Double = 0.2
    public var neighSize: Int = 4
    public var nLabels: Int = 3
    public var transport: Bool = true
    public var tEps: Double = 0.8
    public var tSize: Int = 4
    /// Per-channel mean/std to undo the input normalisation for the pairwise (smoothness) terms, as the
    /// reference does (`input * std + mean`); nil uses the values as given.
    public var pixelMean: [Float]? = nil
    public var pixelStd: [Float]? = nil
    public var partnerMode: PartnerMode = .permutation
    /// How the block labelling is optimised.
    public var solver: PuzzleMixSolver = .alphaBetaSwap

    /// OpenMixup's CIFAR configuration (α = 1 per the docs table).
    public init(alpha: Double = 1) { self.alpha = alpha }

    func validate() throws {
        try require(alpha > 0 && alpha.isFinite, "PuzzleMix: α must be a finite value > 0, got \(alpha)")
        try require(blockNum >= 2 && blockNum <= 12, "PuzzleMix: block_num must be in 2...12 (b = 2^randint(1, block_num)), got \(blockNum)")
        try require(beta.isFinite && beta >= 0 && gamma.isFinite && gamma >= 0 && eta.isFinite && eta >= 0,
                    "PuzzleMix: β, γ, η must be finite and ≥ 0")
        try require(neighSize >= 1 && tSize >= 1, "PuzzleMix: neigh_size and t_size must be ≥ 1")
        try require(nLabels >= 2 && nLabels <= 8, "PuzzleMix: n_labels must be in 2...8, got \(nLabels)")
        try require(tEps.isFinite && tEps >= 0, "PuzzleMix: t_eps must be finite and ≥ 0")
        if pixelMean != nil || pixelStd != nil {
            try require(pixelMean != nil && pixelStd != nil, "PuzzleMix: give both pixel mean and std")
        }
    }
}

/// Optimiser of PuzzleMix's block labelling.
public enum PuzzleMixSolver: Sendable, Equatable {
    /// α-β-swap moves with exact min-cuts, from the all-0 labelling (what the reference does with gco):
    /// a local minimum w.r.t. swap moves.
    case alphaBetaSwap
    /// The global minimum of the same energy by Ishikawa's construction (exact because the label cost
    /// (i − j)² is convex): never worse than `.alphaBetaSwap`, a deviation from the reference's optimiser.
    case exact
}

/// What one PuzzleMix step did.
public struct PuzzleMixResult {
    public let partner: [Int]
    /// Blocks per side.
    public let blockNum: Int
    /// The Beta(α, α) draw used as the prior.
    public let prior: Double
    /// Optimal block labels (N × b × b, label l ↔ own weight 1 − l/(n − 1)).
    public let blockLabels: [Int]
    /// Own-image weight per pixel (N × H × W), in {0, 1/(n−1), …, 1}.
    public let ownMask: [Float]
    /// λᵢ = mean(ownMaskᵢ): weight of yᵢ.
    public let lambda: [Float]
    /// The mixed batch [N, C, H, W].
    public let mixed: Tensor
}

public struct PuzzleMix {
    public let config: PuzzleMixConfig

    public init(config: PuzzleMixConfig = PuzzleMixConfig()) throws {
        try config.validate()
        self.config = config
    }

    /// |∇ₓ CE(model(x), y)| as the RMS over channels, N × H × W, from an eval-mode forward/backward
    /// (the model's mode and its parameters' gradients are left untouched).
    public static func saliency(model: ImageClassifier, images: Tensor, labels: [Int]) throws -> [Float] {
        try requireShape(images.rank == 4 && images.shape[0] == labels.count,
                         "PuzzleMix saliency: images \(images.shape) for \(labels.count) labels")
        let n = images.shape[0], c = images.shape[1], hw = images.shape[2] * images.shape[3]
        let grad: Tensor = try ModelMixing.inEvalMode(model) {
            try ModelMixing.withFrozenParameters(model) {
                try GradMode.withEnabled {
                    let x = try images.copy()
                    x.requiresGrad = true
                    try model(x).crossEntropy(labels: labels).backward()
                    guard let g = x.grad else { throw SAMixError.invalidState("PuzzleMix: no input gradient") }
                    return g
                }
            }
        }
        var s = [Float](repeating: 0, count: n * hw)
        let g = grad.data
        for i in 0..<n {
            for ch in 0..<c {
                let row = g + (i * c + ch) * hw
                for p in 0..<hw { s[i * hw + p] += row[p] * row[p] }
            }
            for p in 0..<hw { s[i * hw + p] = (s[i * hw + p] / Float(c)).squareRoot() }
        }
        return s
    }

    /// Admissible blocks per side: 2^e for e in 1..<blockNum dividing both image sides.
    public func blockCandidates(height: Int, width: Int) -> [Int] {
        (1..<config.blockNum).map { 1 << $0 }.filter { $0 <= height && $0 <= width && height % $0 == 0 && width % $0 == 0 }
    }

    /// Largest divisor of `n` that is ≤ `limit` (≥ 1).
    static func divisor(of n: Int, atMost limit: Int) -> Int {
        var d = max(1, min(limit, n))
        while d > 1 && n % d != 0 { d -= 1 }
        return d
    }

    /// Mixes `images` [N, C, H, W] with saliency (N × H × W) from `saliency(model:…)`. `lambda` fixes the
    /// prior a, `blockNum` fixes b (must be admissible).
    public func mix(images: Tensor, saliency: [Float], lambda: Double? = nil, blockNum fixedBlocks: Int? = nil,
                    rng: inout SplitMix64) throws -> PuzzleMixResult {
        try requireShape(images.rank == 4, "PuzzleMix: images must be [N, C, H, W], got \(images.shape)")
        let n = images.shape[0], C = images.shape[1], H = images.shape[2], W = images.shape[3]
        try require(n >= 1, "PuzzleMix: empty batch")
        try requireShape(saliency.count == n * H * W, "PuzzleMix: \(saliency.count) saliency values for \(n)×\(H)×\(W)")
        if let l = lambda { try require(l >= 0 && l <= 1, "λ must be in [0, 1], got \(l)") }
        let candidates = blockCandidates(height: H, width: W)
        let b: Int
        if let fb = fixedBlocks {
            try require(fb >= 1 && H % fb == 0 && W % fb == 0, "PuzzleMix: \(fb) blocks per side do not divide \(H)×\(W)")
            b = fb
        } else {
            try require(!candidates.isEmpty, "PuzzleMix: no block grid 2^e (1 ≤ e < \(config.blockNum)) divides the \(H)×\(W) image")
            b = candidates[rng.int(below: candidates.count)]
        }
        let a = ModelMixing.drawLambda(alpha: config.alpha, fixed: lambda, rng: &rng)
        let partner = try config.partnerMode.draw(batch: n, rng: &rng)
        let terms = try PuzzleMixTerms(config: config, images: images, saliency: saliency, blocks: b)

        // Per-sample optimisation (independent, deterministic) in parallel.
        let nodes = b * b
        var labels = [Int](repeating: 0, count: n * nodes)
        var ok = [Bool](repeating: true, count: n)
        labels.withUnsafeMutableBufferPointer { lb in
            ok.withUnsafeMutableBufferPointer { okb in
                let lbase = lb.baseAddress!, obase = okb.baseAddress!
                parallelFor(n) { i in
                    guard let e = try? terms.energy(own: i, partner: partner[i], prior: a) else { obase[i] = false; return }
                    let l = config.solver == .exact ? e.exactMinimum() : e.alphaBetaSwap()
                    for p in 0..<nodes { lbase[i * nodes + p] = l[p] }
                }
            }
        }
        try require(ok.allSatisfy { $0 }, "PuzzleMix: could not build the block energy (non-finite saliency or images, or β/γ/η so large that the integer costs would overflow)")
        let levels = Float(config.nLabels - 1)
        let blockMask = labels.map { 1 - Float($0) / levels }

        // Transport and mixing.
        let hw = H * W
        let mixed = try Tensor(uninitializedShape: images.shape)
        var ownMask = [Float](repeating: 0, count: n * hw)
        let bh = H / b, bw = W / b
        let th = config.transport ? PuzzleMix.divisor(of: bh, atMost: config.tSize) : bh
        let tw = config.transport ? PuzzleMix.divisor(of: bw, atMost: config.tSize) : bw
        let gh = H / th, gw = W / tw                       // transport grid
        let cost = config.transport ? PuzzleMix.transportCost(rows: gh, cols: gw) : []
        let x = images.data, out = mixed.data
        ownMask.withUnsafeMutableBufferPointer { mb in
            let mbase = mb.baseAddress!
            parallelFor(n) { i in
                let j = partner[i]
                // Block mask on the transport grid (nearest upsampling b → g).
                var gm = [Float](repeating: 0, count: gh * gw)
                for r in 0..<gh { for c in 0..<gw { gm[r * gw + c] = blockMask[i * nodes + (r * b / gh) * b + (c * b / gw)] } }
                var srcOwn = Array(0..<(gh * gw)).map { Optional($0) }
                var srcPartner = srcOwn
                if config.transport {
                    let so = terms.pooledSaliency(sample: i, cellH: th, cellW: tw)
                    let sp = terms.pooledSaliency(sample: j, cellH: th, cellW: tw)
                    srcOwn = PuzzleMix.transportSources(mask: gm.map { $0 > 0 }, saliency: so, cost: cost, eps: config.tEps,
                                                        iterations: max(gh, gw))
                    srcPartner = PuzzleMix.transportSources(mask: gm.map { 1 - $0 > 0 }, saliency: sp, cost: cost, eps: config.tEps,
                                                            iterations: max(gh, gw))
                }
                for y in 0..<H {
                    for xq in 0..<W {
                        let cell = (y / th) * gw + xq / tw, m = gm[cell]
                        mbase[i * hw + y * W + xq] = m
                        let oy = y % th, ox = xq % tw
                        for ch in 0..<C {
                            var v: Float = 0
                            if m > 0, let s = srcOwn[cell] {
                                v += m * x[((i * C + ch) * H + (s / gw) * th + oy) * W + (s % gw) * tw + ox]
                            }
                            if m < 1, let s = srcPartner[cell] {
                                v += (1 - m) * x[((j * C + ch) * H + (s / gw) * th + oy) * W + (s % gw) * tw + ox]
                            }
                            out[((i * C + ch) * H + y) * W + xq] = v
                        }
                    }
                }
            }
        }
        let lam: [Float] = (0..<n).map { i in
            var s = 0.0
            for p in 0..<hw { s += Double(ownMask[i * hw + p]) }
            return Float(s / Double(hw))
        }
        return PuzzleMixResult(partner: partner, blockNum: b, prior: a, blockLabels: labels, ownMask: ownMask,
                               lambda: lam, mixed: mixed)
    }

    /// Transport cost C (g² × g², g = rows×cols grid): squared distance of the cell positions divided by
    /// (max(rows, cols) − 1)² (reference `cost_matrix`).
    static func transportCost(rows: Int, cols: Int) -> [Double] {
        let g = rows * cols, norm = Double(max(max(rows, cols) - 1, 1) * max(max(rows, cols) - 1, 1))
        var c = [Double](repeating: 0, count: g * g)
        for p in 0..<g {
            for q in 0..<g {
                let dr = p / cols - q / cols, dc = p % cols - q % cols
                c[p * g + q] = Double(dr * dr + dc * dc) / norm
            }
        }
        return c
    }

    /// The reference's `mask_transport` + `transport_image`: for each target cell, the source cell whose
    /// content lands there (nil → the cell stays empty/zero). cost_ij = ε·C_ij − s_i·z_j; `iterations`
    /// rounds of: each source picks its cheapest target (first on ties), each target keeps the chooser of
    /// least `plan·cost` over all sources (a non-chooser's 0 can win, leaving the target empty), losers
    /// pay +1 on their choice. The plan of the last round is used.
    static func transportSources(mask z: [Bool], saliency s: [Double], cost: [Double], eps: Double,
                                 iterations: Int) -> [Int?] {
        let g = z.count
        if g == 0 { return [] }
        guard cost.count == g * g, s.count == g else { return [Int?](repeating: nil, count: g) }
        let zf = z.map { $0 ? 1.0 : 0.0 }
        var cst = [Double](repeating: 0, count: g * g)
        cst.withUnsafeMutableBufferPointer { cb in
            cost.withUnsafeBufferPointer { kb in
                zf.withUnsafeBufferPointer { zb in
                    for i in 0..<g {
                        let si = s[i], row = i &* g
                        for j in 0..<g { cb[row &+ j] = eps * kb[row &+ j] - si * zb[j] }
                    }
                }
            }
        }
        func rowArgmin(_ i: Int) -> Int {
            cst.withUnsafeBufferPointer { cb in
                let row = i &* g
                var best = 0, bv = cb[row]
                for j in 1..<g where cb[row &+ j] < bv { best = j; bv = cb[row &+ j] }
                return best
            }
        }
        var choice = (0..<g).map(rowArgmin)
        var winner = [Int?](repeating: nil, count: g)
        var bestChooser = [Int](repeating: -1, count: g)
        for it in 0..<max(iterations, 1) {
            // Column fight over plan ⊙ cost (0 for rows that did not choose the column), first index on
            // ties, done in O(g): the best chooser vs the first non-chooser (value 0).
            for j in 0..<g { bestChooser[j] = -1 }
            for i in 0..<g {
                let j = choice[i]
                if bestChooser[j] < 0 || cst[i * g + j] < cst[bestChooser[j] * g + j] { bestChooser[j] = i }
            }
            var chosenCount = [Int](repeating: 0, count: g)
            for i in 0..<g { chosenCount[choice[i]] += 1 }
            for j in 0..<g {
                guard bestChooser[j] >= 0 else { winner[j] = nil; continue }
                let bc = bestChooser[j], v = cst[bc * g + j]
                // First row that did not choose j (none if every row chose j).
                var nc = 0
                while nc < g && choice[nc] == j { nc += 1 }
                if chosenCount[j] == g || v < 0 || (v == 0 && bc < nc) { winner[j] = bc } else { winner[j] = nil }
            }
            if it == max(iterations, 1) - 1 { break }
            // Losers pay +1 on their choice and re-choose.
            for i in 0..<g where winner[choice[i]] != i {
                let j = choice[i]
                cst[i * g + j] += 1
                choice[i] = rowArgmin(i)
            }
        }
        return winner
    }
}

/// The per-batch ingredients of PuzzleMix's block energies.
struct PuzzleMixTerms {
    let config: PuzzleMixConfig
    let n: Int, C: Int, H: Int, W: Int
    let b: Int
    let saliency: [Float]
    /// Block-pooled normalised saliency, N × b².
    let blockSaliency: [Double]
    /// Images pooled with the neighbourhood size, N × C × (H/nh) × (W/nw).
    let pooled: [Double]
    let nh: Int, nw: Int

    init(config: PuzzleMixConfig, images: Tensor, saliency: [Float], blocks b: Int) throws {
        self.config = config
        n = images.shape[0]; C = images.shape[1]; H = images.shape[2]; W = images.shape[3]
        self.b = b
        self.saliency = saliency
        let bh = H / b, bw = W / b
        nh = PuzzleMix.divisor(of: bh, atMost: config.neighSize)
        nw = PuzzleMix.divisor(of: bw, atMost: config.neighSize)
        var bs = [Double](repeating: 0, count: n * b * b)
        for i in 0..<n {
            let pooled = PuzzleMixTerms.pool(saliency, sample: i, H: H, W: W, cellH: bh, cellW: bw)
            for p in 0..<(b * b) { bs[i * b * b + p] = pooled[p] }
        }
        blockSaliency = bs
        var mean = [Float](repeating: 0, count: C), std = [Float](repeating: 1, count: C)
        if let m = config.pixelMean, let s = config.pixelStd {
            try requireShape((m.count == C || m.count == 1) && (s.count == C || s.count == 1),
                             "PuzzleMix: pixel mean/std need 1 or \(C) values")
            for ch in 0..<C { mean[ch] = m.count == 1 ? m[0] : m[ch]; std[ch] = s.count == 1 ? s[0] : s[ch] }
        }
        let ph = H / nh, pw = W / nw
        var pl = [Double](repeating: 0, count: n * C * ph * pw)
        let x = images.data
        for i in 0..<n {
            for ch in 0..<C {
                for y in 0..<H {
                    for xq in 0..<W {
                        let v = Double(x[((i * C + ch) * H + y) * W + xq] * std[ch] + mean[ch])
                        pl[((i * C + ch) * ph + y / nh) * pw + xq / nw] += v
                    }
                }
            }
        }
        let inv = 1.0 / Double(nh * nw)
        pooled = pl.map { $0 * inv }
    }

    /// Saliency of `sample` average-pooled over cells, normalised to sum 1 (uniform if it sums to 0).
    static func pool(_ s: [Float], sample i: Int, H: Int, W: Int, cellH: Int, cellW: Int) -> [Double] {
        let gh = H / cellH, gw = W / cellW
        var out = [Double](repeating: 0, count: gh * gw)
        for y in 0..<(gh * cellH) {
            for x in 0..<(gw * cellW) { out[(y / cellH) * gw + x / cellW] += Double(s[i * H * W + y * W + x]) }
        }
        let total = out.reduce(0, +)
        if total > 0 && total.isFinite { return out.map { $0 / total } }
        return [Double](repeating: 1 / Double(gh * gw), count: gh * gw)
    }

    func pooledSaliency(sample i: Int, cellH: Int, cellW: Int) -> [Double] {
        PuzzleMixTerms.pool(saliency, sample: i, H: H, W: W, cellH: cellH, cellW: cellW)
    }

    /// Reference `neigh_penalty(in1, in2, k)`: mean |in1 − in2| across each block boundary of the pooled
    /// maps (channel mean, averaged along the boundary). Returns (vertical (b−1)×b, horizontal b×(b−1)).
    func neighbourPenalty(_ s1: Int, _ s2: Int) -> (vertical: [Double], horizontal: [Double]) {
        let ph = H / nh, pw = W / nw, kh = (H / b) / nh, kw = (W / b) / nw
        func at(_ s: Int, _ ch: Int, _ y: Int, _ x: Int) -> Double { pooled[((s * C + ch) * ph + y) * pw + x] }
        var v = [Double](repeating: 0, count: max(b - 1, 0) * b), h = [Double](repeating: 0, count: b * max(b - 1, 0))
        for r in 0..<max(b - 1, 0) {
            let y = (r + 1) * kh - 1
            for c in 0..<b {
                var acc = 0.0
                for x in (c * kw)..<((c + 1) * kw) { for ch in 0..<C { acc += abs(at(s1, ch, y, x) - at(s2, ch, y + 1, x)) } }
                v[r * b + c] = acc / Double(C * kw)
            }
        }
        for r in 0..<b {
            for c in 0..<max(b - 1, 0) {
                let x = (c + 1) * kw - 1
                var acc = 0.0
                for y in (r * kh)..<((r + 1) * kh) { for ch in 0..<C { acc += abs(at(s1, ch, y, x) - at(s2, ch, y, x + 1)) } }
                h[r * (b - 1) + c] = acc / Double(C * kh)
            }
        }
        return (v, h)
    }

    /// The integer block energy of sample `i` mixed with `j` under prior a (see `PuzzleMix`).
    func energy(own i: Int, partner j: Int, prior a: Double) throws -> GridEnergy {
        let nodes = b * b, nl = config.nLabels
        let betaN = config.beta / Double(b) / 16, bg = betaN * config.gamma
        // Index 0 = partner image, 1 = own image (the reference's pw[:, a, b] layout).
        let img = [j, i]
        var pwV = [[[Double]]](repeating: [[], []], count: 2), pwH = pwV
        for p in 0..<2 { for q in 0..<2 { let t = neighbourPenalty(img[p], img[q]); pwV[p][q] = t.vertical.map { $0 * bg }; pwH[p][q] = t.horizontal.map { $0 * bg } } }
        // cost of "own" at a block = partner saliency lost (+ pairwise parts); "partner" = own saliency lost.
        var costOwn = (0..<nodes).map { blockSaliency[j * nodes + $0] }
        var costPartner = (0..<nodes).map { blockSaliency[i * nodes + $0] }
        var wV = [Double](repeating: 0, count: max(b - 1, 0) * b), wH = [Double](repeating: 0, count: b * max(b - 1, 0))
        for r in 0..<max(b - 1, 0) {
            for c in 0..<b {
                let e = r * b + c, top = r * b + c, bottom = (r + 1) * b + c
                costOwn[top] += (pwV[1][0][e] + pwV[1][1][e]) / 2
                costPartner[top] += (pwV[0][1][e] + pwV[0][0][e]) / 2
                costOwn[bottom] += (pwV[0][1][e] + pwV[1][1][e]) / 2
                costPartner[bottom] += (pwV[1][0][e] + pwV[0][0][e]) / 2
                wV[e] = (pwV[1][0][e] + pwV[0][1][e] - pwV[1][1][e] - pwV[0][0][e]) / 2 + betaN
            }
        }
        for r in 0..<b {
            for c in 0..<max(b - 1, 0) {
                let e = r * (b - 1) + c, left = r * b + c, right = r * b + c + 1
                costOwn[left] += (pwH[1][0][e] + pwH[1][1][e]) / 2
                costPartner[left] += (pwH[0][1][e] + pwH[0][0][e]) / 2
                costOwn[right] += (pwH[0][1][e] + pwH[1][1][e]) / 2
                costPartner[right] += (pwH[1][0][e] + pwH[0][0][e]) / 2
                wH[e] = (pwH[1][0][e] + pwH[0][1][e] - pwH[1][1][e] - pwH[0][0][e]) / 2 + betaN
            }
        }
        let levels = Double(nl - 1)
        let prior: [Double] = (0..<nl).map { l in
            let binom = PuzzleMixTerms.binomial(nl - 1, l)
            return config.eta * -log(binom * pow(a, Double(nl - 1 - l)) * pow(1 - a, Double(l)) + 1e-8) / Double(b * b)
        }
        let scale = 1000 * Double(b * b)
        var unary = [Int64](repeating: 0, count: nodes * nl)
        for p in 0..<nodes {
            for l in 0..<nl {
                let m = 1 - Double(l) / levels
                let d = m * costOwn[p] + (1 - m) * costPartner[p] + prior[l]
                let v = (scale * levels * levels * d).rounded()
                try require(v.isFinite && abs(v) < 1e12, "PuzzleMix: non-finite or too large block cost")
                unary[p * nl + l] = Int64(v)
            }
        }
        func weight(_ w: Double) throws -> Int64 {
            let v = (scale * w).rounded()
            try require(v.isFinite && abs(v) < 1e12, "PuzzleMix: non-finite or too large edge weight")
            return max(Int64(v), 0)
        }
        return try GridEnergy(rows: b, cols: b, labels: nl, unary: unary, vertical: try wV.map(weight),
                              horizontal: try wH.map(weight))
    }

    static func binomial(_ n: Int, _ k: Int) -> Double {
        var r = 1.0
        if k < 0 || k > n { return 0 }
        for t in 0..<k { r = r * Double(n - t) / Double(t + 1) }
        return r
    }
}
