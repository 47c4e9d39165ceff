// In-place kernels for a two-cycle i ↔ j of the partner map (timm's flip pairing, `pair`/`elem` modes):
// both images are rewritten from each other's ORIGINAL pixels in one pass, without saving either
// image to scratch. Each kernel is specialised per element type through `MixElement`.

/// Calls `body(pRowOffset, inP, inQ)` for every row (per channel in NCHW) that either box covers, where
/// `inP`/`inQ` tell whether the row lies inside box `bp`/`bq`. Row offsets index both images; in NCHW a
/// row is `w` values, in NHWC `w·c` interleaved values.
@inline(__always)
func forEachRowOfUnion(_ bp: MixBox, _ bq: MixBox, in g: ImageGeometry, _ body: (Int, Bool, Bool) -> Void) {
    let y0 = min(bp.isEmpty ? Int.max : bp.y0, bq.isEmpty ? Int.max : bq.y0)
    let y1 = max(bp.isEmpty ? Int.min : bp.y1, bq.isEmpty ? Int.min : bq.y1)
    if y0 >= y1 { return }
    let rowLength = g.layout == .nchw ? g.w : g.w &* g.c
    let channelsByPlane = g.layout == .nchw ? g.c : 1
    for c in 0..<channelsByPlane {
        for y in y0..<y1 {
            let inP = !bp.isEmpty && y >= bp.y0 && y < bp.y1
            let inQ = !bq.isEmpty && y >= bq.y0 && y < bq.y1
            body(c &* g.plane &+ y &* rowLength, inP, inQ)
        }
    }
}

/// Column range of a box within one row, in elements (× channels in NHWC).
@inline(__always)
func rowColumns(_ b: MixBox, _ g: ImageGeometry) -> (Int, Int) {
    g.layout == .nchw ? (b.x0, b.x1) : (b.x0 &* g.c, b.x1 &* g.c)
}

@inline(__always)
func copyRun<T>(_ dst: UnsafeMutablePointer<T>, _ src: UnsafePointer<T>, _ from: Int, _ to: Int) {
    var k = from
    while k < to {
        dst[k] = src[k]
        k &+= 1
    }
}

@inline(__always)
func swapRun<T>(_ a: UnsafeMutablePointer<T>, _ b: UnsafeMutablePointer<T>, _ from: Int, _ to: Int) {
    var k = from
    while k < to {
        let t = a[k]
        a[k] = b[k]
        b[k] = t
        k &+= 1
    }
}

/// Exchanges the pixels of `box` (all channels) between two images of the same geometry.
@inline(__always)
func swapRegion<T>(_ p: UnsafeMutablePointer<T>, _ q: UnsafeMutablePointer<T>, box: MixBox, g: ImageGeometry) {
    forEachRun(of: box, in: g) { o, len in swapRun(p + o, q + o, 0, len) }
}

/// CutMix of a pair with two different boxes: `p[bp] ← q[bp]` and `q[bq] ← p[bq]`, both from the
/// original images, one row at a time. A row inside both boxes is rewritten over the union of the two
/// column ranges with a branch-free select (each value read once before either image is written), which
/// vectorises; per-run copies of a few values each cost more in loop overhead than they save in stores.
func exchangeBoxes<T>(_ p: UnsafeMutablePointer<T>, _ q: UnsafeMutablePointer<T>, _ bp: MixBox, _ bq: MixBox,
                      g: ImageGeometry) {
    let (pa, pb) = rowColumns(bp, g), (qa, qb) = rowColumns(bq, g)
    let lo = min(pa, qa), hi = max(pb, qb)
    let pa32 = Int32(pa), pb32 = Int32(pb), qa32 = Int32(qa), qb32 = Int32(qb)
    forEachRowOfUnion(bp, bq, in: g) { o, inP, inQ in
        let rp = p + o, rq = q + o
        if inP && inQ {
            selectRow(rp, rq, lo, hi, pa32, pb32, qa32, qb32)
        } else if inP {
            copyRun(rp, rq, pa, pb)
        } else if inQ {
            copyRun(rq, rp, qa, qb)
        }
    }
}

/// One row inside both boxes: `rp[k] ← rq[k]` for k in [pa, pb), `rq[k] ← rp[k]` for k in [qa, qb), over
/// [lo, hi) ⊇ both ranges. Indices are compared as Int32 so a vector compare covers 8 lanes.
@inline(__always)
func selectRow<T>(_ rp: UnsafeMutablePointer<T>, _ rq: UnsafeMutablePointer<T>, _ lo: Int, _ hi: Int,
                  _ pa: Int32, _ pb: Int32, _ qa: Int32, _ qb: Int32) {
    var k = lo
    var k32 = Int32(truncatingIfNeeded: lo)
    while k < hi {
        let a = rp[k], b = rq[k]
        rp[k] = (k32 >= pa && k32 < pb) ? b : a
        rq[k] = (k32 >= qa && k32 < qb) ? a : b
        k &+= 1
        k32 &+= 1
    }
}

/// In-place symmetric blend of a pair: p ← λp·p + (1−λp)·q, q ← λq·q + (1−λq)·p, one pass, no copy.
@inline(__always)
func blendPairInPlace<T: MixElement>(_ p: UnsafeMutablePointer<T>, _ q: UnsafeMutablePointer<T>,
                                     _ lp: Float, _ lq: Float, _ n: Int) {
    let wp = 1 - lp, wq = 1 - lq
    var k = 0
    while k < n {
        let a = p[k], b = q[k]
        p[k] = T.mix(a, b, lp, wp)
        q[k] = T.mix(b, a, lq, wq)
        k &+= 1
    }
}

/// A pair where `p` is blended with weight `lp` (p ← lp·p + (1−lp)·q everywhere) and `q` takes `p`'s
/// original pixels inside `bq` (CutMix): one pass over `p`, the box of `q` written on the way.
func blendBoxPairInPlace<T: MixElement>(_ p: UnsafeMutablePointer<T>, _ q: UnsafeMutablePointer<T>, _ lp: Float,
                                        _ bq: MixBox, g: ImageGeometry) {
    let wp = 1 - lp
    let rowLength = g.layout == .nchw ? g.w : g.w &* g.c
    let rows = g.count / rowLength
    let (qa, qb) = rowColumns(bq, g)
    for r in 0..<rows {
        let o = r &* rowLength
        let rp = p + o, rq = q + o
        let y = g.layout == .nchw ? r % g.h : r
        if bq.isEmpty || y < bq.y0 || y >= bq.y1 {
            blendInPlaceKernel(rp, UnsafePointer(rq), lp, wp, rowLength)
            continue
        }
        blendInPlaceKernel(rp, UnsafePointer(rq), lp, wp, qa)
        var k = qa
        while k < qb {
            let a = rp[k], b = rq[k]
            rp[k] = T.mix(a, b, lp, wp)
            rq[k] = a
            k &+= 1
        }
        blendInPlaceKernel(rp + qb, UnsafePointer(rq + qb), lp, wp, rowLength &- qb)
    }
}
