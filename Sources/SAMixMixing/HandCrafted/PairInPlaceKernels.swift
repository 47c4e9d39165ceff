import SAMixCore
import SAMixOps
import SAMixNN
import SAMixData

// In-place kernels for a two-cycle i ↔ j of the partner map (timm's flip pairing, `pair`/`elem` modes):
// both images are rewritten from each other's ORIGINAL pixels in one pass, without saving either
// image to scratch. Each kernel is specialised per element type through `MixElement`.

/// Calls `body(pRowOffset, inP, inQ)` for every row (per channel in NCHW) from the first to the last row
/// either box covers — rows between two disjoint boxes come with both flags false —, where
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

/// Vector width (elements) to which select loops round their span: values outside the boxes are
/// written back unchanged, so a span may grow to whole vectors and the loop runs without a scalar tail.
let selectSpanQuantum = 8

/// `[lo, hi)` widened to multiples of `selectSpanQuantum`, within `[0, rowLength)`.
@inline(__always)
func widenedSpan(_ lo: Int, _ hi: Int, rowLength: Int) -> (Int, Int) {
    let q = selectSpanQuantum
    return (lo & ~(q &- 1), min(rowLength, (hi &+ q &- 1) & ~(q &- 1)))
}

/// Over `[lo, hi)` of one row: `rp[k] ← rq[k]` for k in [pa, pb), `rq[k] ← rp[k]` for k in [qa, qb) (both
/// from the values before the call), everything else rewritten unchanged. Branch-free; indices are
/// compared as Int32 so one vector compare covers 8 lanes.
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

/// `selectRow` for Float rows in explicit 8-lane vectors (whole-vector loads, selects and stores: the
/// auto-vectorised one-way select `d[k] = c ? s[k] : d[k]` was slower than a `memmove` per row in
/// `samix-bench ops`), writing an image's row only when it can change (`writeP` / `writeQ`); on the
/// one-box rows of `exchangeBoxes` this beat the two-way select (`samix-bench ops`, timm-cutmix-elem).
@inline(__always)
func selectRowFloat(_ rp: UnsafeMutablePointer<Float>, _ rq: UnsafeMutablePointer<Float>, _ lo: Int, _ hi: Int,
                    _ pa: Int32, _ pb: Int32, _ qa: Int32, _ qb: Int32, writeP: Bool, writeQ: Bool) {
    var k = lo
    var index = SIMD8<Int32>(0, 1, 2, 3, 4, 5, 6, 7) &+ Int32(truncatingIfNeeded: lo)
    let pa8 = SIMD8<Int32>(repeating: pa), pb8 = SIMD8<Int32>(repeating: pb)
    let qa8 = SIMD8<Int32>(repeating: qa), qb8 = SIMD8<Int32>(repeating: qb)
    while k &+ 8 <= hi {
        let a = UnsafeRawPointer(rp + k).loadUnaligned(as: SIMD8<Float>.self)
        let b = UnsafeRawPointer(rq + k).loadUnaligned(as: SIMD8<Float>.self)
        if writeP {
            let inP = (index .>= pa8) .& (index .< pb8)
            UnsafeMutableRawPointer(rp + k).storeBytes(of: a.replacing(with: b, where: inP), as: SIMD8<Float>.self)
        }
        if writeQ {
            let inQ = (index .>= qa8) .& (index .< qb8)
            UnsafeMutableRawPointer(rq + k).storeBytes(of: b.replacing(with: a, where: inQ), as: SIMD8<Float>.self)
        }
        k &+= 8
        index &+= 8
    }
    if k < hi { selectRow(rp, rq, k, hi, pa, pb, qa, qb) }   // a row length that is not a multiple of 8
}

/// Rows up to this many elements are rewritten with a vector select (`exchangeBoxes`); longer rows with
/// plain copies/swaps of the exact column runs, which are then long enough to run at memory speed
/// (measured with `samix-bench ops`: select wins at 32 px, runs win at 224 px).
let selectRowMaxLength = 64

/// Exchanges the pixels of `box` (all channels) between two images of the same geometry.
@inline(__always)
func swapRegion<T>(_ p: UnsafeMutablePointer<T>, _ q: UnsafeMutablePointer<T>, box: MixBox, g: ImageGeometry) {
    exchangeBoxes(p, q, box, box, g: g)
}

/// CutMix of a pair: `p[bp] ← q[bp]` and `q[bq] ← p[bq]`, both from the original images (`bp == bq` is
/// a plain swap), row by row over the rows either box covers. Short rows: one branch-free select over
/// the union of the column ranges widened to whole vectors (per-run copies of a few values each cost more
/// in loop overhead and scalar tails than the extra unchanged stores). Long rows: inside `bp ∩ bq` the
/// values are swapped, in the rest of each box copied one way, so no original is overwritten unread.
@inline(__always)
func exchangeBoxes<T>(_ p: UnsafeMutablePointer<T>, _ q: UnsafeMutablePointer<T>, _ bp: MixBox, _ bq: MixBox,
                      g: ImageGeometry) {
    let (pa, pb) = rowColumns(bp, g), (qa, qb) = rowColumns(bq, g)
    let rowLength = g.layout == .nchw ? g.w : g.w &* g.c
    if rowLength > selectRowMaxLength {
        let lo = max(pa, qa), hi = min(pb, qb)
        forEachRowOfUnion(bp, bq, in: g) { o, inP, inQ in
            let rp = p + o, rq = q + o
            if inP && inQ && lo < hi {
                swapRun(rp, rq, lo, hi)
                copyRun(rp, rq, pa, lo); copyRun(rp, rq, hi, pb)
                copyRun(rq, rp, qa, lo); copyRun(rq, rp, hi, qb)
            } else {
                // Disjoint column ranges (or one box on this row): the copies never touch the same value.
                if inP { copyRun(rp, rq, pa, pb) }
                if inQ { copyRun(rq, rp, qa, qb) }
            }
        }
        return
    }
    let both = widenedSpan(min(pa, qa), max(pb, qb), rowLength: rowLength)
    let onlyP = widenedSpan(pa, pb, rowLength: rowLength), onlyQ = widenedSpan(qa, qb, rowLength: rowLength)
    let pa32 = Int32(pa), pb32 = Int32(pb), qa32 = Int32(qa), qb32 = Int32(qb)
    if T.self == Float.self {
        let fp = UnsafeMutableRawPointer(p).assumingMemoryBound(to: Float.self)
        let fq = UnsafeMutableRawPointer(q).assumingMemoryBound(to: Float.self)
        forEachRowOfUnion(bp, bq, in: g) { o, inP, inQ in
            if inP && inQ {
                selectRow(fp + o, fq + o, both.0, both.1, pa32, pb32, qa32, qb32)   // auto-vectorised: as fast
            } else if inP {
                selectRowFloat(fp + o, fq + o, onlyP.0, onlyP.1, pa32, pb32, 0, 0, writeP: true, writeQ: false)
            } else if inQ {
                selectRowFloat(fp + o, fq + o, onlyQ.0, onlyQ.1, 0, 0, qa32, qb32, writeP: false, writeQ: true)
            }
        }
        return
    }
    forEachRowOfUnion(bp, bq, in: g) { o, inP, inQ in
        let rp = p + o, rq = q + o
        if inP && inQ {
            selectRow(rp, rq, both.0, both.1, pa32, pb32, qa32, qb32)
        } else if inP {
            selectRow(rp, rq, onlyP.0, onlyP.1, pa32, pb32, 0, 0)
        } else if inQ {
            selectRow(rp, rq, onlyQ.0, onlyQ.1, 0, 0, qa32, qb32)
        }   // else: a row between two boxes that share no row
    }
}

@inline(__always)
func copyRun<T>(_ dst: UnsafeMutablePointer<T>, _ src: UnsafePointer<T>, _ from: Int, _ to: Int) {
    if to > from { (dst + from).update(from: src + from, count: to &- from) }
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
/// original pixels inside `bq` (CutMix): one pass over `p`, `q`'s box columns written on the way. Short
/// rows (≤ `selectRowMaxLength`) of the box are one fused loop that rewrites `q`'s whole row with a select
/// (faster at 32 px than three segments, `samix-bench ops --methods timm-elem`); long rows use segments.
func blendBoxPairInPlace<T: MixElement>(_ p: UnsafeMutablePointer<T>, _ q: UnsafeMutablePointer<T>, _ lp: Float,
                                        _ bq: MixBox, g: ImageGeometry) {
    let wp = 1 - lp
    let rowLength = g.layout == .nchw ? g.w : g.w &* g.c
    let rows = g.count / rowLength
    let (qa, qb) = rowColumns(bq, g)
    let fused = rowLength <= selectRowMaxLength
    let qa32 = Int32(truncatingIfNeeded: qa), qb32 = Int32(truncatingIfNeeded: qb)   // exact when fused
    for r in 0..<rows {
        let o = r &* rowLength
        let rp = p + o, rq = q + o
        let y = g.layout == .nchw ? r % g.h : r
        if bq.isEmpty || y < bq.y0 || y >= bq.y1 {
            blendInPlaceKernel(rp, UnsafePointer(rq), lp, wp, rowLength)
        } else if fused {
            var k = 0
            var k32: Int32 = 0
            while k < rowLength {
                let a = rp[k], b = rq[k]
                rp[k] = T.mix(a, b, lp, wp)
                rq[k] = (k32 >= qa32 && k32 < qb32) ? a : b
                k &+= 1
                k32 &+= 1
            }
        } else {
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
}
