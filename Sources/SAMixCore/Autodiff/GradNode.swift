/// One recorded op: where each of its inputs' gradients go, and the function that maps the gradient
/// of the op's output to gradients of those inputs (nil where an input needs none).
///
/// The graph links nodes, not tensors: an edge points at the node that produced a non-leaf input, or
/// at a leaf tensor that accumulates `grad`. Intermediate tensors are therefore freed as soon as
/// nothing but the graph would hold them — a backward function keeps exactly what it captured (a
/// ReLU its output, a convolution its input), as in PyTorch, instead of every activation of the step.
final class GradNode {
    enum Edge {
        /// The input needs no gradient.
        case none
        /// A tensor without history that requires grad: its gradient accumulates into `grad`.
        case leaf(Tensor)
        /// The node that produced the input.
        case node(GradNode)
    }

    let name: String
    var edges: [Edge]
    var backward: ((Tensor) throws -> [Tensor?])?

    init(name: String, inputs: [Tensor], backward: @escaping (Tensor) throws -> [Tensor?]) {
        self.name = name
        self.edges = inputs.map { t in
            guard t.requiresGrad else { return .none }
            if let n = t.gradFn { return .node(n) }
            return .leaf(t)
        }
        self.backward = backward
    }
}

extension Tensor {
    /// Whether an op taking these inputs must record history.
    @inline(__always)
    package static func needsGrad(_ inputs: [Tensor]) -> Bool {
        guard GradMode.isEnabled else { return false }
        for t in inputs where t.requiresGrad { return true }
        return false
    }

    /// Attaches a backward function to `self` (the output of an op over `inputs`) when needed.
    /// `backward` receives dL/d(self) and returns one gradient (or nil) per input, same shapes.
    @discardableResult
    package func recordOp(_ name: String, _ inputs: [Tensor],
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
    ///
    /// `onLeafReady` is called once for every leaf as soon as its `grad` is final for this backward
    /// pass (every node that feeds it has run), before the rest of the graph — the hook
    /// data-parallel training uses to start reducing gradients while backward goes on.
    public func backward(gradient: Tensor? = nil, onLeafReady: ((Tensor) throws -> Void)? = nil) throws {
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
        guard let root = gradFn else {
            try accumulateGrad(seed)   // self is a leaf: d self / d self = seed
            try onLeafReady?(self)
            return
        }
        // Topological order of the nodes, by iterative DFS.
        var order: [GradNode] = []
        var visited = Set<ObjectIdentifier>()
        var stack: [(GradNode, Bool)] = [(root, false)]
        while let (n, expanded) = stack.popLast() {
            if expanded { order.append(n); continue }
            let id = ObjectIdentifier(n)
            if visited.contains(id) { continue }
            visited.insert(id)
            stack.append((n, true))
            for case .node(let input) in n.edges where !visited.contains(ObjectIdentifier(input)) {
                stack.append((input, false))
            }
        }
        // With a hook: how many edges still lead into each leaf; it is ready when none is left.
        var pendingEdges: [ObjectIdentifier: Int] = [:]
        if onLeafReady != nil {
            for n in order { for case .leaf(let t) in n.edges { pendingEdges[ObjectIdentifier(t), default: 0] += 1 } }
        }
        func leafEdgesDone(_ node: GradNode) throws {
            guard let onLeafReady else { return }
            for case .leaf(let t) in node.edges {
                let id = ObjectIdentifier(t)
                let left = pendingEdges[id, default: 1] - 1
                pendingEdges[id] = left
                if left == 0 { try onLeafReady(t) }
            }
        }
        var grads: [ObjectIdentifier: Tensor] = [ObjectIdentifier(root): seed]
        var owned = Set<ObjectIdentifier>()
        for node in order.reversed() {
            guard let g = grads.removeValue(forKey: ObjectIdentifier(node)) else {
                try leafEdgesDone(node)   // no gradient reaches this node: its leaves get nothing from it
                continue
            }
            guard let fn = node.backward else {
                throw SAMixError.invalidState("backward through '\(node.name)' whose graph was already freed")
            }
            let inputGrads = try fn(g)
            node.backward = nil
            for (edge, maybeGrad) in zip(node.edges, inputGrads) {
                guard let gi = maybeGrad else { continue }
                switch edge {
                case .none:
                    continue
                case .leaf(let t):
                    try t.accumulateGrad(gi)
                case .node(let input):
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
            try leafEdgesDone(node)
            node.edges = []
        }
    }

    /// Adds `g` into `grad` (allocating it on first use).
    func accumulateGrad(_ g: Tensor) throws {
        if let existing = grad {
            try existing.addInPlace(g)
        } else {
            let c = try g.copy()
            try requireShape(c.count == count, "gradient of \(g.shape) for a tensor of \(shape)")
            grad = try Tensor(storage: c.storage, shape: shape)
        }
    }

    /// Elementwise `self += other` (same element count), no autodiff.
    public func addInPlace(_ other: Tensor) throws {
        try requireShape(other.count == count, "cannot add \(other.shape) into \(shape)")
        let a = data, b = other.data
        for i in 0..<count { a[i] += b[i] }
    }
}
