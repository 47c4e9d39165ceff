import SAMixCore
import SAMixOps

/// Base class of every layer and model: a tree of sub-modules with named parameters and buffers.
///
/// Names follow PyTorch's dotted convention (`layer1.0.conv1.weight`), so `stateDict()` keys read
/// like a torchvision/timm state dict. `train()` / `eval()` switch batch norm and dropout modes
/// recursively; `freeze()` stops gradients into the parameters (they still pass gradients through
/// to their inputs — the momentum encoder of AutoMix/SAMix relies on this).
open class Module {
    /// Training mode (batch statistics, dropout active) vs evaluation mode.
    public private(set) var isTraining = true

    public init() {}

    /// Direct children, in registration order.
    open var children: [(String, Module)] { [] }
    /// This module's own parameters (not its children's).
    open var localParameters: [(String, Tensor)] { [] }
    /// This module's own non-trainable state (running statistics, counters).
    open var localBuffers: [(String, Tensor)] { [] }

    /// All parameters with dotted names, depth-first in registration order.
    public func namedParameters(prefix: String = "") -> [(String, Tensor)] {
        var out = localParameters.map { (prefix + $0.0, $0.1) }
        for (name, child) in children { out += child.namedParameters(prefix: prefix + name + ".") }
        return out
    }

    /// All buffers with dotted names.
    public func namedBuffers(prefix: String = "") -> [(String, Tensor)] {
        var out = localBuffers.map { (prefix + $0.0, $0.1) }
        for (name, child) in children { out += child.namedBuffers(prefix: prefix + name + ".") }
        return out
    }

    /// All parameters.
    public func parameters() -> [Tensor] { namedParameters().map { $0.1 } }

    /// Parameters and buffers, the model's full state.
    public func stateDict() -> [(String, Tensor)] { namedParameters() + namedBuffers() }

    /// Copies values from `state` into matching entries (by name and shape); throws on a missing
    /// or mis-shaped entry when `strict` (a mis-shaped entry always throws). Every entry is checked
    /// before any is assigned, so a failed load leaves the module unchanged.
    public func loadStateDict(_ state: [String: Tensor], strict: Bool = true) throws {
        let own = stateDict()
        var pairs: [(Tensor, Tensor)] = []
        pairs.reserveCapacity(own.count)
        for (name, t) in own {
            guard let src = state[name] else {
                if strict { throw SAMixError.invalidArgument("state dict has no entry '\(name)'") }
                continue
            }
            try requireShape(src.shape == t.shape, "state dict entry '\(name)' has shape \(src.shape), expected \(t.shape)")
            pairs.append((t, src))
        }
        if strict {
            let known = Set(own.map { $0.0 })
            if let extra = state.keys.sorted().first(where: { !known.contains($0) }) {
                throw SAMixError.invalidArgument("state dict has unexpected entry '\(extra)'")
            }
        }
        for (t, src) in pairs { try t.assign(src) }
    }

    /// Sets training mode on this module and every descendant.
    public func train(_ on: Bool = true) {
        isTraining = on
        for (_, c) in children { c.train(on) }
    }

    /// Evaluation mode (`train(false)`).
    public func eval() { train(false) }

    /// Every module of the tree, depth-first (this one first).
    func allModules() -> [Module] {
        var out: [Module] = [self]
        for (_, c) in children { out += c.allModules() }
        return out
    }

    /// Runs `body` with the whole tree in training (`true`) or evaluation (`false`) mode, then
    /// restores every module's previous mode exactly (also a tree whose modules had mixed modes).
    /// Under the caller's lock on the module this makes the mode part of one call instead of
    /// shared state toggled around it: no other call can observe the temporary mode.
    public func withMode<R>(training: Bool, _ body: () throws -> R) rethrows -> R {
        let modules = allModules()
        let saved = modules.map(\.isTraining)
        train(training)
        defer { for (m, t) in zip(modules, saved) { m.isTraining = t } }
        return try body()
    }

    /// Turns gradient computation for all parameters on or off.
    public func setRequiresGrad(_ on: Bool) {
        for p in parameters() { p.requiresGrad = on }
    }

    /// Clears every parameter's gradient (PyTorch's `zero_grad(set_to_none=True)`).
    public func zeroGrad() {
        for p in parameters() { p.grad = nil }
    }

    /// Number of scalar parameters.
    public var parameterCount: Int { parameters().reduce(0) { $0 + $1.count } }
}

/// Kaiming/He and other initialisers, all drawing from an explicit generator.
public enum Init {
    /// N(0, std²) fill.
    public static func normal(_ t: Tensor, std: Float, rng: inout SplitMix64) {
        for i in 0..<t.count { t.data[i] = Float(rng.normal()) * std }
    }

    /// U(−bound, bound) fill.
    public static func uniform(_ t: Tensor, bound: Float, rng: inout SplitMix64) {
        for i in 0..<t.count { t.data[i] = (2 * rng.uniform() - 1) * bound }
    }

    /// Kaiming normal for ReLU networks, fan-out mode (as torchvision's ResNets): std = √(2 / fan_out).
    public static func kaimingNormalFanOut(_ t: Tensor, rng: inout SplitMix64) {
        let fanOut = t.shape.count >= 2 ? t.shape[0] * t.shape.dropFirst(2).reduce(1, *) : t.count
        normal(t, std: (2 / Float(max(fanOut, 1))).squareRoot(), rng: &rng)
    }

    /// Kaiming normal, fan-in mode: std = √(2 / fan_in).
    public static func kaimingNormalFanIn(_ t: Tensor, rng: inout SplitMix64) {
        let fanIn = t.shape.count >= 2 ? t.shape.dropFirst().reduce(1, *) : t.count
        normal(t, std: (2 / Float(max(fanIn, 1))).squareRoot(), rng: &rng)
    }
}

/// A trainable parameter tensor: zero-initialised, `requiresGrad = true`.
func makeParameter(_ shape: [Int]) throws -> Tensor {
    let t = try Tensor(zeros: shape)
    t.requiresGrad = true
    return t
}
