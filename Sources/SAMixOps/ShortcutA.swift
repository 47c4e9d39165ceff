import SAMixCore

/// The parameter-free "option A" shortcut of He et al.'s CIFAR ResNets: spatial subsampling by
/// `stride` (x[:, :, ::s, ::s]) and zero-padding of the channel dimension, centred
/// (⌊(Cout − Cin)/2⌋ zero channels before, the rest after).
/// x [N, Cin, H, W] → [N, Cout, ⌈H/s⌉, ⌈W/s⌉]. Backward routes the gradient of the copied channels back.
public func shortcutA(_ x: Tensor, outChannels: Int, stride: Int) throws -> Tensor {
    try requireShape(x.rank == 4, "shortcutA input must be [N, C, H, W], got \(x.shape)")
    let n = x.shape[0], cin = x.shape[1], h = x.shape[2], w = x.shape[3]
    try require(stride >= 1, "shortcutA stride must be ≥ 1")
    try requireShape(outChannels >= cin, "shortcutA cannot reduce channels \(cin) → \(outChannels)")
    let ho = (h + stride - 1) / stride, wo = (w + stride - 1) / stride
    let before = (outChannels - cin) / 2
    let y = try Tensor(zeros: [n, outChannels, ho, wo])
    let xp = x.data, yp = y.data
    parallelFor(n) { img in
        for c in 0..<cin {
            let src = xp + (img &* cin &+ c) &* h &* w
            let dst = yp + (img &* outChannels &+ c &+ before) &* ho &* wo
            for i in 0..<ho { for j in 0..<wo { dst[i &* wo &+ j] = src[i &* stride &* w &+ j &* stride] } }
        }
    }
    return y.recordOp("shortcutA", [x]) { dy in
        let dx = try Tensor(zeros: [n, cin, h, w])
        let dxp = dx.data, dyp = dy.data
        parallelFor(n) { img in
            for c in 0..<cin {
                let dst = dxp + (img &* cin &+ c) &* h &* w
                let src = dyp + (img &* outChannels &+ c &+ before) &* ho &* wo
                for i in 0..<ho { for j in 0..<wo { dst[i &* stride &* w &+ j &* stride] = src[i &* wo &+ j] } }
            }
        }
        return [dx]
    }
}
