import SAMixCore
import SAMixOps

/// Common interface of samix optimizers: one step over a fixed list of named parameters, with
/// state (momentum buffers, Adam moments, step count) that can be saved and restored exactly.
public protocol Optimizer: AnyObject {
    /// Current learning rate (set by a schedule before each step).
    var learningRate: Float { get set }
    /// The parameters this optimizer updates, with their names.
    var namedParameters: [(String, Tensor)] { get }
    /// Updates every parameter that has a gradient.
    func step() throws
    /// Optimizer state as named tensors (for checkpoints).
    func stateDict() throws -> [(String, Tensor)]
    /// Restores state saved by `stateDict()`.
    func loadStateDict(_ state: [String: Tensor]) throws
}

extension Optimizer {
    /// Clears the gradients of all parameters.
    public func zeroGrad() { for (_, p) in namedParameters { p.grad = nil } }
}

/// Stochastic gradient descent with momentum, Nesterov and L2 weight decay (PyTorch semantics):
/// d = g + wd·θ; b ← μ·b + (1 − dampening)·d (b = d at the first step); d = d + μ·b (Nesterov) or b;
/// θ ← θ − lr·d.
public final class SGD: Optimizer {
    public var learningRate: Float
    public var momentum: Float, weightDecay: Float, dampening: Float
    public var nesterov: Bool
    public let namedParameters: [(String, Tensor)]
    private var buffers: [Tensor?]

    public init(_ parameters: [(String, Tensor)], lr: Float, momentum: Float = 0, weightDecay: Float = 0,
                dampening: Float = 0, nesterov: Bool = false) throws {
        try require(lr >= 0 && lr.isFinite, "SGD learning rate must be finite and ≥ 0, got \(lr)")
        try require(momentum >= 0 && momentum < 1, "SGD momentum must be in [0, 1), got \(momentum)")
        try require(weightDecay >= 0 && weightDecay.isFinite, "SGD weight decay must be ≥ 0, got \(weightDecay)")
        try require(!nesterov || (momentum > 0 && dampening == 0), "Nesterov momentum needs momentum > 0 and no dampening")
        learningRate = lr
        self.momentum = momentum; self.weightDecay = weightDecay; self.dampening = dampening
        self.nesterov = nesterov
        namedParameters = parameters.filter { $0.1.requiresGrad }
        buffers = Array(repeating: nil, count: namedParameters.count)
    }

    public func step() throws {
        let lr = learningRate, mu = momentum, wd = weightDecay, damp = 1 - dampening
        for (i, (_, p)) in namedParameters.enumerated() {
            guard let g = p.grad else { continue }
            let n = p.count
            let pp = p.data, gp = g.data
            if mu == 0 {
                for j in 0..<n { pp[j] -= lr * (gp[j] + wd * pp[j]) }
                continue
            }
            if let b = buffers[i] {
                let bp = b.data
                if nesterov {
                    for j in 0..<n {
                        let d = gp[j] + wd * pp[j]
                        let nb = mu * bp[j] + damp * d
                        bp[j] = nb
                        pp[j] -= lr * (d + mu * nb)
                    }
                } else {
                    for j in 0..<n {
                        let nb = mu * bp[j] + damp * (gp[j] + wd * pp[j])
                        bp[j] = nb
                        pp[j] -= lr * nb
                    }
                }
            } else {
                let b = try Tensor(uninitializedShape: p.shape)
                let bp = b.data
                for j in 0..<n {
                    let d = gp[j] + wd * pp[j]
                    bp[j] = d
                    pp[j] -= lr * (nesterov ? d + mu * d : d)
                }
                buffers[i] = b
            }
        }
    }

    public func stateDict() throws -> [(String, Tensor)] {
        var out: [(String, Tensor)] = []
        for (i, (name, _)) in namedParameters.enumerated() {
            if let b = buffers[i] { out.append(("momentum_buffer." + name, try b.copy())) }
        }
        return out
    }

    public func loadStateDict(_ state: [String: Tensor]) throws {
        for (i, (name, p)) in namedParameters.enumerated() {
            if let b = state["momentum_buffer." + name] {
                try requireShape(b.shape == p.shape, "momentum buffer '\(name)' has shape \(b.shape), expected \(p.shape)")
                buffers[i] = try b.copy()
            } else { buffers[i] = nil }
        }
    }
}

/// AdamW (Loshchilov & Hutter): decoupled weight decay θ ← θ − lr·wd·θ, then Adam with bias
/// correction: m ← β1·m + (1−β1)·g, v ← β2·v + (1−β2)·g², θ ← θ − lr·m̂/(√v̂ + ε).
public final class AdamW: Optimizer {
    public var learningRate: Float
    public var beta1: Float, beta2: Float, epsilon: Float, weightDecay: Float
    public let namedParameters: [(String, Tensor)]
    public private(set) var stepCount = 0
    private var m: [Tensor?], v: [Tensor?]

    public init(_ parameters: [(String, Tensor)], lr: Float = 1e-3, beta1: Float = 0.9, beta2: Float = 0.999,
                epsilon: Float = 1e-8, weightDecay: Float = 0.01) throws {
        try require(lr >= 0 && lr.isFinite, "AdamW learning rate must be finite and ≥ 0, got \(lr)")
        try require(beta1 >= 0 && beta1 < 1 && beta2 >= 0 && beta2 < 1, "AdamW betas must be in [0, 1)")
        try require(epsilon > 0, "AdamW epsilon must be > 0")
        try require(weightDecay >= 0, "AdamW weight decay must be ≥ 0")
        learningRate = lr
        self.beta1 = beta1; self.beta2 = beta2; self.epsilon = epsilon; self.weightDecay = weightDecay
        namedParameters = parameters.filter { $0.1.requiresGrad }
        m = Array(repeating: nil, count: namedParameters.count)
        v = Array(repeating: nil, count: namedParameters.count)
    }

    public func step() throws {
        stepCount += 1
        let lr = learningRate, b1 = beta1, b2 = beta2, eps = epsilon
        let c1 = 1 - Float(pow(Double(b1), Double(stepCount))), c2 = 1 - Float(pow(Double(b2), Double(stepCount)))
        let decay = 1 - lr * weightDecay
        for (i, (_, p)) in namedParameters.enumerated() {
            guard let g = p.grad else { continue }
            if m[i] == nil { m[i] = try Tensor(zeros: p.shape); v[i] = try Tensor(zeros: p.shape) }
            guard let mt = m[i], let vt = v[i] else { continue }
            let pp = p.data, gp = g.data, mp = mt.data, vp = vt.data
            for j in 0..<p.count {
                let gj = gp[j]
                mp[j] = b1 * mp[j] + (1 - b1) * gj
                vp[j] = b2 * vp[j] + (1 - b2) * gj * gj
                let mh = mp[j] / c1, vh = vp[j] / c2
                pp[j] = pp[j] * decay - lr * mh / (vh.squareRoot() + eps)
            }
        }
    }

    public func stateDict() throws -> [(String, Tensor)] {
        var out: [(String, Tensor)] = [("step", try Tensor([Float(stepCount)], shape: [1]))]
        for (i, (name, _)) in namedParameters.enumerated() {
            if let a = m[i], let b = v[i] { out += [("exp_avg." + name, try a.copy()), ("exp_avg_sq." + name, try b.copy())] }
        }
        return out
    }

    public func loadStateDict(_ state: [String: Tensor]) throws {
        if let s = state["step"], s.count == 1 { stepCount = Int(s.data[0]) }
        for (i, (name, p)) in namedParameters.enumerated() {
            if let a = state["exp_avg." + name], let b = state["exp_avg_sq." + name] {
                try requireShape(a.shape == p.shape && b.shape == p.shape, "Adam state for '\(name)' has the wrong shape")
                m[i] = try a.copy(); v[i] = try b.copy()
            } else { m[i] = nil; v[i] = nil }
        }
    }
}

import Glibc
