import SAMixCore

/// Fully connected layer: y = x·Wᵀ + b with x [N, in], W [out, in], b [out] → y [N, out].
/// Backward: dx = dy·W, dW = dyᵀ·x, db = Σ_n dy.
public func linear(_ x: Tensor, weight: Tensor, bias: Tensor? = nil) throws -> Tensor {
    try requireShape(x.rank == 2, "linear input must be [N, features], got \(x.shape)")
    try requireShape(weight.rank == 2, "linear weight must be [out, in], got \(weight.shape)")
    let n = x.shape[0], fin = x.shape[1], fout = weight.shape[0]
    try requireShape(weight.shape[1] == fin, "linear weight expects \(weight.shape[1]) input features, got \(fin)")
    if let b = bias { try requireShape(b.count == fout, "linear bias must have \(fout) elements, got \(b.shape)") }
    let y = try Tensor(uninitializedShape: [n, fout])
    if let b = bias {
        for i in 0..<n { (y.data + i * fout).update(from: b.data, count: fout) }
    }
    sgemm(transB: true, m: n, n: fout, k: fin, a: x.data, lda: fin, b: weight.data, ldb: fin,
          beta: bias == nil ? 0 : 1, c: y.data, ldc: fout)
    let xd = x.detached(), wd = weight.detached()
    var inputs = [x, weight]
    if let b = bias { inputs.append(b) }
    let hasBias = bias != nil
    return y.recordOp("linear", inputs) { dy in
        var dx: Tensor? = nil, dW: Tensor? = nil, db: Tensor? = nil
        if x.requiresGrad {
            let t = try Tensor(uninitializedShape: [n, fin])
            sgemm(m: n, n: fin, k: fout, a: dy.data, lda: fout, b: wd.data, ldb: fin, c: t.data, ldc: fin)
            dx = t
        }
        if weight.requiresGrad {
            let t = try Tensor(uninitializedShape: [fout, fin])
            sgemm(transA: true, m: fout, n: fin, k: n, a: dy.data, lda: fout, b: xd.data, ldb: fin, c: t.data, ldc: fin)
            dW = t
        }
        if hasBias, bias?.requiresGrad == true {
            let t = try Tensor(zeros: [fout])
            for i in 0..<n { let r = dy.data + i * fout; for j in 0..<fout { t.data[j] += r[j] } }
            db = t
        }
        return hasBias ? [dx, dW, db] : [dx, dW]
    }
}
