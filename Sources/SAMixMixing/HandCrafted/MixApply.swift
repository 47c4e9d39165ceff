import Synchronization
import SAMixCore
import SAMixOps
import SAMixNN
import SAMixData

// Applying a MixResult to an image batch: per-image kernels plus an aliasing-safe scheduler.
//
// Out of place (output ≠ input): every output image depends only on the input, so images run in
// parallel. In place (output == input), sample t needs the ORIGINAL x[π(t)], which another sample may
// already have overwritten. A permutation π is decomposed into cycles; processing a cycle in order
// t, π(t), π²(t), … reads each source before it is written, except for the last element, which needs the
// cycle start: only that image — and only the region the op reads (the box for CutMix) — is saved
// first. Long cycles are split between threads; an image read across a split is saved as well. Two-cycles
// of global blends (timm's flip pairing) are mixed in one pass without any copy. A non-permutation map
// saves every source image first.

@usableFromInline
struct ImageGeometry {
    let c: Int, h: Int, w: Int
    let layout: PixelLayout
    var plane: Int { h &* w }
    var count: Int { c &* h &* w }
}

/// Elements of work below which kernels run on the calling thread only: waking the workers costs
/// ~10 µs, more than a single-threaded pass over a 1.5 MB CIFAR batch saves (measured, 2 cores).
enum MixApplyTuning {
    /// Tests lower it to exercise the multi-worker scheduler on small batches.
    static var parallelThreshold: Int {
        get { threshold.load(ordering: .relaxed) }
        set { threshold.store(newValue, ordering: .relaxed) }
    }
    private static let threshold = Atomic<Int>(1 << 19)
}

extension MixResult {
    /// Applies this result to a batch (`input` → `output`; the two may be the same memory).
    /// Throws if the shape does not match the result or the buffers partially overlap.
    public func apply<T: MixElement>(input: UnsafePointer<T>, output: UnsafeMutablePointer<T>,
                                     shape: ImageBatchShape) throws {
        // Public generics called from another module (tests, the C ABI) run unspecialised, with a
        // witness-table call per pixel; dispatch to the two concrete element types so the kernels below
        // are specialised and vectorised.
        if T.self == Float.self {
            try applySpecialised(input: UnsafeRawPointer(input).assumingMemoryBound(to: Float.self),
                                 output: UnsafeMutableRawPointer(output).assumingMemoryBound(to: Float.self), shape: shape)
        } else if T.self == UInt8.self {
            try applySpecialised(input: UnsafeRawPointer(input).assumingMemoryBound(to: UInt8.self),
                                 output: UnsafeMutableRawPointer(output).assumingMemoryBound(to: UInt8.self), shape: shape)
        } else {
            try applySpecialised(input: input, output: output, shape: shape)
        }
    }

    func applySpecialised<T: MixElement>(input: UnsafePointer<T>, output: UnsafeMutablePointer<T>,
                                         shape: ImageBatchShape) throws {
        try requireShape(shape.batch == batch && shape.height == height && shape.width == width,
                         "MixResult is for B=\(batch) H=\(height) W=\(width), batch is B=\(shape.batch) H=\(shape.height) W=\(shape.width)")
        let g = ImageGeometry(c: shape.channels, h: shape.height, w: shape.width, layout: shape.layout)
        let n = g.count
        let total = shape.elementCount
        let inRaw = UnsafeRawPointer(input), outRaw = UnsafeRawPointer(UnsafePointer(output))
        let bytes = total &* MemoryLayout<T>.stride
        let inPlace = inRaw == outRaw
        if !inPlace {
            let disjoint = outRaw + bytes <= inRaw || inRaw + bytes <= outRaw
            try require(disjoint, "output buffer partially overlaps the input buffer")
        }
        // A sample paired with itself stays unchanged under any elementwise op.
        var ops = self.ops
        for t in 0..<batch where partner[t] == t && ops[t].isElementwise { ops[t] = .keep }
        // Threads only pay off when enough pixels are touched (a CutMix box is a small part of the batch).
        var work = 0
        for t in 0..<batch {
            switch ops[t] {
            case .keep: work &+= inPlace ? 0 : n
            case .box(let b): work &+= b.area &* g.c &+ (inPlace ? 0 : n)
            default: work &+= n
            }
        }
        let parallel = batch >= 2 && work >= MixApplyTuning.parallelThreshold

        try masks.withUnsafeBufferPointer { mbuf in
            let maskBase = mbuf.baseAddress
            if !inPlace {
                parallelFor(batch, minChunk: parallel ? 1 : batch) { t in
                    let s = self.partner[t]
                    applyImageOp(ops[t], dst: output + t &* n, a: input + t &* n, b: input + s &* n, g: g, masks: maskBase)
                }
                return
            }
            if !parallel, try blendCyclesInPlace(images: output, ops: ops, g: g) { return }
            try applyInPlace(images: output, ops: ops, g: g, masks: maskBase, parallel: parallel)
        }
    }

    /// Applies this result in place to `images`.
    public func apply<T: MixElement>(inPlace images: UnsafeMutablePointer<T>, shape: ImageBatchShape) throws {
        try apply(input: UnsafePointer(images), output: images, shape: shape)
    }

    private enum Unit {
        case single(Int)
        /// A two-cycle mixed in one pass without saving either image (kernels in PairInPlaceKernels.swift):
        /// two blends, two boxes, or one blend and one box.
        case pair(Int, Int)
    }

    /// Whether a two-cycle with these ops has a one-pass kernel.
    private static func hasPairKernel(_ a: SampleMix, _ b: SampleMix) -> Bool {
        switch (a, b) {
        case (.blend, .blend), (.box, .box), (.blend, .box), (.box, .blend): return true
        default: return false
        }
    }

    /// In-place blends on one thread (Mixup with any permutation of partners): walks every cycle of π
    /// once, two-cycles with their one-pass pair kernel, longer cycles image by image with only the cycle's
    /// first image saved. Same values as `applyInPlace` (each output depends only on the originals, through
    /// the same kernels) without its scheduling arrays. Returns false, touching nothing, when an op is not
    /// a blend or keep, or π is not a permutation. Self-paired samples must already be `.keep`.
    private func blendCyclesInPlace<T: MixElement>(images: UnsafeMutablePointer<T>, ops: [SampleMix],
                                                   g: ImageGeometry) throws -> Bool {
        for op in ops {
            switch op {
            case .keep, .blend: continue
            default: return false
            }
        }
        let B = batch, n = g.count
        return try withUnsafeTemporaryAllocation(of: Bool.self, capacity: B) { buffer -> Bool in
            guard let done = buffer.baseAddress else { return false }
            done.initialize(repeating: false, count: B)
            for s in partner {
                if done[s] { return false }
                done[s] = true
            }
            done.update(repeating: false, count: B)
            var scratch: UnsafeMutablePointer<T>? = nil
            let scratchFloats = (n &* MemoryLayout<T>.stride &+ 3) / 4
            defer {
                if let scratch {
                    BufferPool.shared.release(UnsafeMutableRawPointer(scratch).assumingMemoryBound(to: Float.self),
                                              count: scratchFloats)
                }
            }
            for start in 0..<B where !done[start] {
                done[start] = true
                let second = partner[start]
                if second == start { continue }   // a fixed point: `.keep`
                let p = images + start &* n, q = images + second &* n
                if partner[second] == start {
                    done[second] = true
                    if !mixPairInPlace(p, q, ops[start], ops[second], g: g) {
                        // At most one side blends (the other keeps): it reads the untouched partner.
                        applyImageOp(ops[start], dst: p, a: UnsafePointer(p), b: UnsafePointer(q), g: g, masks: nil)
                        applyImageOp(ops[second], dst: q, a: UnsafePointer(q), b: UnsafePointer(p), g: g, masks: nil)
                    }
                    continue
                }
                // A longer cycle start → second → … → last → start: the last image reads the start's original.
                var last = second
                while partner[last] != start { last = partner[last] }
                var saved: UnsafePointer<T>? = nil
                if case .blend = ops[last] {
                    if scratch == nil {
                        guard let memory = BufferPool.shared.allocate(max(scratchFloats, 1)) else {
                            throw SAMixError.outOfMemory("cannot allocate \(scratchFloats * 4) bytes of mixing scratch")
                        }
                        scratch = UnsafeMutableRawPointer(memory).bindMemory(to: T.self, capacity: n)
                    }
                    if let scratch {
                        scratch.update(from: UnsafePointer(p), count: n)
                        saved = UnsafePointer(scratch)
                    }
                }
                var t = start
                while true {
                    let s = partner[t]
                    done[t] = true
                    let dst = images + t &* n
                    let src: UnsafePointer<T> = s == start ? (saved ?? UnsafePointer(p)) : UnsafePointer(images + s &* n)
                    applyImageOp(ops[t], dst: dst, a: UnsafePointer(dst), b: src, g: g, masks: nil)
                    if s == start { break }
                    t = s
                }
            }
            return true
        }
    }

    private func applyInPlace<T: MixElement>(images: UnsafeMutablePointer<T>, ops: [SampleMix], g: ImageGeometry,
                                             masks: UnsafePointer<Float>?, parallel: Bool) throws {
        let n = g.count
        let B = batch
        // Is π a permutation?
        var seen = [Bool](repeating: false, count: B)
        var isPerm = true
        for s in partner {
            if seen[s] { isPerm = false; break }
            seen[s] = true
        }
        var units: [Unit] = []
        units.reserveCapacity(B)
        if isPerm {
            var visited = [Bool](repeating: false, count: B)
            var cycle: [Int] = []   // reused: one allocation per call, not one per cycle
            cycle.reserveCapacity(B)
            for start in 0..<B where !visited[start] {
                cycle.removeAll(keepingCapacity: true)
                var t = start
                while !visited[t] {
                    visited[t] = true
                    cycle.append(t)
                    t = partner[t]
                }
                if cycle.count == 1 {
                    if case .keep = ops[start] { continue }
                    units.append(.single(start))
                } else if cycle.count == 2, Self.hasPairKernel(ops[cycle[0]], ops[cycle[1]]) {
                    units.append(.pair(cycle[0], cycle[1]))
                } else {
                    for t in cycle { if case .keep = ops[t] {} else { units.append(.single(t)) } }
                }
            }
        } else {
            for t in 0..<B { if case .keep = ops[t] {} else { units.append(.single(t)) } }
        }
        if units.isEmpty { return }

        // Split the unit list into chunks (one per worker) and find which sources must be saved.
        let chunks = parallel ? max(1, min(Engine.threads, units.count)) : 1
        var chunkOf = [Int](repeating: -1, count: B)   // chunk of a single unit's target
        var posOf = [Int](repeating: -1, count: B)
        var bounds: [Range<Int>] = []
        let base = units.count / chunks, extra = units.count % chunks
        var start = 0
        for c in 0..<chunks {
            let len = base + (c < extra ? 1 : 0)
            bounds.append(start..<(start + len))
            for p in start..<(start + len) {
                switch units[p] {
                case .single(let t): chunkOf[t] = c; posOf[t] = p
                case .pair(let i, let j): chunkOf[i] = c; posOf[i] = p; chunkOf[j] = c; posOf[j] = p
                }
            }
            start += len
        }
        // saveSlot[s] ≥ 0: image s is read from scratch slot saveSlot[s]; region = union of readers' needs.
        var saveSlot = [Int](repeating: -1, count: B)
        var saveRegion: [MixBox?] = []
        var saveSource: [Int] = []
        let full = MixBox(y0: 0, y1: g.h, x0: 0, x1: g.w)
        for (c, r) in bounds.enumerated() {
            for p in r {
                guard case .single(let t) = units[p] else { continue }
                let s = partner[t]
                var neverWritten = false
                if case .keep = ops[s] { neverWritten = true }
                let live = neverWritten || (isPerm && s != t && chunkOf[s] == c && posOf[s] > p)
                if live { continue }
                let need: MixBox?
                switch ops[t] {
                case .keep: need = nil
                case .box(let b): need = b.isEmpty ? nil : b
                default: need = full
                }
                guard let region = need else { continue }
                if saveSlot[s] < 0 {
                    saveSlot[s] = saveRegion.count
                    saveRegion.append(region)
                    saveSource.append(s)
                } else if let old = saveRegion[saveSlot[s]] {
                    saveRegion[saveSlot[s]] = MixBox(y0: min(old.y0, region.y0), y1: max(old.y1, region.y1),
                                                     x0: min(old.x0, region.x0), x1: max(old.x1, region.x1))
                }
            }
        }
        // Saved sources live in the engine's caching pool: a fresh multi-megabyte allocation per call
        // would be mmap'ed and page-faulted every time.
        let scratchFloats = (saveSource.count &* n &* MemoryLayout<T>.stride &+ 3) / 4
        guard let scratchMemory = BufferPool.shared.allocate(max(scratchFloats, 1)) else {
            throw SAMixError.outOfMemory("cannot allocate \(scratchFloats * 4) bytes of mixing scratch")
        }
        defer { BufferPool.shared.release(scratchMemory, count: max(scratchFloats, 1)) }
        let scratch = UnsafeMutableRawPointer(scratchMemory).bindMemory(to: T.self, capacity: saveSource.count &* n)
        for k in 0..<saveSource.count {
            if let region = saveRegion[k] {
                copyRegion(from: UnsafePointer(images + saveSource[k] &* n), to: scratch + k &* n, box: region, g: g)
            }
        }
        let unitsCopy = units
        parallelChunks(chunks, minChunk: 1) { _, cr in
            for c in cr {
                for p in bounds[c] {
                    switch unitsCopy[p] {
                    case .pair(let i, let j):
                        _ = mixPairInPlace(images + i &* n, images + j &* n, ops[i], ops[j], g: g)
                    case .single(let t):
                        let s = self.partner[t]
                        let src: UnsafePointer<T> = saveSlot[s] >= 0 ? UnsafePointer(scratch + saveSlot[s] &* n)
                                                                     : UnsafePointer(images + s &* n)
                        let dst = images + t &* n
                        applyImageOp(ops[t], dst: dst, a: UnsafePointer(dst), b: src, g: g, masks: masks)
                    }
                }
            }
        }
    }
}

/// Mixes a two-cycle i ↔ j of the partner map in place with its one-pass kernel (PairInPlaceKernels.swift),
/// `p` = image i with op `a`, `q` = image j with op `b`, both from each other's original pixels. Returns false
/// (and touches nothing) when the pair has no such kernel (`hasPairKernel`).
@inline(__always)
func mixPairInPlace<T: MixElement>(_ p: UnsafeMutablePointer<T>, _ q: UnsafeMutablePointer<T>, _ a: SampleMix,
                                   _ b: SampleMix, g: ImageGeometry) -> Bool {
    switch (a, b) {
    case (.blend(let lp), .blend(let lq)):
        blendPairInPlace(p, q, lp, lq, g.count)
    case (.box(let bp), .box(let bq)):
        if bp == bq { swapRegion(p, q, box: bp, g: g) } else { exchangeBoxes(p, q, bp, bq, g: g) }
    case (.blend(let lp), .box(let bq)):
        blendBoxPairInPlace(p, q, lp, bq, g: g)
    case (.box(let bp), .blend(let lq)):
        blendBoxPairInPlace(q, p, lq, bp, g: g)
    default:
        return false
    }
    return true
}

// MARK: - per-image kernels

/// Calls `body(offset, length)` for every contiguous run of elements covering `box` (all channels)
/// in an image of geometry `g`: one run per channel row in NCHW, one per row in NHWC.
@inline(__always)
func forEachRun(of box: MixBox, in g: ImageGeometry, _ body: (Int, Int) -> Void) {
    if box.isEmpty { return }
    switch g.layout {
    case .nchw:
        let len = box.x1 &- box.x0
        for c in 0..<g.c {
            for y in box.y0..<box.y1 { body(c &* g.plane &+ y &* g.w &+ box.x0, len) }
        }
    case .nhwc:
        let len = (box.x1 &- box.x0) &* g.c
        for y in box.y0..<box.y1 { body((y &* g.w &+ box.x0) &* g.c, len) }
    }
}

/// Copies the pixels of `box` (all channels) from `src` to `dst` (same image geometry).
@inline(__always)
func copyRegion<T>(from src: UnsafePointer<T>, to dst: UnsafeMutablePointer<T>, box: MixBox, g: ImageGeometry) {
    forEachRun(of: box, in: g) { o, len in (dst + o).update(from: src + o, count: len) }
}

/// dst = wa·a + wb·b elementwise over `n` values (dst may equal a or b).
@inline(__always)
func blendKernel<T: MixElement>(_ dst: UnsafeMutablePointer<T>, _ a: UnsafePointer<T>, _ b: UnsafePointer<T>,
                                _ wa: Float, _ wb: Float, _ n: Int) {
    var k = 0
    while k < n {
        dst[k] = T.mix(a[k], b[k], wa, wb)
        k &+= 1
    }
}

/// dst = wa·dst + wb·b elementwise over `n` values.
@inline(__always)
func blendInPlaceKernel<T: MixElement>(_ dst: UnsafeMutablePointer<T>, _ b: UnsafePointer<T>,
                                       _ wa: Float, _ wb: Float, _ n: Int) {
    var k = 0
    while k < n {
        dst[k] = T.mix(dst[k], b[k], wa, wb)
        k &+= 1
    }
}

/// dst = (1 − M)·dst + M·b with M an H×W partner-weight map broadcast over channels.
@inline(__always)
func maskInPlaceKernel<T: MixElement>(_ dst: UnsafeMutablePointer<T>, _ b: UnsafePointer<T>,
                                      _ m: UnsafePointer<Float>, _ g: ImageGeometry) {
    let plane = g.plane
    switch g.layout {
    case .nchw:
        for c in 0..<g.c {
            let o = c &* plane
            let d = dst + o, bb = b + o
            var k = 0
            while k < plane {
                let w = m[k]
                d[k] = T.mix(d[k], bb[k], 1 - w, w)
                k &+= 1
            }
        }
    case .nhwc:
        let C = g.c
        var k = 0
        while k < plane {
            let w = m[k], v = 1 - w
            let o = k &* C
            var c = 0
            while c < C {
                dst[o &+ c] = T.mix(dst[o &+ c], b[o &+ c], v, w)
                c &+= 1
            }
            k &+= 1
        }
    }
}

/// Applies one sample's op: `dst` ← op(a = own original, b = partner original). `dst` may equal `a`
/// (never `b`, except when `b` equals `a` for an elementwise op).
func applyImageOp<T: MixElement>(_ op: SampleMix, dst: UnsafeMutablePointer<T>, a: UnsafePointer<T>,
                                 b: UnsafePointer<T>, g: ImageGeometry, masks: UnsafePointer<Float>?) {
    let n = g.count
    let same = UnsafePointer(dst) == a
    switch op {
    case .keep:
        if !same { dst.update(from: a, count: n) }
    case .blend(let l):
        // dst == a would fail LLVM's runtime alias check and run the scalar loop: use the in-place form.
        if same { blendInPlaceKernel(dst, b, l, 1 - l, n) } else { blendKernel(dst, a, b, l, 1 - l, n) }
    case .box(let box):
        if !same { dst.update(from: a, count: n) }
        copyRegion(from: b, to: dst, box: box, g: g)
    case .mask(let k):
        guard let masks = masks else { if !same { dst.update(from: a, count: n) }; return }
        if same { maskInPlaceKernel(dst, b, masks + k &* g.plane, g) } else { maskKernel(dst, a, b, masks + k &* g.plane, g) }
    case .resizedBox(let box):
        if !same { dst.update(from: a, count: n) }
        resizedPasteKernel(dst, b, box, g)
    }
}

/// dst = (1 − M)·a + M·b with M an H×W partner-weight map broadcast over channels.
@inline(__always)
func maskKernel<T: MixElement>(_ dst: UnsafeMutablePointer<T>, _ a: UnsafePointer<T>, _ b: UnsafePointer<T>,
                               _ m: UnsafePointer<Float>, _ g: ImageGeometry) {
    let plane = g.plane
    switch g.layout {
    case .nchw:
        for c in 0..<g.c {
            let o = c &* plane
            let d = dst + o, aa = a + o, bb = b + o
            var k = 0
            while k < plane {
                let w = m[k]
                d[k] = T.mix(aa[k], bb[k], 1 - w, w)
                k &+= 1
            }
        }
    case .nhwc:
        let C = g.c
        if C == 3 {
            var k = 0
            while k < plane {
                let w = m[k], v = 1 - w
                let o = k &* 3
                dst[o] = T.mix(a[o], b[o], v, w)
                dst[o &+ 1] = T.mix(a[o &+ 1], b[o &+ 1], v, w)
                dst[o &+ 2] = T.mix(a[o &+ 2], b[o &+ 2], v, w)
                k &+= 1
            }
        } else {
            var k = 0
            while k < plane {
                let w = m[k], v = 1 - w
                let o = k &* C
                var c = 0
                while c < C {
                    dst[o &+ c] = T.mix(a[o &+ c], b[o &+ c], v, w)
                    c &+= 1
                }
                k &+= 1
            }
        }
    }
}

/// Pastes the whole image `b`, resized to the box with nearest neighbour (PyTorch `interpolate(mode="nearest")`:
/// source index ⌊i·in/out⌋), into `box` of `dst`. `b` must not alias `dst`.
func resizedPasteKernel<T: MixElement>(_ dst: UnsafeMutablePointer<T>, _ b: UnsafePointer<T>, _ box: MixBox,
                                       _ g: ImageGeometry) {
    if box.isEmpty { return }
    let bh = box.y1 - box.y0, bw = box.x1 - box.x0
    var sx = [Int](repeating: 0, count: bw)
    for x in 0..<bw { sx[x] = min((x * g.w) / bw, g.w - 1) }
    sx.withUnsafeBufferPointer { sxp in
        for y in 0..<bh {
            let sy = min((y * g.h) / bh, g.h - 1)
            switch g.layout {
            case .nchw:
                for c in 0..<g.c {
                    let rowY: Int = box.y0 &+ y
                    let dOff: Int = c &* g.plane &+ rowY &* g.w &+ box.x0
                    let sOff: Int = c &* g.plane &+ sy &* g.w
                    let drow = dst + dOff
                    let srow = b + sOff
                    for x in 0..<bw { drow[x] = srow[sxp[x]] }
                }
            case .nhwc:
                let C = g.c
                let rowY: Int = box.y0 &+ y
                let dOff: Int = (rowY &* g.w &+ box.x0) &* C
                let sOff: Int = sy &* g.w &* C
                let drow = dst + dOff
                let srow = b + sOff
                for x in 0..<bw {
                    let so = sxp[x] &* C, d = x &* C
                    for c in 0..<C { drow[d &+ c] = srow[so &+ c] }
                }
            }
        }
    }
}
