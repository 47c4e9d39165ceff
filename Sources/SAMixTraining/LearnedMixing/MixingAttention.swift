import SAMixCore
import SAMixOps
import SAMixNN
import SAMixData
import SAMixMixing

/// Which positions of the partner map a Mixer's mask pixel attends to (docs/method.md §3.4).
///
/// Both variants produce the row-stochastic matrix `P ∈ R^{N×hw×hw}`:
/// `P = softmax_last( Qᵀ·K / √C_inter )`, with `Q, K ∈ R^{N×C_inter×hw}` the projections of the two
/// samples' (λ-encoded) feature maps; row p (a query position) sums to 1 over the key positions.
///
/// - `crossShared` (AutoMix's Mix Block): one 1×1 conv `W` (C → C_inter, with bias) for both:
///   `Q = W·x_i`, `K = W·x_j` — cross-attention from the sample to its partner.
/// - `concatSeparate` (SAMix's "mixing attention", `x_qk_concat`): `u = [x_i, x_j]` (2C channels),
///   `Q = W_q·u`, `K = W_k·u` with two different 1×1 convs (2C → C_inter, with bias).
public final class MixingAttention: Module {
    public enum Kind: String, Equatable, Sendable {
        case crossShared = "cross_shared"
        case concatSeparate = "concat_separate"
    }

    public let kind: Kind
    public let query: Conv2d
    /// Only for `concatSeparate`.
    public let key: Conv2d?
    public let interChannels: Int

    /// - Parameters: `inChannels` = channels of one sample's (λ-encoded) map; weights N(0, initStd²),
    ///   biases 0 (OpenMixup's `init_weights(init_linear='normal')`).
    public init(kind: Kind, inChannels: Int, interChannels: Int, initStd: Float, rng: inout SplitMix64) throws {
        try require(inChannels > 0 && interChannels > 0, "MixingAttention needs positive channel counts")
        self.kind = kind
        self.interChannels = interChannels
        let cin = kind == .concatSeparate ? 2 * inChannels : inChannels
        query = try Conv2d(cin, interChannels, kernelSize: 1, bias: true, rng: &rng)
        Init.normal(query.weight, std: initStd, rng: &rng)
        if kind == .concatSeparate {
            let k = try Conv2d(cin, interChannels, kernelSize: 1, bias: true, rng: &rng)
            Init.normal(k.weight, std: initStd, rng: &rng)
            key = k
        } else {
            key = nil
        }
        super.init()
    }

    public override var children: [(String, Module)] {
        var c: [(String, Module)] = [("query", query)]
        if let key { c.append(("key", key)) }
        return c
    }

    /// `P` [N, hw, hw] for sample maps `xi`, `xj` [N, C, h, w].
    public func callAsFunction(_ xi: Tensor, _ xj: Tensor) throws -> Tensor {
        try requireShape(xi.rank == 4 && xi.shape == xj.shape,
                         "MixingAttention: maps must be equal [N, C, h, w], got \(xi.shape) and \(xj.shape)")
        let n = xi.shape[0], hw = xi.shape[2] * xi.shape[3]
        let q: Tensor, k: Tensor
        switch kind {
        case .crossShared:
            q = try query(xi)
            k = try query(xj)
        case .concatSeparate:
            let u = try Tensor.concat([xi, xj], axis: 1)
            q = try query(u)
            guard let key else { throw SAMixError.invalidState("MixingAttention: missing key projection") }
            k = try key(u)
        }
        let qm = try q.reshaped([n, interChannels, hw])
        let km = try k.reshaped([n, interChannels, hw])
        // logits[p, r] = Σ_c Q[c, p]·K[c, r]
        let logits = try Tensor.matmul(qm, km, transposeA: true)
        let scaled = try logits * (1 / Float(interChannels).squareRoot())
        return try scaled.softmax(axis: -1)
    }
}
