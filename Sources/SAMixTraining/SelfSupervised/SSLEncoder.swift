import SAMixCore
import SAMixOps
import SAMixNN
import SAMixData
import SAMixMixing

/// MoCo v2's projection neck (OpenMixup `MoCoV2Neck`, docs/method.md §5.1): global average pooling of the
/// last stage, then `Linear(C → hidden) → ReLU → Linear(hidden → out)` (R-18: 512 → 2048 → 128).
/// MoCo v2 has no batch norm in the neck; `batchNorm: true` gives the SimCLR-style
/// `Linear → BN1d → ReLU → Linear` variant (OpenMixup `NonLinearNeck`). Linear layers keep PyTorch's
/// default init, as the official MoCo code.
public final class ProjectionNeck: Module {
    public let fc1: Linear
    public let bn: BatchNorm2d?
    public let fc2: Linear

    public init(inFeatures: Int, hidden: Int, out: Int, batchNorm: Bool = false, rng: inout SplitMix64) throws {
        try require(inFeatures > 0 && hidden > 0 && out > 0, "projection neck needs positive sizes")
        fc1 = try Linear(inFeatures, hidden, bias: !batchNorm, rng: &rng)
        bn = batchNorm ? try BatchNorm2d(hidden) : nil
        fc2 = try Linear(hidden, out, rng: &rng)
        super.init()
    }

    public override var children: [(String, Module)] {
        var c: [(String, Module)] = [("fc1", fc1)]
        if let bn { c.append(("bn", bn)) }
        c.append(("fc2", fc2))
        return c
    }

    /// [N, C, h, w] feature map (or already pooled [N, C]) → [N, out] (not normalised).
    public func callAsFunction(_ features: Tensor) throws -> Tensor {
        let pooled = features.rank == 4 ? try features.globalAvgPool2d() : features
        var h = try fc1(pooled)
        if let bn { h = try bn(h) }
        return try fc2(try h.relu())
    }
}

/// Backbone + projection neck; its output is the L2-normalised embedding MoCo compares.
public final class SSLEncoder: Module {
    public let backbone: Backbone
    public let neck: ProjectionNeck

    public init(backbone: Backbone, neck: ProjectionNeck) {
        self.backbone = backbone
        self.neck = neck
        super.init()
    }

    public override var children: [(String, Module)] { [("backbone", backbone), ("neck", neck)] }

    /// All stage maps and the normalised embedding of one BN group.
    public func forward(_ x: Tensor) throws -> (stages: [Tensor], embedding: Tensor) {
        let stages = try backbone.forwardStages(x)
        guard let last = stages.last else { throw SAMixError.invalidState("backbone produced no stages") }
        return (stages, try neck(last).l2NormalizedRows())
    }

    /// Forward with batch norm computed per group, the one-device form of MoCo's shuffle-BN.
    ///
    /// **Shuffle-BN.** With batch norm, the statistics of a batch are shared by all its samples, so
    /// a query and its positive key encoded in the same BN batch can "communicate" through the
    /// batch mean and variance; the InfoNCE task can then be solved partly from that leak instead
    /// of from the image content, and the representation suffers. MoCo (multi-GPU) therefore
    /// shuffles the key batch before distributing it over the GPUs, encodes each GPU's share with
    /// its own BN statistics and un-shuffles the keys; queries keep the original order. A query and
    /// its positive key then see the statistics of two different subsets.
    ///
    /// On one device the shuffle alone is a mere index permutation and, with one BN batch, changes
    /// nothing (the statistics are permutation invariant). The equivalent here is to emulate the G
    /// devices: `groups = G` splits the batch into G contiguous chunks (queries: `order = nil`) or
    /// into G chunks of the batch permuted by `order` (keys), runs each chunk with its own BN
    /// statistics, and returns rows in the input order. G = 1 is plain batch norm.
    public func forward(_ x: Tensor, groups: Int, order: [Int]? = nil) throws -> (stages: [Tensor], embedding: Tensor) {
        let n = x.shape[0]
        try require(groups >= 1, "BN groups must be ≥ 1, got \(groups)")
        if let order { try require(order.count == n && Set(order).count == n, "shuffle order must be a permutation of \(n)") }
        let g = Swift.min(groups, Swift.max(1, n / 2))   // every group needs ≥ 2 samples for batch norm
        if g == 1 && order == nil { return try forward(x) }
        let xs = try order.map { try x.gatherRows($0) } ?? x
        var sizes = [Int](repeating: n / g, count: g)
        for i in 0..<(n % g) { sizes[i] += 1 }
        let chunks = g == 1 ? [xs] : try xs.split(axis: 0, sizes: sizes)
        var stageParts: [[Tensor]] = []
        var embParts: [Tensor] = []
        for c in chunks {
            let r = try forward(c)
            stageParts.append(r.stages)
            embParts.append(r.embedding)
        }
        var stages = try (0..<stageParts[0].count).map { s in try Tensor.concat(stageParts.map { $0[s] }, axis: 0) }
        var emb = try Tensor.concat(embParts, axis: 0)
        if let order {
            var inverse = [Int](repeating: 0, count: n)
            for (i, j) in order.enumerated() { inverse[j] = i }
            stages = try stages.map { try $0.gatherRows(inverse) }
            emb = try emb.gatherRows(inverse)
        }
        return (stages, emb)
    }
}
