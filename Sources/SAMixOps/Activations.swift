import Glibc
import SAMixCore

/// Elementwise activation functions (any shape): relu, leakyRelu, elu, sigmoid, tanh.
///
/// Each forward pass is one pass over memory, split over `Engine.threads` when the tensor is large;
/// each backward pass is one more pass that reads only the saved output (or input) and `dL/dy`.
extension Tensor {
    /// Below this many elements an elementwise op runs on the calling thread only.
    static let elementwiseParallelThreshold = 1 << 16

    /// Runs `body(range)` over `0..<count`, in parallel chunks when `count` is large.
    @inline(__always)
    static func elementwiseChunks(_ count: Int, _ body: (Range<Int>) -> Void) {
        if count < elementwiseParallelThreshold {
            body(0..<count)
        } else {
            parallelChunks(count, minChunk: elementwiseParallelThreshold / 2) { _, r in body(r) }
        }
    }

    /// `out[i] = f(x[i])` into a new tensor of the same shape.
    @inline(__always)
    fileprivate func mapUnary(_ f: (UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>, Range<Int>) -> Void) throws -> Tensor {
        let out = try Tensor(uninitializedShape: shape)
        let x = data, y = out.data
        Tensor.elementwiseChunks(count) { r in f(x, y, r) }
        return out
    }

    /// `gx[i] = f(g[i], s[i])` where `s` is the tensor saved by the forward pass.
    @inline(__always)
    fileprivate static func mapGrad(_ g: Tensor, _ saved: Tensor,
                                    _ f: (UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>,
                                          UnsafeMutablePointer<Float>, Range<Int>) -> Void) throws -> Tensor {
        try requireShape(g.count == saved.count, "gradient \(g.shape) does not match \(saved.shape)")
        let gx = try Tensor(uninitializedShape: saved.shape)
        let gp = g.data, sp = saved.data, op = gx.data
        elementwiseChunks(saved.count) { r in f(gp, sp, op, r) }
        return gx
    }

    /// Rectified linear unit: `y = max(x, 0)`; `dy/dx = [x > 0]`.
    public func relu() throws -> Tensor {
        let out = try mapUnary { x, y, r in
            for i in r { let v = x[i]; y[i] = v > 0 ? v : 0 }
        }
        guard Tensor.needsGrad([self]) else { return out }
        let saved = out.detached()
        return out.recordOp("relu", [self]) { g in
            [try Tensor.mapGrad(g, saved) { gp, yp, op, r in
                for i in r { op[i] = yp[i] > 0 ? gp[i] : 0 }
            }]
        }
    }

    /// Leaky ReLU: `y = x` for `x > 0`, `slope·x` otherwise.
    public func leakyRelu(slope: Float = 0.01) throws -> Tensor {
        try require(slope.isFinite, "leakyRelu slope must be finite, got \(slope)")
        let out = try mapUnary { x, y, r in
            for i in r { let v = x[i]; y[i] = v > 0 ? v : v * slope }
        }
        guard Tensor.needsGrad([self]) else { return out }
        let saved = self.detached()
        return out.recordOp("leakyRelu", [self]) { g in
            [try Tensor.mapGrad(g, saved) { gp, xp, op, r in
                for i in r { op[i] = xp[i] > 0 ? gp[i] : gp[i] * slope }
            }]
        }
    }

    /// Exponential linear unit: `y = x` for `x > 0`, `α(eˣ − 1)` otherwise (α > 0);
    /// `dy/dx = 1` for `x > 0`, `y + α` otherwise.
    public func elu(alpha: Float = 1) throws -> Tensor {
        try require(alpha > 0 && alpha.isFinite, "elu alpha must be positive and finite, got \(alpha)")
        let out = try mapUnary { x, y, r in
            for i in r { let v = x[i]; y[i] = v > 0 ? v : alpha * expm1f(v) }
        }
        guard Tensor.needsGrad([self]) else { return out }
        let savedX = self.detached(), savedY = out.detached()
        return out.recordOp("elu", [self]) { g in
            let yp = savedY.data
            return [try Tensor.mapGrad(g, savedX) { gp, xp, op, r in
                for i in r { op[i] = xp[i] > 0 ? gp[i] : gp[i] * (yp[i] + alpha) }
            }]
        }
    }

    /// Logistic sigmoid: `y = 1 / (1 + e⁻ˣ)` (evaluated without overflow); `dy/dx = y(1 − y)`.
    public func sigmoid() throws -> Tensor {
        let out = try mapUnary { x, y, r in
            for i in r {
                let v = x[i]
                if v >= 0 {
                    y[i] = 1 / (1 + expf(-v))
                } else {
                    let e = expf(v)
                    y[i] = e / (1 + e)
                }
            }
        }
        guard Tensor.needsGrad([self]) else { return out }
        let saved = out.detached()
        return out.recordOp("sigmoid", [self]) { g in
            [try Tensor.mapGrad(g, saved) { gp, yp, op, r in
                for i in r { let s = yp[i]; op[i] = gp[i] * s * (1 - s) }
            }]
        }
    }

    /// Hyperbolic tangent; `dy/dx = 1 − y²`.
    public func tanh() throws -> Tensor {
        let out = try mapUnary { x, y, r in
            for i in r { y[i] = tanhf(x[i]) }
        }
        guard Tensor.needsGrad([self]) else { return out }
        let saved = out.detached()
        return out.recordOp("tanh", [self]) { g in
            [try Tensor.mapGrad(g, saved) { gp, yp, op, r in
                for i in r { let t = yp[i]; op[i] = gp[i] * (1 - t * t) }
            }]
        }
    }
}
