/// One recorded op: its differentiable inputs and the function that maps the gradient of the op's
/// output to gradients of those inputs (nil where an input needs none).
final class GradNode {
    let name: String
    var inputs: [Tensor]
    var backward: ((Tensor) throws -> [Tensor?])?

    init(name: String, inputs: [Tensor], backward: @escaping (Tensor) throws -> [Tensor?]) {
        self.name = name
        self.inputs = inputs
        self.backward = backward
    }
}

extension Tensor {
    /// Whether an op taking these inputs must record history.
    @inline(__always)
    static func needsGrad(_ inputs: [Tensor]) -> Bool {
        guard GradMode.isEnabled else { return false }
        for t in inputs where t.requiresGrad { return true }
        return false
    }

    /// Attaches a backward function to `self` (the output of an op over `inputs`) when needed.
    /// `backward` receives dL/d(self) and returns one gradient (or nil) per input, same shapes.
    @discardableResult
    func recordOp(_ name: String, _ inputs: [Tensor],
                  _ backward: @escaping (Tensor) throws -> [Tensor?]) -> Tensor {
        if Tensor.needsGrad(inputs) {
            requiresGrad = true
            gradFn = GradNode(name: name, inputs: inputs, backward: backward)
        }
        return self
    }

    /// Whether this tensor is produced by a recorded op (not a leaf).
    public var hasGradFn: Bool { gradFn != nil }

    /// Computes gradients of this tensor (a scalar unless `gradient` is given) with respect to every
    /// leaf that requires grad, accumulating into their `grad`. The recorded graph is freed.
    public func backward(gradient: Tensor? = nil) throws {
        guard requiresGrad else {
            throw SAMixError.invalidState("backward() on a tensor that does not require grad")
        }
        let seed: Tensor
        if let g = gradient {
            try requireShape(g.count == count, "gradient shape \(g.shape) does not match \(shape)")
            seed = g
        } else {
            try requireShape(count == 1, "backward() without a gradient needs a scalar, got \(shape)")
            seed = try Tensor(repeating: 1, shape: shape)
        }
        // Topological order of the tensors with history, by iterative DFS.
        var order: [Tensor] = []
        var visited = Set<ObjectIdentifier>()
        var stack: [(Tensor, Bool)] = [(self, false)]
        while let (t, expanded) = stack.popLast() {
            if expanded { order.append(t); continue }
            let id = ObjectIdentifier(t)
            if visited.contains(id) { continue }
            visited.insert(id)
            stack.append((t, true))
            if let node = t.gradFn {
                for input in node.inputs where input.requiresGrad && input.gradFn != nil
                    && !visited.contains(ObjectIdentifier(input)) {
                    stack.append((input, false))
                }
            }
        }
        var grads: [ObjectIdentifier: Tensor] = [ObjectIdentifier(self): seed]
        var owned = Set<ObjectIdentifier>()
        for t in order.reversed() {
            let id = ObjectIdentifier(t)
            guard let node = t.gradFn else {
                continue
            }
            guard let g = grads.removeValue(forKey: id) else { continue }
            guard let fn = node.backward else {
                throw SAMixError.invalidState("backward through '\(node.name)' whose graph was already freed")
            }
            let inputGrads = try fn(g)
            node.backward = nil
            for (input, maybeGrad) in zip(node.inputs, inputGrads) {
                guard input.requiresGrad, let gi = maybeGrad else { continue }
                if input.gradFn == nil {
                    try input.accumulateGrad(gi)
                } else {
                    let iid = ObjectIdentifier(input)
                    if let existing = grads[iid] {
                        if owned.contains(iid) {
                            try existing.addInPlace(gi)
                        } else {
                            let sum = try existing.copy()
                            try sum.addInPlace(gi)
                            grads[iid] = sum
                            owned.insert(iid)
                        }
                    } else {
                        grads[iid] = gi
                    }
                }
            }
            node.inputs = []
        }
        if gradFn == nil {
            // self is a leaf: d self / d self = seed.
            try accumulateGrad(seed)
        }
    }

    /// Adds `g` into `grad` (allocating it on first use).
    func accumulateGrad(_ g: Tensor) throws {
        if let existing = grad {
            try existing.addInPlace(g)
        } else {
            grad = try g.copy().reshaped(shape)
        }
    }

    /// Elementwise `self += other` (same element count), no autodiff.
    public func addInPlace(_ other: Tensor) throws {
        try requireShape(other.count == count, "cannot add \(other.shape) into \(shape)")
        let a = data, b = other.data
        for i in 0..<count { a[i] += b[i] }
    }
}
