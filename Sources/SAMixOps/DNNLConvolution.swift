import CDNNL
import Glibc
import Synchronization
import SAMixCore

/// Which implementation `conv2d` / `conv2dBackward` use: oneDNN (default where its primitives can be
/// created) or samix's im2col + OpenBLAS path. `SAMIX_CONV=im2col|dnnl` selects it at start-up.
enum ConvBackend { case im2col, dnnl }

/// oneDNN (Debian's libdnnl, runtime ISA dispatch: AVX-512 where present, AVX2 elsewhere) convolutions
/// on samix's NCHW/OIHW tensors. Primitives use the layouts oneDNN prefers (`format_tag_any`, e.g.
/// nChw16c); plain tensors are reordered in and out around each call. Primitive descriptors,
/// primitives and reorders are created once per (geometry, bias, thread count) and cached behind a
/// lock; scratchpads are user-managed: one shared arena sized to the largest scratchpad (a call
/// that finds it busy on another thread takes a pool buffer), so cached primitives may run
/// concurrently. oneDNN runs its own OpenMP team of `Engine.threads` threads (set per call: the
/// OpenMP thread count is per calling thread). Results are bitwise reproducible for a fixed thread
/// count on a given machine (oneDNN's reductions — backward weights over the batch — use a fixed
/// partition and order), and agree with the im2col path to float rounding.
enum DNNLConvolution {
    /// The convolution path (`SAMIX_CONV=im2col` selects im2col + SGEMM; tests switch it).
    static var backend: ConvBackend {
        get { selectedBackend.withLock { $0 } }
        set { selectedBackend.withLock { $0 = newValue } }
    }
    private static let selectedBackend = Mutex<ConvBackend>({
        if let s = getenv("SAMIX_CONV"), String(cString: s) == "im2col" { return .im2col }
        return .dnnl
    }())

    /// The oneDNN CPU engine (thread-safe in oneDNN; nil when it cannot be created).
    private struct EngineHandle: @unchecked Sendable { let pointer: OpaquePointer? }
    private static let engineHandle: EngineHandle = {
        var e: OpaquePointer?
        return EngineHandle(pointer: dnnl_engine_create(&e, dnnl_cpu, 0) == dnnl_success ? e : nil)
    }()
    private static var engine: OpaquePointer? { engineHandle.pointer }

    /// `omp_set_num_threads` of the OpenMP runtime libdnnl links (nil for a TBB/threadpool build).
    private static let ompSetNumThreads: (@convention(c) (Int32) -> Void)? = {
        guard let sym = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "omp_set_num_threads") else { return nil }
        return unsafeBitCast(sym, to: (@convention(c) (Int32) -> Void).self)
    }()

    private struct Key: Hashable {
        let n, cin, h, w, cout, kh, kw, stride, padding: Int
        let bias: Bool, threads: Int
    }

    /// Cached primitives per geometry (nil: oneDNN cannot do it); also serialises lazy backward creation.
    private static let plans = Mutex<[Key: Plan?]>([:])

    private static func plan(_ g: Conv2DGeometry, bias: Bool) -> Plan? {
        guard backend == .dnnl, let engine else { return nil }
        let key = Key(n: g.n, cin: g.cin, h: g.h, w: g.w, cout: g.cout, kh: g.kh, kw: g.kw,
                      stride: g.stride, padding: g.padding, bias: bias, threads: ForkedChild.isForked ? 1 : Engine.threads)
        return plans.withLock { plans in
            if let p = plans[key] { return p }
            setThreads()
            let p = try? Plan(g, bias: bias, engine: engine)
            plans[key] = p
            return p
        }
    }

    @inline(__always)
    private static func setThreads() {
        ForkedChild.watch()
        ompSetNumThreads?(Int32(ForkedChild.isForked ? 1 : Engine.threads))   // see ForkedChild
    }

    /// y = conv(x, w) + b on plain tensors; false when oneDNN is off or cannot do this geometry.
    static func forward(x: UnsafePointer<Float>, weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                        y: UnsafeMutablePointer<Float>, geometry g: Conv2DGeometry) throws -> Bool {
        guard let p = plan(g, bias: bias != nil) else { return false }
        setThreads()
        try p.forward(x: x, w: weight, b: bias, y: y)
        return true
    }

    /// dx, dW, db (each optional) of the convolution; false when oneDNN is off or cannot do it.
    static func backward(x: UnsafePointer<Float>, weight: UnsafePointer<Float>, dy: UnsafePointer<Float>,
                         dx: UnsafeMutablePointer<Float>?, dW: UnsafeMutablePointer<Float>?,
                         db: UnsafeMutablePointer<Float>?, hasBias: Bool, geometry g: Conv2DGeometry) throws -> Bool {
        guard let p = plan(g, bias: hasBias) else { return false }
        let made: Plan.Backward? = plans.withLock { _ in
            setThreads()
            return p.backward()
        }
        guard let bwd = made else { return false }
        setThreads()
        try p.run(bwd, x: x, w: weight, dy: dy, dx: dx, dW: dW, db: db)
        return true
    }
}

private struct DNNLError: Error { let status: dnnl_status_t; let what: String }

@inline(__always)
private func check(_ s: dnnl_status_t, _ what: @autoclosure () -> String) throws {
    if s != dnnl_success { throw DNNLError(status: s, what: what()) }
}

private func plainDesc(_ dims: [Int], _ tag: dnnl_format_tag_t) throws -> dnnl_memory_desc_t {
    var md = dnnl_memory_desc_t()
    let d = dims.map { Int64($0) }
    try check(dnnl_memory_desc_init_by_tag(&md, Int32(d.count), d, dnnl_f32, tag), "memory desc \(dims)")
    return md
}

private func userScratchpadAttr() throws -> OpaquePointer? {
    var attr: OpaquePointer?
    try check(dnnl_primitive_attr_create(&attr), "attr")
    try check(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user), "scratchpad mode")
    return attr
}

/// The scratchpad memory of every oneDNN primitive: scratchpads live only for one execute, so a
/// single buffer grown to the largest request serves them all (keeping one per size in the pool held
/// ~450 MB of idle Winograd scratch in a ResNet-18 step). A call that finds the arena in use on
/// another thread gets a pool buffer instead.
private final class ScratchArena: Sendable {
    static let shared = ScratchArena()

    private struct Block: @unchecked Sendable {
        var pointer: UnsafeMutablePointer<Float>?
        var floats = 0
    }
    private let block = Mutex(Block())

    func withScratch<R>(bytes: Int, _ body: (UnsafeMutableRawPointer?) throws -> R) throws -> R {
        if bytes == 0 { return try body(nil) }
        let floats = (bytes + 3) / 4
        let outcome: Result<R, Error>? = block.withLockIfAvailable { b in
            if b.floats < floats {
                if let p = b.pointer { BufferPool.shared.release(p, count: b.floats); b.pointer = nil; b.floats = 0 }
                guard let p = BufferPool.shared.allocate(floats) else {
                    return .failure(SAMixError.outOfMemory("cannot allocate \(bytes) bytes of oneDNN scratchpad"))
                }
                b.pointer = p
                b.floats = floats
            }
            do { return .success(try body(UnsafeMutableRawPointer(b.pointer))) } catch { return .failure(error) }
        }
        if let outcome { return try outcome.get() }
        let own = try Buffer(bytes: bytes)
        return try body(own.pointer)
    }

    /// Gives the arena's block back to the pool (the next call grows a new one as needed).
    func release() {
        block.withLock { b in
            if let p = b.pointer { BufferPool.shared.release(p, count: b.floats) }
            b = Block()
        }
    }
}

extension DNNLConvolution {
    /// Releases the scratchpad arena (see `Engine.releaseCachedMemory`).
    static func releaseScratch() { ScratchArena.shared.release() }
}

/// A primitive with its scratchpad size.
private struct Prim {
    let prim: OpaquePointer?
    let scratch: dnnl_memory_desc_t
    let scratchBytes: Int

    init(_ pd: OpaquePointer?) throws {
        var p: OpaquePointer?
        try check(dnnl_primitive_create(&p, pd), "primitive")
        prim = p
        scratch = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0).pointee
        scratchBytes = dnnl_memory_desc_get_size([scratch])
    }
}

/// Plain ↔ oneDNN-layout reorder (nil primitive when the layouts already agree).
private struct Reorder {
    let from: dnnl_memory_desc_t, to: dnnl_memory_desc_t
    let prim: Prim?
    var bytes: Int { dnnl_memory_desc_get_size([to]) }

    init(_ from: dnnl_memory_desc_t, _ to: dnnl_memory_desc_t, engine: OpaquePointer) throws {
        self.from = from; self.to = to
        var a = from, b = to
        if dnnl_memory_desc_equal(&a, &b) != 0 { prim = nil; return }
        let attr = try userScratchpadAttr()
        defer { dnnl_primitive_attr_destroy(attr) }
        var pd: OpaquePointer?
        try check(dnnl_reorder_primitive_desc_create(&pd, &a, engine, &b, engine, attr), "reorder")
        defer { dnnl_primitive_desc_destroy(pd) }
        prim = try Prim(pd)
    }
}

/// A 64-byte-aligned work buffer from the engine's caching `BufferPool`: the layout copies and
/// scratchpads of one call are handed to the next call of the same shape, so steady-state steps
/// neither page-fault nor grow the heap.
private final class Buffer {
    let pointer: UnsafeMutableRawPointer?
    private let floats: Int
    init(bytes: Int) throws {
        floats = (bytes + 3) / 4
        if bytes == 0 { pointer = nil; return }
        guard let p = BufferPool.shared.allocate(floats) else {
            throw SAMixError.outOfMemory("cannot allocate \(bytes) bytes for a oneDNN work buffer")
        }
        pointer = UnsafeMutableRawPointer(p)
    }
    deinit {
        if let pointer { BufferPool.shared.release(pointer.assumingMemoryBound(to: Float.self), count: floats) }
    }
}

/// oneDNN primitives of one geometry. Shared across threads: primitives are immutable once created
/// and each execute passes its own memory objects; the lazily created backward primitives are made
/// under `DNNLConvolution.plans`' lock.
private final class Plan: @unchecked Sendable {
    let engine: OpaquePointer
    let g: Conv2DGeometry
    let hasBias: Bool
    let strides: [Int64], padL: [Int64], padR: [Int64]
    let xP: dnnl_memory_desc_t, wP: dnnl_memory_desc_t, yP: dnnl_memory_desc_t, bP: dnnl_memory_desc_t
    let fwdPD: OpaquePointer?
    let fwd: Prim
    let xIn: Reorder, wIn: Reorder, yOut: Reorder
    private var bwd: Backward?
    private var bwdFailed = false

    struct Backward {
        let data: Prim, weights: Prim
        let dyD: Reorder, wD: Reorder, dxOut: Reorder
        let xW: Reorder, dyW: Reorder, dwOut: Reorder
    }

    /// oneDNN's algorithm for this geometry. Winograd F(4×4, 3×3) for 3×3 stride-1 convolutions with
    /// at least `winogradMinChannels` input and output channels (measured: ResNet-18's 64–512-channel
    /// layers train 1.2–1.4× faster per step; ResNet-20's 16/32-channel ones slower), direct otherwise.
    /// `SAMIX_CONV_ALGO=direct` disables Winograd, `=winograd` uses it for every 3×3 stride-1 layer,
    /// `SAMIX_WINOGRAD_MIN_CHANNELS=N` moves the channel threshold;
    /// where oneDNN has no Winograd kernel (e.g. without AVX-512) the plan falls back to direct.
    let algorithm: dnnl_alg_kind_t

    static let winogradMinChannels: Int = {
        if let s = getenv("SAMIX_WINOGRAD_MIN_CHANNELS"), let n = Int(String(cString: s)), n >= 1 { return n }
        return 64
    }()

    static func algorithm(for g: Conv2DGeometry) -> dnnl_alg_kind_t {
        let mode = getenv("SAMIX_CONV_ALGO").map { String(cString: $0) } ?? "default"
        guard mode != "direct", g.kh == 3, g.kw == 3, g.stride == 1 else { return dnnl_convolution_direct }
        if mode == "winograd" { return dnnl_convolution_winograd }
        let wide = g.cin >= winogradMinChannels && g.cout >= winogradMinChannels
        return wide ? dnnl_convolution_winograd : dnnl_convolution_direct
    }

    convenience init(_ g: Conv2DGeometry, bias: Bool, engine: OpaquePointer) throws {
        let algo = Plan.algorithm(for: g)
        do {
            try self.init(g, bias: bias, engine: engine, algorithm: algo)
        } catch where algo != dnnl_convolution_direct {
            try self.init(g, bias: bias, engine: engine, algorithm: dnnl_convolution_direct)
        }
    }

    init(_ g: Conv2DGeometry, bias: Bool, engine: OpaquePointer, algorithm: dnnl_alg_kind_t) throws {
        self.engine = engine; self.g = g; hasBias = bias; self.algorithm = algorithm
        strides = [Int64(g.stride), Int64(g.stride)]
        padL = [Int64(g.padding), Int64(g.padding)]
        padR = [Int64((g.ho - 1) * g.stride - g.h + g.kh - g.padding),
                Int64((g.wo - 1) * g.stride - g.w + g.kw - g.padding)]
        xP = try plainDesc([g.n, g.cin, g.h, g.w], dnnl_nchw)
        wP = try plainDesc([g.cout, g.cin, g.kh, g.kw], dnnl_oihw)
        yP = try plainDesc([g.n, g.cout, g.ho, g.wo], dnnl_nchw)
        bP = try plainDesc([g.cout], dnnl_x)
        var xA = try plainDesc([g.n, g.cin, g.h, g.w], dnnl_format_tag_any)
        var wA = try plainDesc([g.cout, g.cin, g.kh, g.kw], dnnl_format_tag_any)
        var yA = try plainDesc([g.n, g.cout, g.ho, g.wo], dnnl_format_tag_any)
        var b = bP
        var cd = dnnl_convolution_desc_t()
        if bias {
            try check(dnnl_convolution_forward_desc_init(&cd, dnnl_forward_training, algorithm,
                                                         &xA, &wA, &b, &yA, strides, padL, padR), "fwd desc")
        } else {
            try check(dnnl_convolution_forward_desc_init(&cd, dnnl_forward_training, algorithm,
                                                         &xA, &wA, nil, &yA, strides, padL, padR), "fwd desc")
        }
        let attr = try userScratchpadAttr()
        defer { dnnl_primitive_attr_destroy(attr) }
        var pd: OpaquePointer?
        try check(dnnl_primitive_desc_create(&pd, &cd, attr, engine, nil), "fwd pd")
        fwdPD = pd
        fwd = try Prim(pd)
        xIn = try Reorder(xP, dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0).pointee, engine: engine)
        wIn = try Reorder(wP, dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0).pointee, engine: engine)
        yOut = try Reorder(dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0).pointee, yP, engine: engine)
    }

    /// Backward primitives, created on first use (caller holds the cache lock).
    func backward() -> Backward? {
        if let bwd { return bwd }
        if bwdFailed { return nil }
        do {
            var xA = try plainDesc([g.n, g.cin, g.h, g.w], dnnl_format_tag_any)
            var wA = try plainDesc([g.cout, g.cin, g.kh, g.kw], dnnl_format_tag_any)
            var yA = try plainDesc([g.n, g.cout, g.ho, g.wo], dnnl_format_tag_any)
            var b = bP
            let attr = try userScratchpadAttr()
            defer { dnnl_primitive_attr_destroy(attr) }
            var dd = dnnl_convolution_desc_t()
            try check(dnnl_convolution_backward_data_desc_init(&dd, algorithm, &xA, &wA, &yA,
                                                               strides, padL, padR), "bwd data desc")
            var dpd: OpaquePointer?
            try check(dnnl_primitive_desc_create(&dpd, &dd, attr, engine, fwdPD), "bwd data pd")
            defer { dnnl_primitive_desc_destroy(dpd) }
            var wd = dnnl_convolution_desc_t()
            if hasBias {
                try check(dnnl_convolution_backward_weights_desc_init(&wd, algorithm, &xA, &wA,
                                                                      &b, &yA, strides, padL, padR), "bwd weights desc")
            } else {
                try check(dnnl_convolution_backward_weights_desc_init(&wd, algorithm, &xA, &wA,
                                                                      nil, &yA, strides, padL, padR), "bwd weights desc")
            }
            var wpd: OpaquePointer?
            try check(dnnl_primitive_desc_create(&wpd, &wd, attr, engine, fwdPD), "bwd weights pd")
            defer { dnnl_primitive_desc_destroy(wpd) }
            let q = { (pd: OpaquePointer?, what: dnnl_query_t) in dnnl_primitive_desc_query_md(pd, what, 0).pointee }
            let b2 = Backward(
                data: try Prim(dpd), weights: try Prim(wpd),
                dyD: try Reorder(yP, q(dpd, dnnl_query_diff_dst_md), engine: engine),
                wD: try Reorder(wP, q(dpd, dnnl_query_weights_md), engine: engine),
                dxOut: try Reorder(q(dpd, dnnl_query_diff_src_md), xP, engine: engine),
                xW: try Reorder(xP, q(wpd, dnnl_query_src_md), engine: engine),
                dyW: try Reorder(yP, q(wpd, dnnl_query_diff_dst_md), engine: engine),
                dwOut: try Reorder(q(wpd, dnnl_query_diff_weights_md), wP, engine: engine))
            bwd = b2
            return b2
        } catch {
            bwdFailed = true
            return nil
        }
    }

    // MARK: execution

    private func execute(_ p: Prim, _ args: [(Int32, dnnl_memory_desc_t, UnsafeMutableRawPointer?)],
                         stream: OpaquePointer?) throws {
        var mems: [OpaquePointer?] = []
        defer { for m in mems { dnnl_memory_destroy(m) } }
        try ScratchArena.shared.withScratch(bytes: p.scratchBytes) { scratch in
            var all = args
            if p.scratchBytes > 0 { all.append((samix_dnnl_arg_scratchpad, p.scratch, scratch)) }
            var execArgs: [dnnl_exec_arg_t] = []
            for (arg, md, ptr) in all {
                var m: OpaquePointer?
                var d = md
                try check(dnnl_memory_create(&m, &d, engine, ptr), "memory")
                mems.append(m)
                execArgs.append(dnnl_exec_arg_t(arg: arg, memory: m))
            }
            try check(dnnl_primitive_execute(p.prim, stream, Int32(execArgs.count), execArgs), "execute")
            try check(dnnl_stream_wait(stream), "stream wait")
        }
    }

    /// The data at `ptr` (plain layout) in the reorder's target layout: `ptr` itself or a new buffer.
    private func into(_ r: Reorder, _ ptr: UnsafeRawPointer, _ keep: inout [Buffer],
                      stream: OpaquePointer?) throws -> UnsafeMutableRawPointer? {
        guard let prim = r.prim else { return UnsafeMutableRawPointer(mutating: ptr) }
        let buf = try Buffer(bytes: r.bytes)
        keep.append(buf)
        try execute(prim, [(samix_dnnl_arg_from, r.from, UnsafeMutableRawPointer(mutating: ptr)),
                           (samix_dnnl_arg_to, r.to, buf.pointer)], stream: stream)
        return buf.pointer
    }

    /// Where a primitive writes a result that `r` then copies to the plain `dst`.
    private func outBuffer(_ r: Reorder, _ dst: UnsafeMutableRawPointer, _ keep: inout [Buffer]) throws -> UnsafeMutableRawPointer? {
        guard r.prim != nil else { return dst }
        let buf = try Buffer(bytes: dnnl_memory_desc_get_size([r.from]))
        keep.append(buf)
        return buf.pointer
    }

    private func out(_ r: Reorder, _ src: UnsafeMutableRawPointer?, _ dst: UnsafeMutableRawPointer,
                     stream: OpaquePointer?) throws {
        guard let prim = r.prim else { return }
        try execute(prim, [(samix_dnnl_arg_from, r.from, src), (samix_dnnl_arg_to, r.to, dst)], stream: stream)
    }

    private func withStream<R>(_ body: (OpaquePointer?) throws -> R) throws -> R {
        var s: OpaquePointer?
        try check(dnnl_stream_create(&s, engine, dnnl_stream_default_flags.rawValue), "stream")
        defer { dnnl_stream_destroy(s) }
        return try body(s)
    }

    func forward(x: UnsafePointer<Float>, w: UnsafePointer<Float>, b: UnsafePointer<Float>?,
                 y: UnsafeMutablePointer<Float>) throws {
        try withStream { s in
            var keep: [Buffer] = []
            let xb = try into(xIn, x, &keep, stream: s), wb = try into(wIn, w, &keep, stream: s)
            let yb = try outBuffer(yOut, y, &keep)
            var args: [(Int32, dnnl_memory_desc_t, UnsafeMutableRawPointer?)] =
                [(samix_dnnl_arg_src, xIn.to, xb), (samix_dnnl_arg_weights, wIn.to, wb), (samix_dnnl_arg_dst, yOut.from, yb)]
            if let b { args.append((samix_dnnl_arg_bias, bP, UnsafeMutableRawPointer(mutating: b))) }
            try execute(fwd, args, stream: s)
            try out(yOut, yb, y, stream: s)
        }
    }

    func run(_ p: Backward, x: UnsafePointer<Float>, w: UnsafePointer<Float>, dy: UnsafePointer<Float>,
             dx: UnsafeMutablePointer<Float>?, dW: UnsafeMutablePointer<Float>?, db: UnsafeMutablePointer<Float>?) throws {
        try withStream { s in
            var keep: [Buffer] = []
            var dyD: UnsafeMutableRawPointer? = nil
            if let dx {
                dyD = try into(p.dyD, dy, &keep, stream: s)
                let wb = try into(p.wD, w, &keep, stream: s)
                let dxb = try outBuffer(p.dxOut, dx, &keep)
                try execute(p.data, [(samix_dnnl_arg_diff_dst, p.dyD.to, dyD), (samix_dnnl_arg_weights, p.wD.to, wb),
                                     (samix_dnnl_arg_diff_src, p.dxOut.from, dxb)], stream: s)
                try out(p.dxOut, dxb, dx, stream: s)
            }
            guard dW != nil || db != nil else { return }
            var dyD2 = p.dyD.to, dyW = p.dyW.to
            let dyb: UnsafeMutableRawPointer?
            if let dyD, dnnl_memory_desc_equal(&dyD2, &dyW) != 0 { dyb = dyD } else { dyb = try into(p.dyW, dy, &keep, stream: s) }
            let xb = try into(p.xW, x, &keep, stream: s)
            let dwDst: UnsafeMutableRawPointer
            if let dW { dwDst = UnsafeMutableRawPointer(dW) } else {
                let t = try Buffer(bytes: dnnl_memory_desc_get_size([p.dwOut.to])); keep.append(t); dwDst = t.pointer!
            }
            let dwb = try outBuffer(p.dwOut, dwDst, &keep)
            var args: [(Int32, dnnl_memory_desc_t, UnsafeMutableRawPointer?)] =
                [(samix_dnnl_arg_src, p.xW.to, xb), (samix_dnnl_arg_diff_dst, p.dyW.to, dyb),
                 (samix_dnnl_arg_diff_weights, p.dwOut.from, dwb)]
            if hasBias {
                var dbDst = db.map { UnsafeMutableRawPointer($0) }
                if dbDst == nil { let t = try Buffer(bytes: g.cout * 4); keep.append(t); dbDst = t.pointer }
                args.append((samix_dnnl_arg_diff_bias, bP, dbDst))
            }
            try execute(p.weights, args, stream: s)
            if dW != nil { try out(p.dwOut, dwb, dwDst, stream: s) }
        }
    }
}
