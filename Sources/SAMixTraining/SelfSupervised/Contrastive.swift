import Glibc
import SAMixCore
import SAMixOps
import SAMixNN
import SAMixData
import SAMixMixing

extension Tensor {
    /// Rows of a [N, d] tensor scaled to unit L2 norm (PyTorch `F.normalize(x, dim=1)`):
    /// `y = x / max(‖x‖, ε)`. Backward: `dx = (g − y·⟨y, g⟩) / ‖x‖` (`g / ε` for rows clamped at ε).
    public func l2NormalizedRows(epsilon: Float = 1e-12) throws -> Tensor {
        try requireShape(rank == 2, "l2NormalizedRows expects [N, d], got \(shape)")
        let n = shape[0], d = shape[1]
        let out = try Tensor(uninitializedShape: shape)
        var norms = [Float](repeating: 0, count: n)
        let x = data, y = out.data
        norms.withUnsafeMutableBufferPointer { nb in
            let np = nb.baseAddress!
            parallelFor(n, minChunk: 16) { i in
                let r = x + i &* d
                let s = Swift.max(dotFloats(r, r, d).squareRoot(), epsilon)
                np[i] = s
                let inv = 1 / s, o = y + i &* d
                for k in 0..<d { o[k] = r[k] * inv }
            }
        }
        guard Tensor.needsGrad([self]) else { return out }
        let yd = out.detached(), inShape = shape
        return out.recordOp("l2NormalizedRows", [self]) { g in
            try requireShape(g.count == n &* d, "l2NormalizedRows backward: gradient \(g.shape) for \(inShape)")
            let gx = try Tensor(uninitializedShape: inShape)
            let gp = g.data, yp = yd.data, dp = gx.data
            parallelFor(n, minChunk: 16) { i in
                let gi = gp + i &* d, yi = yp + i &* d, di = dp + i &* d
                let s = norms[i]
                let clamped = s <= epsilon
                let dot = clamped ? 0 : dotFloats(yi, gi, d)
                let inv = 1 / s
                for k in 0..<d { di[k] = (gi[k] - yi[k] * dot) * inv }
            }
            return [gx]
        }
    }
}

/// Contrastive losses of MoCo and of the SSL Mixer objective (docs/method.md §4.3, §5.2), built from
/// differentiable ops. All inputs are L2-normalised embeddings [N, d]; the negatives [K, d] (the
/// queue) carry no gradient. `CE(logits, 0)` is the cross-entropy with the positive at index 0
/// (OpenMixup's `ContrastiveHead`), averaged over the batch.
public enum Contrastive {
    /// ⟨a_i, b_i⟩ for every row: [N, 1].
    public static func rowDot(_ a: Tensor, _ b: Tensor) throws -> Tensor {
        try requireShape(a.rank == 2 && a.shape == b.shape, "rowDot: shapes \(a.shape) and \(b.shape)")
        return try (a * b).sum(axis: 1, keepDims: true)
    }

    /// Similarities to the negatives: q·queueᵀ [N, K].
    public static func negativeLogits(_ q: Tensor, negatives: Tensor) throws -> Tensor {
        try requireShape(q.rank == 2 && negatives.rank == 2 && q.shape[1] == negatives.shape[1],
                         "negatives \(negatives.shape) do not match queries \(q.shape)")
        return try Tensor.matmul(q, negatives, transposeB: true)
    }

    /// InfoNCE `CE([⟨q, k⁺⟩, q·queueᵀ] / T, 0)`.
    public static func infoNCE(query q: Tensor, positive k: Tensor, negatives: Tensor, temperature t: Float) throws -> Tensor {
        try require(t > 0 && t.isFinite, "temperature must be > 0, got \(t)")
        let neg = try negativeLogits(q, negatives: negatives)
        return try infoNCE(positiveLogits: rowDot(q, k), negativeLogits: neg, temperature: t)
    }

    /// `CE([pos, neg] / T, 0)` from precomputed similarities pos [N, 1], neg [N, K].
    public static func infoNCE(positiveLogits pos: Tensor, negativeLogits neg: Tensor, temperature t: Float) throws -> Tensor {
        let logits = try Tensor.concat([pos, neg], axis: 1) * (1 / t)
        return try logits.crossEntropy(labels: [Int](repeating: 0, count: pos.shape[0]))
    }

    /// The "global" mixed InfoNCE of a mixed sample z with two positives:
    /// `λ·CE([⟨z, k_a⟩, z·queueᵀ]/T) + (1 − λ)·CE([⟨z, k_b⟩, z·queueᵀ]/T)`.
    public static func mixedInfoNCE(query z: Tensor, positiveA ka: Tensor, positiveB kb: Tensor, lam: Float,
                                    negatives: Tensor, temperature t: Float) throws -> Tensor {
        try require(lam >= 0 && lam <= 1, "λ = \(lam) is not in [0, 1]")
        let neg = try negativeLogits(z, negatives: negatives)
        let la = try infoNCE(positiveLogits: rowDot(z, ka), negativeLogits: neg, temperature: t)
        let lb = try infoNCE(positiveLogits: rowDot(z, kb), negativeLogits: neg, temperature: t)
        return try la * lam + lb * (1 - lam)
    }

    /// The "local" two-way term between the two mixed instances (the SSL code's "BCE"):
    /// `λ·CE([s_a, s_b]/T, 0) + (1 − λ)·CE([s_b, s_a]/T, 0)`, s = ⟨z, k⟩, i.e. a soft-target
    /// 2-way softmax cross-entropy with target (λ, 1 − λ).
    public static func pairwise(query z: Tensor, positiveA ka: Tensor, positiveB kb: Tensor, lam: Float,
                                temperature t: Float) throws -> Tensor {
        try require(lam >= 0 && lam <= 1, "λ = \(lam) is not in [0, 1]")
        try require(t > 0 && t.isFinite, "temperature must be > 0, got \(t)")
        let n = z.shape[0]
        let logits = try Tensor.concat([rowDot(z, ka), rowDot(z, kb)], axis: 1) * (1 / t)
        var target = [Float](repeating: 0, count: 2 * n)
        for i in 0..<n { target[2 * i] = lam; target[2 * i + 1] = 1 - lam }
        return try logits.softTargetCrossEntropy(targets: Tensor(target, shape: [n, 2]))
    }
}

/// MoCo's queue of negative keys: K rows of d floats, filled as a ring buffer (the oldest keys
/// are overwritten first). Initialised, as in MoCo, with random unit vectors.
public final class KeyQueue {
    /// The keys [K, d] (never requires grad).
    public let keys: Tensor
    /// Row where the next key goes.
    public private(set) var pointer = 0
    /// Number of keys enqueued so far (saturates at K).
    public private(set) var filled = 0

    public var capacity: Int { keys.shape[0] }
    public var dimension: Int { keys.shape[1] }

    public init(capacity: Int, dimension: Int, seed: UInt64) throws {
        try require(capacity >= 1 && dimension >= 1, "queue needs K ≥ 1 and d ≥ 1, got \(capacity)×\(dimension)")
        var rng = SplitMix64(seed: seed)
        let t = try Tensor(uninitializedShape: [capacity, dimension])
        Init.normal(t, std: 1, rng: &rng)
        keys = try GradMode.withDisabled { try t.l2NormalizedRows() }
    }

    /// Writes `batch` [B, d] at the pointer (wrapping around) and advances it by B.
    public func enqueue(_ batch: Tensor) throws {
        try requireShape(batch.rank == 2 && batch.shape[1] == dimension,
                         "enqueue: keys must be [B, \(dimension)], got \(batch.shape)")
        let b = batch.shape[0], k = capacity, d = dimension
        let src = batch.data, dst = keys.data
        // When B > K only the last K keys survive, as with a sequential ring write.
        let start = Swift.max(0, b - k)
        for i in start..<b {
            let row = (pointer + i) % k
            (dst + row * d).update(from: src + i * d, count: d)
        }
        pointer = (pointer + b) % k
        filled = Swift.min(k, filled + b)
    }

    /// Restores a saved queue (checkpoint resume): keys [K, d], write pointer and fill count.
    public func restore(keys saved: Tensor, pointer p: Int, filled f: Int) throws {
        try requireShape(saved.shape == keys.shape, "queue keys must be \(keys.shape), got \(saved.shape)")
        try require(p >= 0 && p < capacity && f >= 0 && f <= capacity, "queue pointer \(p) / filled \(f) outside 0..<\(capacity)")
        keys.data.update(from: saved.data, count: keys.count)
        pointer = p
        filled = f
    }
}
