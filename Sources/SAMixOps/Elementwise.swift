import SAMixCore

/// Elementwise arithmetic with broadcasting (`+ - * /` between tensors, and with scalars).
extension Tensor {
    fileprivate enum BinaryKind { case add, sub, mul, div }

    fileprivate static func binary(_ a: Tensor, _ b: Tensor, _ kind: BinaryKind) throws -> Tensor {
        let outShape = try Broadcast.shape(a.shape, b.shape)
        let out = try Tensor(uninitializedShape: outShape)
        let ap = a.data, bp = b.data, op = out.data
        if a.shape == b.shape {
            let n = out.count
            switch kind {
            case .add: for i in 0..<n { op[i] = ap[i] + bp[i] }
            case .sub: for i in 0..<n { op[i] = ap[i] - bp[i] }
            case .mul: for i in 0..<n { op[i] = ap[i] * bp[i] }
            case .div: for i in 0..<n { op[i] = ap[i] / bp[i] }
            }
        } else {
            let sa = Broadcast.strides(a.shape, in: outShape), sb = Broadcast.strides(b.shape, in: outShape)
            Broadcast.forEachRun(outShape, sa, sb) { o, oa, ob, n, da, db in
                switch kind {
                case .add: for j in 0..<n { op[o &+ j] = ap[oa &+ j &* da] + bp[ob &+ j &* db] }
                case .sub: for j in 0..<n { op[o &+ j] = ap[oa &+ j &* da] - bp[ob &+ j &* db] }
                case .mul: for j in 0..<n { op[o &+ j] = ap[oa &+ j &* da] * bp[ob &+ j &* db] }
                case .div: for j in 0..<n { op[o &+ j] = ap[oa &+ j &* da] / bp[ob &+ j &* db] }
                }
            }
        }
        let aShape = a.shape, bShape = b.shape
        switch kind {
        case .add:
            return out.recordOp("add", [a, b]) { g in
                [a.requiresGrad ? try Broadcast.reduce(g, to: aShape) : nil,
                 b.requiresGrad ? try Broadcast.reduce(g, to: bShape) : nil]
            }
        case .sub:
            return out.recordOp("sub", [a, b]) { g in
                [a.requiresGrad ? try Broadcast.reduce(g, to: aShape) : nil,
                 b.requiresGrad ? try Broadcast.reduce(g.scaled(-1), to: bShape) : nil]
            }
        case .mul:
            let ad = a.detached(), bd = b.detached()
            return out.recordOp("mul", [a, b]) { g in
                [a.requiresGrad ? try Broadcast.reduce(try binary(g, bd, .mul), to: aShape) : nil,
                 b.requiresGrad ? try Broadcast.reduce(try binary(g, ad, .mul), to: bShape) : nil]
            }
        case .div:
            let ad = a.detached(), bd = b.detached()
            return out.recordOp("div", [a, b]) { g in
                let ga = try binary(g, bd, .div)
                var gb: Tensor? = nil
                if b.requiresGrad {
                    // d(a/b)/db = -a/b²
                    let t = try binary(try binary(ga, ad, .mul), bd, .div)
                    gb = try Broadcast.reduce(t.scaled(-1), to: bShape)
                }
                return [a.requiresGrad ? try Broadcast.reduce(ga, to: aShape) : nil, gb]
            }
        }
    }

    public static func + (a: Tensor, b: Tensor) throws -> Tensor { try binary(a, b, .add) }
    public static func - (a: Tensor, b: Tensor) throws -> Tensor { try binary(a, b, .sub) }
    public static func * (a: Tensor, b: Tensor) throws -> Tensor { try binary(a, b, .mul) }
    public static func / (a: Tensor, b: Tensor) throws -> Tensor { try binary(a, b, .div) }

    /// `self * scale + shift`, elementwise.
    public func affine(scale: Float, shift: Float = 0) throws -> Tensor {
        let out = try Tensor(uninitializedShape: shape)
        let x = data, y = out.data
        for i in 0..<count { y[i] = x[i] * scale + shift }
        return out.recordOp("affine", [self]) { g in [try g.scaled(scale)] }
    }

    /// `self * s` without autodiff bookkeeping when `self` needs none (used inside backward passes).
    func scaled(_ s: Float) throws -> Tensor { try affine(scale: s) }

    public static func * (a: Tensor, s: Float) throws -> Tensor { try a.affine(scale: s) }
    public static func * (s: Float, a: Tensor) throws -> Tensor { try a.affine(scale: s) }
    public static func + (a: Tensor, s: Float) throws -> Tensor { try a.affine(scale: 1, shift: s) }
    public static func - (a: Tensor, s: Float) throws -> Tensor { try a.affine(scale: 1, shift: -s) }
    /// `s - a`
    public static func - (s: Float, a: Tensor) throws -> Tensor { try a.affine(scale: -1, shift: s) }
    public static func / (a: Tensor, s: Float) throws -> Tensor { try a.affine(scale: 1 / s) }
}
