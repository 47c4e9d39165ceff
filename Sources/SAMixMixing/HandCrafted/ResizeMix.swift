import SAMixCore
import SAMixOps
import SAMixNN
import SAMixData

/// ResizeMix (Qin et al., 2020), as in OpenMixup `augments/resizemix.py`.
///
/// A scale τ is drawn: τ ~ U(scope) by default of the paper, or — `useAlpha = true`, as in OpenMixup's
/// CIFAR configs — τ ~ Beta(α, α), redrawn from U(scope) when it falls outside `scope = (0.1, 0.8)`. The
/// box has sides `int(H·τ)` × `int(W·τ)`, a uniform centre and the CutMix corner rule (clipped); the WHOLE
/// partner image, resized with nearest neighbour to the clipped box, is pasted into it.
/// λ = 1 − box area/(H·W) (realised and label).
///
/// A fixed `lambda` (weight of the original, as everywhere in samix) sets τ = √(1 − λ), not clamped to
/// `scope`, so λ = 1 leaves the batch unchanged. Defaults: α = 1, `useAlpha = true` (OpenMixup CIFAR),
/// random permutation, one box per batch (`perSample = true`: one τ and box per sample).
public struct ResizeMix: MixPolicy, Sendable {
    public var alpha: Double
    public var useAlpha: Bool
    public var scope: (Double, Double)
    public var partner: PartnerMode
    public var perSample: Bool

    public init(alpha: Double = 1.0, useAlpha: Bool = true, scope: (Double, Double) = (0.1, 0.8),
                partner: PartnerMode = .permutation, perSample: Bool = false) throws {
        try checkAlpha(alpha, "ResizeMix")
        try require(scope.0 >= 0 && scope.0 <= scope.1 && scope.1 <= 1, "ResizeMix: scope must satisfy 0 ≤ lo ≤ hi ≤ 1, got \(scope)")
        self.alpha = alpha
        self.useAlpha = useAlpha
        self.scope = scope
        self.partner = partner
        self.perSample = perSample
    }

    public func plan<T: MixElement>(images: UnsafePointer<T>, shape: ImageBatchShape, lambda: Double?,
                                    rng: inout SplitMix64) throws -> MixResult {
        try checkAlpha(alpha, "ResizeMix")
        try checkLambda(lambda)
        let B = shape.batch, H = shape.height, W = shape.width
        var ops = [SampleMix](repeating: .keep, count: B)
        for i in 0..<(perSample ? B : 1) {
            var tau: Double
            if let l = lambda {
                tau = max(0, 1 - l).squareRoot()
            } else if useAlpha {
                tau = rng.beta(alpha, alpha)
                if tau < scope.0 || tau > scope.1 { tau = uniform(scope.0, scope.1, &rng) }
            } else {
                tau = uniform(scope.0, scope.1, &rng)
            }
            let cutW = Int(Double(W) * tau), cutH = Int(Double(H) * tau)
            let cx = rng.int(below: W), cy = rng.int(below: H)
            ops[i] = .resizedBox(MixBox.centered(cy: cy, cx: cx, cutH: cutH, cutW: cutW, height: H, width: W))
        }
        if !perSample { for i in 1..<max(B, 1) { ops[i] = ops[0] } }
        let p = try partner.draw(batch: B, rng: &rng)
        return try makeMixResult(shape: shape, partner: p, ops: ops)
    }
}
