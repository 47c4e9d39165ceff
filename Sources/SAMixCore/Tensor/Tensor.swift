/// Float32 storage of a tensor: either a buffer from the `BufferPool` (returned on deinit) or a
/// borrowed pointer (e.g. a caller's NumPy array) that samix never frees.
public final class TensorStorage {
    public let pointer: UnsafeMutablePointer<Float>
    public let count: Int
    private let pooled: Bool

    /// A new pooled buffer of `count` floats (contents uninitialised).
    public init(count: Int) throws {
        guard count >= 0, count <= Tensor.maxElements else {
            throw SAMixError.invalidArgument("tensor of \(count) elements is out of range")
        }
        guard let p = BufferPool.shared.allocate(count) else {
            throw SAMixError.outOfMemory("cannot allocate \(count * 4) bytes")
        }
        pointer = p
        self.count = count
        pooled = true
    }

    /// Wraps memory owned by someone else. The caller keeps it alive for the storage's lifetime.
    public init(borrowing pointer: UnsafeMutablePointer<Float>, count: Int) {
        self.pointer = pointer
        self.count = count
        pooled = false
    }

    deinit { if pooled { BufferPool.shared.release(pointer, count: count) } }
}

/// A dense, contiguous float32 tensor (row-major; images are NCHW) with reverse-mode autodiff.
///
/// Tensors have reference semantics like PyTorch's: ops return new tensors and record how to
/// differentiate them when any input `requiresGrad` and gradient recording is on (`GradMode`).
/// Parameters are leaf tensors with `requiresGrad = true`; `backward()` accumulates into `grad`.
/// A frozen parameter (`requiresGrad = false`) receives no gradient, but gradients still flow
/// through the ops that use it to their other inputs.
public final class Tensor {
    /// Dimensions, outermost first.
    public let shape: [Int]
    /// Number of elements (product of `shape`).
    public let count: Int
    /// Underlying buffer; `reshaped` views share it.
    public let storage: TensorStorage
    /// Whether gradients are computed for this tensor.
    public var requiresGrad: Bool
    /// Accumulated gradient of a leaf tensor after `backward()`.
    public var grad: Tensor?
    /// How this tensor was computed (nil for leaves and tensors made without recording).
    var gradFn: GradNode?

    /// New uninitialised tensor.
    public init(uninitializedShape shape: [Int]) throws {
        try Tensor.validate(shape)
        self.shape = shape
        count = shape.reduce(1, *)
        storage = try TensorStorage(count: count)
        requiresGrad = false
    }

    /// Tensor over an existing storage (shares memory).
    public init(storage: TensorStorage, shape: [Int]) throws {
        try Tensor.validate(shape)
        let n = shape.reduce(1, *)
        try requireShape(n <= storage.count, "shape \(shape) needs \(n) elements, storage has \(storage.count)")
        self.shape = shape
        count = n
        self.storage = storage
        requiresGrad = false
    }

    /// A tensor sharing `other`'s storage and shape, without its autodiff history.
    init(sharing other: Tensor) {
        shape = other.shape
        count = other.count
        storage = other.storage
        requiresGrad = false
    }

    /// A zero-filled tensor.
    public convenience init(zeros shape: [Int]) throws {
        try self.init(uninitializedShape: shape)
        data.initialize(repeating: 0, count: count)
    }

    /// A tensor filled with `value`.
    public convenience init(repeating value: Float, shape: [Int]) throws {
        try self.init(uninitializedShape: shape)
        data.initialize(repeating: value, count: count)
    }

    /// A tensor holding a copy of `values`.
    public convenience init(_ values: [Float], shape: [Int]) throws {
        try self.init(uninitializedShape: shape)
        try requireShape(values.count == count, "\(values.count) values do not fill shape \(shape)")
        values.withUnsafeBufferPointer { b in
            if let base = b.baseAddress { data.update(from: base, count: count) }
        }
    }

    /// Wraps caller-owned memory without copying; the memory must outlive the tensor.
    public convenience init(borrowing pointer: UnsafeMutablePointer<Float>, shape: [Int]) throws {
        try Tensor.validate(shape)
        let n = shape.reduce(1, *)
        try self.init(storage: TensorStorage(borrowing: pointer, count: n), shape: shape)
    }

    package static func validate(_ shape: [Int]) throws {
        guard shape.allSatisfy({ $0 >= 0 }) else { throw SAMixError.invalidArgument("negative dimension in shape \(shape)") }
        guard elementCount(shape) != nil else { throw SAMixError.invalidArgument("shape \(shape) is too large") }
    }

    /// Most elements a tensor (or any buffer the engine accepts) may hold: 2^36 floats (256 GiB).
    public static let maxElements = 1 << 36

    /// The product of `dims` when every dim is ≥ 0 and the product is at most `maxElements`, else nil —
    /// the one size check of the engine and the C ABI.
    public static func elementCount<T: BinaryInteger>(_ dims: [T]) -> Int? {
        var n = 1
        for d in dims {
            guard d >= 0, let di = Int(exactly: d) else { return nil }
            let (m, overflow) = n.multipliedReportingOverflow(by: di)
            guard !overflow, m <= maxElements else { return nil }
            n = m
        }
        return n
    }

    /// Pointer to the first element.
    @inlinable public var data: UnsafeMutablePointer<Float> { storage.pointer }

    /// Number of dimensions.
    public var rank: Int { shape.count }

    /// The elements as a Swift array (copies).
    public var scalars: [Float] { Array(UnsafeBufferPointer(start: data, count: count)) }

    /// Element at a flat index (bounds-checked; for tests and small reads).
    public subscript(flat i: Int) -> Float {
        get { i >= 0 && i < count ? data[i] : .nan }
    }

    /// A new tensor with the same contents, no autodiff history.
    public func copy() throws -> Tensor {
        let t = try Tensor(uninitializedShape: shape)
        t.data.update(from: data, count: count)
        return t
    }

    /// The same values without autodiff history (shares storage), like PyTorch's `detach()`.
    public func detached() -> Tensor {
        Tensor(sharing: self)
    }

    /// Sets every element to `value`.
    public func fill(_ value: Float) { data.update(repeating: value, count: count) }

    /// Copies the values of `other` (same element count) into this tensor.
    public func assign(_ other: Tensor) throws {
        try requireShape(other.count == count, "cannot assign \(other.shape) to \(shape)")
        data.update(from: other.data, count: count)
    }
}

extension Tensor: CustomStringConvertible {
    public var description: String {
        let head = scalars.prefix(8).map { "\($0)" }.joined(separator: ", ")
        return "Tensor(shape: \(shape), [\(head)\(count > 8 ? ", …" : "")]\(requiresGrad ? ", requiresGrad" : ""))"
    }
}
