import SAMixCore
import SAMixOps
import SAMixNN
import SAMixData

/// AttentiveMix (Walawalkar et al. 2020; OpenMixup `attentivemix.py`, docs/method.md §7).
///
/// The attention of a cell is the channel mean of the last-stage feature map of a frozen model on the
/// (clean) batch. With λ ~ Beta(α, α), the k = clamp(int(cells·λ), 1, cells) cells of highest attention
/// of each image are kept (`topK = nil`, all OpenMixup CIFAR configs) — or a fixed k (`topK`, the
/// function default 6, λ unused) — and the rest is taken from the partner:
///
///     x̃ = mask·x + (1 − mask)·x[π],   mask = nearest-upsampled binary cell grid,   λᵢ = mean(maskᵢ).
///
/// The returned `MixResult` follows the `Mixing` conventions: `masks` hold the PARTNER weight 1 − mask,
/// ops are `.mask(i)` (one mask per sample), `lambda` = mean(mask) per sample (all equal when the image
/// side is a multiple of the grid side; OpenMixup uses the first sample's value for the batch).
///
/// Deviation (no downloads here): OpenMixup's "AttentiveMix+" runs an ImageNet-pretrained ResNet-18 on
/// the batch upsampled to 224 px (a 7×7 grid). samix uses the last-stage map of either a caller-supplied
/// frozen `ImageClassifier` (`AttentiveMixObjective.attentionModel`) or, by default, the model being
/// trained, run in eval mode without gradients — on CIFAR ResNets at 32 px that is an 8×8 grid (a
/// 2×2 grid on 8-px toy images). Early in training its attention is close to uninformative.
/// Non-integer upsampling factors use PyTorch's nearest rule (cell = ⌊y·g/H⌋) instead of failing.
public struct AttentiveMix: Sendable {
    public let alpha: Double
    /// Fixed number of kept cells; nil → k from λ.
    public let topK: Int?
    public let partnerMode: PartnerMode

    public init(alpha: Double = 2, topK: Int? = nil, partnerMode: PartnerMode = .permutation) throws {
        try require(alpha > 0 && alpha.isFinite, "AttentiveMix: α must be a finite value > 0, got \(alpha)")
        if let k = topK { try require(k >= 1, "AttentiveMix: top_k must be ≥ 1, got \(k)") }
        self.alpha = alpha
        self.topK = topK
        self.partnerMode = partnerMode
    }

    /// Channel-mean attention [N, gh, gw] of the last-stage map of `model` on `images`, computed in eval
    /// mode without gradients (the model's mode is restored).
    public static func attention(model: ImageClassifier, images: Tensor) throws -> Tensor {
        try requireShape(images.rank == 4, "AttentiveMix: images must be [N, C, H, W], got \(images.shape)")
        return try ModelMixing.inEvalMode(model) {
            try GradMode.withDisabled {
                let (_, f) = try model.forwardWithFeatures(images)
                guard let last = f.last, last.rank == 4 else { throw SAMixError.invalidState("AttentiveMix: no 4-D last-stage map") }
                return try last.mean(axis: 1)
            }
        }
    }

    /// Indices of the `k` largest values (descending; ties → lower index first; NaN ranks lowest).
    static func topIndices(_ v: ArraySlice<Float>, k: Int) -> [Int] {
        let base = v.startIndex
        let order = v.indices.sorted { i, j in
            let a = v[i].isNaN ? -Float.infinity : v[i], b = v[j].isNaN ? -Float.infinity : v[j]
            return a != b ? a > b : i < j
        }
        return order.prefix(k).map { $0 - base }
    }

    /// Number of kept cells for a grid of `cells` and ratio λ.
    public func keptCells(cells: Int, lambda: Double) -> Int {
        if let k = topK { return min(k, cells) }
        let raw = Double(cells) * lambda
        let k = raw.isFinite ? Int(raw) : 1
        return min(max(k, 1), cells)
    }

    /// Draws π and λ, selects the top cells of `attention` (N × gh × gw, row-major) per image and builds
    /// the masks for an image batch of `shape`. `lambda` fixes λ (in [0, 1]).
    public func plan(attention: [Float], gridHeight gh: Int, gridWidth gw: Int, shape: ImageBatchShape,
                     lambda: Double? = nil, rng: inout SplitMix64) throws -> MixResult {
        let n = shape.batch, H = shape.height, W = shape.width
        try require(gh >= 1 && gw >= 1 && gh <= H && gw <= W,
                    "AttentiveMix: attention grid \(gh)×\(gw) must be non-empty and no larger than the \(H)×\(W) image")
        try requireShape(attention.count == n * gh * gw, "AttentiveMix: \(attention.count) attention values for \(n)×\(gh)×\(gw)")
        if let l = lambda { try require(l >= 0 && l <= 1, "λ must be in [0, 1], got \(l)") }
        let lam = ModelMixing.drawLambda(alpha: alpha, fixed: lambda, rng: &rng)
        let partner = try partnerMode.draw(batch: n, rng: &rng)
        let cells = gh * gw, k = keptCells(cells: cells, lambda: lam)
        let rowCell = (0..<H).map { $0 * gh / H }, colCell = (0..<W).map { $0 * gw / W }
        var masks = [Float](repeating: 1, count: n * H * W)   // partner weight; kept cells → 0
        for i in 0..<n {
            let keep = AttentiveMix.topIndices(attention[(i * cells)..<((i + 1) * cells)], k: k)
            var kept = [Bool](repeating: false, count: cells)
            for c in keep { kept[c] = true }
            let m = i * H * W
            for y in 0..<H {
                for x in 0..<W where kept[rowCell[y] * gw + colCell[x]] { masks[m + y * W + x] = 0 }
            }
        }
        return try makeMixResult(shape: shape, partner: partner, ops: (0..<n).map { SampleMix.mask($0) }, masks: masks)
    }

    /// Attention of `model` on `images`, plan, and the mixed images (a new tensor; `images` is unchanged).
    public func mix(images: Tensor, model: ImageClassifier, lambda: Double? = nil,
                    rng: inout SplitMix64) throws -> (mixed: Tensor, result: MixResult) {
        let att = try AttentiveMix.attention(model: model, images: images)
        try requireShape(att.rank == 3 && att.shape[0] == images.shape[0], "AttentiveMix: attention \(att.shape)")
        let shape = try ImageBatchShape(batch: images.shape[0], channels: images.shape[1],
                                        height: images.shape[2], width: images.shape[3])
        let r = try plan(attention: att.scalars, gridHeight: att.shape[1], gridWidth: att.shape[2], shape: shape,
                         lambda: lambda, rng: &rng)
        let out = try Tensor(uninitializedShape: images.shape)
        try r.apply(input: UnsafePointer(images.data), output: out.data, shape: shape)
        return (out, r)
    }
}
