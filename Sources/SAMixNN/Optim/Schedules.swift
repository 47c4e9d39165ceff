import Glibc
import SAMixCore
import SAMixOps

/// Learning-rate schedules as pure functions of the step (iteration) index t ∈ [0, T).
/// All support a linear warm-up over the first `warmupSteps` steps from `warmupStartFactor·base`.
public struct LearningRateSchedule: Equatable, Sendable {
    public enum Kind: Equatable, Sendable {
        /// Constant base rate.
        case constant
        /// Cosine annealing from base to `minLR`: lr = min + (base − min)·(1 + cos(π·t/T))/2.
        case cosine(minLR: Float)
        /// Multiply by `gamma` at each milestone step (t ≥ milestone).
        case step(milestones: [Int], gamma: Float)
    }

    public var kind: Kind
    public var baseLR: Float
    public var warmupSteps: Int
    public var warmupStartFactor: Float

    public init(_ kind: Kind, baseLR: Float, warmupSteps: Int = 0, warmupStartFactor: Float = 0) throws {
        try require(baseLR >= 0 && baseLR.isFinite, "base learning rate must be finite and ≥ 0, got \(baseLR)")
        try require(warmupSteps >= 0, "warm-up steps must be ≥ 0")
        try require(warmupStartFactor >= 0 && warmupStartFactor <= 1, "warm-up start factor must be in [0, 1]")
        if case .step(_, let gamma) = kind { try require(gamma > 0, "step decay gamma must be > 0") }
        if case .cosine(let minLR) = kind { try require(minLR >= 0 && minLR <= baseLR, "cosine floor must be in [0, base]") }
        self.kind = kind; self.baseLR = baseLR
        self.warmupSteps = warmupSteps; self.warmupStartFactor = warmupStartFactor
    }

    /// Learning rate at step `t` of `total` steps.
    public func value(step t: Int, total: Int) -> Float {
        var lr: Float
        switch kind {
        case .constant: lr = baseLR
        case .cosine(let minLR):
            let frac = total > 0 ? Double(min(max(t, 0), total)) / Double(total) : 0
            lr = minLR + (baseLR - minLR) * Float((1 + cos(Double.pi * frac)) / 2)
        case .step(let milestones, let gamma):
            lr = baseLR
            for m in milestones where t >= m { lr *= gamma }
        }
        if t < warmupSteps {
            let f = warmupStartFactor + (1 - warmupStartFactor) * Float(t) / Float(warmupSteps)
            lr *= f
        }
        return lr
    }
}

/// EMA momentum schedule of the AutoMix/SAMix momentum encoder (docs/method.md §2.3): m_t = m0 while
/// t < ⌊s0·T⌋, else m_end − (m_end − m0)·(cos(π·t/T) + 1)/2.
public struct MomentumSchedule: Equatable, Sendable {
    public var start: Double, end: Double, constantFraction: Double

    public init(start: Double = 0.999, end: Double = 0.999999, constantFraction: Double = 0.1) throws {
        try require(start >= 0 && start <= 1 && end >= 0 && end <= 1, "EMA momentum must be in [0, 1]")
        try require(constantFraction >= 0 && constantFraction <= 1, "constant fraction must be in [0, 1]")
        self.start = start; self.end = end; self.constantFraction = constantFraction
    }

    public func value(step t: Int, total: Int) -> Double {
        guard total > 0 else { return start }
        if t < Int((constantFraction * Double(total)).rounded(.down)) { return start }
        return end - (end - start) * (cos(Double.pi * Double(t) / Double(total)) + 1) / 2
    }
}

/// Exponential moving average of parameters: θ_k ← m·θ_k + (1 − m)·θ_q for every parameter pair
/// (buffers such as BN statistics are not averaged, as in OpenMixup). No update when m ≥ 1.
public enum EMA {
    public static func update(target: Module, source: Module, momentum m: Double) throws {
        if m >= 1 { return }
        let tp = target.namedParameters(), sp = source.namedParameters()
        try requireShape(tp.count == sp.count, "EMA between modules with different parameter lists")
        let a = Float(m), b = Float(1 - m)
        for ((tn, t), (sn, s)) in zip(tp, sp) {
            try requireShape(tn == sn && t.shape == s.shape, "EMA parameter mismatch: \(tn) vs \(sn)")
            let tptr = t.data, sptr = s.data
            for i in 0..<t.count { tptr[i] = a * tptr[i] + b * sptr[i] }
        }
    }

    /// Copies all parameters and buffers of `source` into `target` (θ_k ← θ_q at initialisation).
    public static func copy(target: Module, source: Module) throws {
        let tp = target.stateDict(), sp = source.stateDict()
        try requireShape(tp.count == sp.count, "copy between modules with different state")
        for ((_, t), (_, s)) in zip(tp, sp) { try t.assign(s) }
    }
}
