import SAMixCore
import SAMixOps
import SAMixNN
import SAMixData

// Common types of the hand-crafted mixing policies (Mixup, CutMix, SmoothMix, SaliencyMix, FMix,
// GridMix, ResizeMix, timm's Mixup/CutMix switcher).
//
// Conventions used by every policy in this folder (timm / torchvision / OpenMixup convention):
//  * λ is the weight of the ORIGINAL sample i; 1 − λ is the weight of its partner x[π(i)].
//  * Masks stored in `MixResult.masks` hold the PARTNER weight M ∈ [0, 1] per pixel:
//        x̃_i = (1 − M) · x_i + M · x_π(i),     so λ_i = 1 − mean(M).
//    (FMix's own "mask" is the weight of the original; we store 1 − that, see FMix.swift.)
//  * Soft targets: t_i = λ^label_i · onehot_ε(y_i) + (1 − λ^label_i) · onehot_ε(y_π(i)).
//  * A sample paired with itself (π(i) = i) is left unchanged (its target is its own label).

/// Memory layout of an image batch.
public enum PixelLayout: Sendable, Equatable {
    /// batch × channels × height × width (PyTorch).
    case nchw
    /// batch × height × width × channels (NumPy/PIL images).
    case nhwc
}

/// Shape of a contiguous image batch passed to the mixing kernels.
public struct ImageBatchShape: Sendable, Equatable {
    public let batch: Int
    public let channels: Int
    public let height: Int
    public let width: Int
    public let layout: PixelLayout

    /// Throws `invalidArgument` unless every dimension is ≥ 1 and the batch fits in memory indices.
    public init(batch: Int, channels: Int, height: Int, width: Int, layout: PixelLayout = .nchw) throws {
        try require(batch >= 1 && channels >= 1 && height >= 1 && width >= 1,
                    "image batch dimensions must be ≥ 1, got B=\(batch) C=\(channels) H=\(height) W=\(width)")
        let (hw, o1) = height.multipliedReportingOverflow(by: width)
        let (chw, o2) = hw.multipliedReportingOverflow(by: channels)
        let (all, o3) = chw.multipliedReportingOverflow(by: batch)
        try require(!o1 && !o2 && !o3 && all <= (1 << 40), "image batch of \(batch)×\(channels)×\(height)×\(width) is too large")
        self.batch = batch
        self.channels = channels
        self.height = height
        self.width = width
        self.layout = layout
    }

    /// Elements per image (C·H·W).
    public var imageElements: Int { channels &* height &* width }
    /// Elements in the whole batch.
    public var elementCount: Int { batch &* imageElements }
    /// Pixels per image (H·W).
    public var pixels: Int { height &* width }
}

/// A half-open rectangle `[y0, y1) × [x0, x1)` of pixel rows/columns, already clipped to the image.
public struct MixBox: Sendable, Equatable, CustomStringConvertible {
    public var y0: Int
    public var y1: Int
    public var x0: Int
    public var x1: Int

    public init(y0: Int, y1: Int, x0: Int, x1: Int) {
        self.y0 = y0; self.y1 = y1; self.x0 = x0; self.x1 = x1
    }

    /// Number of pixels inside the box (0 for an empty box).
    public var area: Int { max(0, y1 - y0) * max(0, x1 - x0) }
    public var isEmpty: Bool { y1 <= y0 || x1 <= x0 }
    public func contains(y: Int, x: Int) -> Bool { y >= y0 && y < y1 && x >= x0 && x < x1 }
    public var description: String { "[\(y0),\(y1))×[\(x0),\(x1))" }

    /// The CutMix box rule shared by OpenMixup (`cutmix.py`, `saliencymix.py`, `resizemix.py`) and timm
    /// (`rand_bbox`): corners `c ∓ cut/2` (integer half-size, so the unclipped side is `2·⌊cut/2⌋`),
    /// each clipped to `[0, size]`.
    public static func centered(cy: Int, cx: Int, cutH: Int, cutW: Int, height: Int, width: Int) -> MixBox {
        let hh = cutH / 2, hw = cutW / 2
        return MixBox(y0: min(max(cy - hh, 0), height), y1: min(max(cy + hh, 0), height),
                      x0: min(max(cx - hw, 0), width), x1: min(max(cx + hw, 0), width))
    }
}

/// What happens to one sample of the batch.
public enum SampleMix: Sendable, Equatable {
    /// Left unchanged (λ = 1).
    case keep
    /// Global blend `x̃ = λ·x + (1 − λ)·x[π]`; the payload is λ (weight of the original).
    case blend(Float)
    /// The partner's pixels replace the original inside the box (CutMix, SaliencyMix).
    case box(MixBox)
    /// The WHOLE partner image, resized with nearest neighbour to the box size, is pasted into the box
    /// (ResizeMix).
    case resizedBox(MixBox)
    /// Per-pixel blend `x̃ = (1 − M)·x + M·x[π]` with `M = masks[index]` (partner weight).
    case mask(Int)

    /// Whether the output at a pixel depends only on the two inputs at the same pixel.
    var isElementwise: Bool {
        if case .resizedBox = self { return false }
        return true
    }
}

/// The outcome of one mixing step: everything needed to reproduce the pixels and build the targets.
public struct MixResult: Sendable, Equatable {
    public let batch: Int
    public let height: Int
    public let width: Int
    /// Partner index π(i) of every sample.
    public var partner: [Int]
    /// Operation applied to every sample.
    public var ops: [SampleMix]
    /// Partner-weight masks, `maskCount × height × width` (row-major), referenced by `.mask(k)`.
    /// One mask for a batch-mode policy, one per sample in per-sample mode, none for box/blend policies.
    public var masks: [Float]
    /// Realised weight of the original per sample: λ for a blend, 1 − box area/(H·W) for boxes (after
    /// clipping), 1 − mean(M) for masks, 1 for `.keep`.
    public var lambda: [Float]
    /// Weight of y_i in the soft target (1 − it goes to y_π(i)). Equals `lambda` unless a policy option
    /// says otherwise (timm `correct_lam = false`, FMix `.sampled`, SmoothMix legacy label swap).
    public var labelLambda: [Float]

    public init(batch: Int, height: Int, width: Int, partner: [Int], ops: [SampleMix], masks: [Float] = [],
                lambda: [Float], labelLambda: [Float]) throws {
        try require(batch >= 1 && height >= 1 && width >= 1, "MixResult: invalid size")
        try requireShape(partner.count == batch && ops.count == batch && lambda.count == batch
                         && labelLambda.count == batch, "MixResult: per-sample arrays must have \(batch) entries")
        try require(partner.allSatisfy { $0 >= 0 && $0 < batch }, "MixResult: partner index out of range")
        let hw = height * width
        try requireShape(masks.count % hw == 0, "MixResult: masks must be a multiple of H·W = \(hw)")
        let maskCount = masks.count / hw
        for op in ops {
            switch op {
            case .mask(let k): try require(k >= 0 && k < maskCount, "MixResult: mask index \(k) out of range")
            case .box(let b), .resizedBox(let b):
                try require(b.y0 >= 0 && b.x0 >= 0 && b.y1 <= height && b.x1 <= width,
                            "MixResult: box \(b) outside the \(height)×\(width) image")
            case .blend(let l): try require(l >= 0 && l <= 1, "MixResult: blend λ must be in [0, 1]")
            case .keep: break
            }
        }
        self.batch = batch
        self.height = height
        self.width = width
        self.partner = partner
        self.ops = ops
        self.masks = masks
        self.lambda = lambda
        self.labelLambda = labelLambda
    }

    /// Number of H×W masks stored in `masks`.
    public var maskCount: Int { masks.count / (height * width) }

    /// The partner-weight map M (H×W) of sample `i`, for visualisation and checks: the box indicator for
    /// box policies (also for ResizeMix, where the pasted content is resized), a constant 1 − λ for a
    /// blend, 0 for `.keep` and for a sample paired with itself — except ResizeMix's resized box, which
    /// changes the pixels even then (a shrunken copy of the image is pasted), so its box is marked.
    public func partnerWeightMap(sample i: Int) throws -> [Float] {
        try require(i >= 0 && i < batch, "sample \(i) out of range 0..<\(batch)")
        let hw = height * width
        var resized = false
        if case .resizedBox = ops[i] { resized = true }
        if partner[i] == i && !resized { return [Float](repeating: 0, count: hw) }
        switch ops[i] {
        case .keep: return [Float](repeating: 0, count: hw)
        case .blend(let l): return [Float](repeating: 1 - l, count: hw)
        case .mask(let k): return Array(masks[(k * hw)..<((k + 1) * hw)])
        case .box(let b), .resizedBox(let b):
            var m = [Float](repeating: 0, count: hw)
            if !b.isEmpty {
                for y in b.y0..<b.y1 { for x in b.x0..<b.x1 { m[y * width + x] = 1 } }
            }
            return m
        }
    }
}

/// How the partner π(i) of every sample is chosen.
public enum PartnerMode: Sendable, Equatable {
    /// Uniform random permutation (OpenMixup `torch.randperm`); may contain fixed points.
    case permutation
    /// Uniform random permutation without fixed points when B ≥ 2 (OpenMixup's "no repeat" shuffle,
    /// drawn by rejection; B = 1 gives the identity).
    case derangement
    /// π(i) = B − 1 − i (timm `x.flip(0)`); with odd B the middle sample pairs with itself.
    case flip
    /// π(i) = i − 1 mod B (torchvision `roll(1, 0)`).
    case roll
    /// A caller-given index map (any values in 0..<B; need not be a permutation).
    case explicit([Int])

    /// Draws the partner indices for a batch of `batch` samples.
    public func draw(batch: Int, rng: inout SplitMix64) throws -> [Int] {
        try require(batch >= 1, "batch size must be ≥ 1")
        switch self {
        case .permutation:
            return rng.permutation(batch)
        case .derangement:
            if batch == 1 { return [0] }
            // Expected e ≈ 2.7 tries; after 64 failed tries (probability < 1e-27) use a random cycle.
            for _ in 0..<64 {
                let p = rng.permutation(batch)
                if !p.enumerated().contains(where: { $0.offset == $0.element }) { return p }
            }
            var p = Array(0..<batch)  // Sattolo: uniform random single cycle
            for i in stride(from: batch - 1, to: 0, by: -1) { p.swapAt(i, rng.int(below: i)) }
            return p
        case .flip:
            return (0..<batch).map { batch - 1 - $0 }
        case .roll:
            return (0..<batch).map { ($0 + batch - 1) % batch }
        case .explicit(let p):
            try requireShape(p.count == batch, "explicit partner map has \(p.count) entries, batch is \(batch)")
            try require(p.allSatisfy { $0 >= 0 && $0 < batch }, "explicit partner index out of range 0..<\(batch)")
            return p
        }
    }
}

/// Element types the mixing kernels accept: `Float` (any normalisation) and `UInt8` (raw pixels; blends
/// are rounded half up and clamped to [0, 255]).
public protocol MixElement: Sendable {
    /// `wa·a + wb·b` with `wa, wb ≥ 0`, `wa + wb ≈ 1`, converted back to `Self`.
    static func mix(_ a: Self, _ b: Self, _ wa: Float, _ wb: Float) -> Self
    /// The value as Float (used by content-dependent policies such as SaliencyMix).
    var mixFloatValue: Float { get }
}

extension Float: MixElement {
    @inline(__always)
    public static func mix(_ a: Float, _ b: Float, _ wa: Float, _ wb: Float) -> Float { wa * a + wb * b }
    @inline(__always)
    public var mixFloatValue: Float { self }
}

extension UInt8: MixElement {
    @inline(__always)
    public static func mix(_ a: UInt8, _ b: UInt8, _ wa: Float, _ wb: Float) -> UInt8 {
        let v = wa * Float(a) + wb * Float(b) + 0.5
        return UInt8(truncatingIfNeeded: Int32(Swift.min(Swift.max(v, 0), 255)))
    }
    @inline(__always)
    public var mixFloatValue: Float { Float(self) }
}

/// A mixing policy: draws the random parameters of one step (`plan`) for a batch; `mix` then applies
/// them with the shared kernels. Content-independent policies ignore the pixels in `plan`.
public protocol MixPolicy {
    /// Draws partner, λ and boxes/masks for a batch. `lambda` fixes λ (weight of the original) instead
    /// of sampling it; it must be in [0, 1].
    func plan<T: MixElement>(images: UnsafePointer<T>, shape: ImageBatchShape, lambda: Double?,
                             rng: inout SplitMix64) throws -> MixResult
    /// Whether `plan` reads pixel values (saliency) rather than only the batch shape. Policies that do
    /// need finite inputs; for the others NaN/Inf simply propagate into the mixed pixels, as in NumPy.
    var readsPixels: Bool { get }
}

extension MixPolicy {
    public var readsPixels: Bool { false }

    /// Mixes `images` in place and returns what was done.
    @discardableResult
    public func mix<T: MixElement>(_ images: UnsafeMutablePointer<T>, shape: ImageBatchShape, lambda: Double? = nil,
                                   rng: inout SplitMix64) throws -> MixResult {
        let r = try plan(images: UnsafePointer(images), shape: shape, lambda: lambda, rng: &rng)
        try r.apply(input: UnsafePointer(images), output: images, shape: shape)
        return r
    }

    /// Mixes `input` into `output` (which may be the same memory as `input`, but must not partially
    /// overlap it) and returns what was done.
    @discardableResult
    public func mix<T: MixElement>(_ input: UnsafePointer<T>, into output: UnsafeMutablePointer<T>, shape: ImageBatchShape,
                                   lambda: Double? = nil, rng: inout SplitMix64) throws -> MixResult {
        let r = try plan(images: input, shape: shape, lambda: lambda, rng: &rng)
        try r.apply(input: input, output: output, shape: shape)
        return r
    }

    /// Array convenience: mixes `images` (exactly `shape.elementCount` values) in place.
    @discardableResult
    public func mix<T: MixElement>(_ images: inout [T], shape: ImageBatchShape, lambda: Double? = nil,
                                   rng: inout SplitMix64) throws -> MixResult {
        try requireShape(images.count == shape.elementCount,
                         "image buffer has \(images.count) elements, shape needs \(shape.elementCount)")
        return try images.withUnsafeMutableBufferPointer { buf in
            guard let base = buf.baseAddress else { throw SAMixError.shapeMismatch("empty image buffer") }
            return try mix(base, shape: shape, lambda: lambda, rng: &rng)
        }
    }
}

// MARK: - helpers shared by the policies

@inline(__always)
func checkAlpha(_ alpha: Double, _ name: String) throws {
    try require(alpha > 0 && alpha.isFinite, "\(name): α must be a finite value > 0, got \(alpha)")
}

@inline(__always)
func checkLambda(_ lambda: Double?) throws {
    if let l = lambda { try require(l >= 0 && l <= 1, "λ must be in [0, 1], got \(l)") }
}

/// Realised λ of a box op.
@inline(__always)
func boxLambda(_ b: MixBox, height: Int, width: Int) -> Float {
    Float(1.0 - Double(b.area) / Double(height * width))
}

/// Realised λ of a partner-weight mask: 1 − mean(M) (accumulated in Double).
func maskLambda(_ m: UnsafeBufferPointer<Float>) -> Float {
    var s = 0.0
    for v in m { s += Double(v) }
    return Float(1.0 - s / Double(max(m.count, 1)))
}

/// Builds a `MixResult`, computing the realised λ of every sample from its op; `labelLambda` defaults to
/// the realised λ.
func makeMixResult(shape: ImageBatchShape, partner: [Int], ops: [SampleMix], masks: [Float] = [],
                   labelLambda: [Float]? = nil) throws -> MixResult {
    let H = shape.height, W = shape.width, hw = H * W
    var lam = [Float](repeating: 1, count: ops.count)
    masks.withUnsafeBufferPointer { mb in
        for (i, op) in ops.enumerated() {
            switch op {
            case .keep: lam[i] = 1
            case .blend(let l): lam[i] = l
            case .box(let b), .resizedBox(let b): lam[i] = boxLambda(b, height: H, width: W)
            case .mask(let k):
                if (k + 1) * hw <= mb.count, let base = mb.baseAddress {
                    lam[i] = maskLambda(UnsafeBufferPointer(start: base + k * hw, count: hw))
                }
            }
        }
    }
    return try MixResult(batch: shape.batch, height: H, width: W, partner: partner, ops: ops, masks: masks,
                         lambda: lam, labelLambda: labelLambda ?? lam)
}

/// Uniform Double in [lo, hi).
@inline(__always)
func uniform(_ lo: Double, _ hi: Double, _ rng: inout SplitMix64) -> Double {
    lo + (hi - lo) * rng.uniformDouble()
}

/// Uniform integer in [lo, hi) (NumPy `randint(lo, hi)`); returns `lo` when the range is empty.
@inline(__always)
func randint(_ lo: Int, _ hi: Int, _ rng: inout SplitMix64) -> Int {
    hi > lo ? lo + rng.int(below: hi - lo) : lo
}
