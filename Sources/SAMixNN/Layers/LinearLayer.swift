import SAMixCore
import SAMixOps

/// Fully connected layer: weight [out, in], bias [out], PyTorch's default init U(±1/√in).
public final class Linear: Module {
    public let weight: Tensor
    public let bias: Tensor?

    public init(_ inFeatures: Int, _ outFeatures: Int, bias: Bool = true, rng: inout SplitMix64) throws {
        try require(inFeatures > 0 && outFeatures > 0, "Linear needs positive sizes, got \(inFeatures)→\(outFeatures)")
        weight = try makeParameter([outFeatures, inFeatures])
        let bound = 1 / Float(inFeatures).squareRoot()
        Init.uniform(weight, bound: bound, rng: &rng)
        if bias {
            let b = try makeParameter([outFeatures])
            Init.uniform(b, bound: bound, rng: &rng)
            self.bias = b
        } else { self.bias = nil }
        super.init()
    }

    public var inFeatures: Int { weight.shape[1] }
    public var outFeatures: Int { weight.shape[0] }

    public override var localParameters: [(String, Tensor)] {
        var p = [("weight", weight)]
        if let bias { p.append(("bias", bias)) }
        return p
    }

    public func callAsFunction(_ x: Tensor) throws -> Tensor { try linear(x, weight: weight, bias: bias) }
}
