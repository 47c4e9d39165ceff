import Glibc

/// Seeded random numbers for samix. Every stochastic component takes an explicit generator so a
/// run is reproducible from its seed; there is no process-global random state.
///
/// `SplitMix64` (Steele et al. 2014) is small, fast and passes BigCrush; it is more than enough for
/// augmentation and mixing. `Philox`-style counter generators are not needed because parallel work
/// derives per-item generators with `fork(index:)`.
public struct SplitMix64: RandomNumberGenerator, Sendable, Equatable {
    /// The full generator state; saving and restoring it resumes the stream exactly.
    public var state: UInt64

    public init(seed: UInt64) { state = seed }

    @inlinable
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// An independent generator for sub-task `index` (e.g. one image of a batch), derived without
    /// advancing `self`, so parallel loops stay deterministic regardless of thread count.
    public func fork(index: UInt64) -> SplitMix64 {
        var g = SplitMix64(seed: state ^ (index &* 0xD1B5_4A32_D192_ED03) ^ 0x5851_F42D_4C95_7F2D)
        _ = g.next()
        return SplitMix64(seed: g.next())
    }

    /// Uniform Float in [0, 1) with 24 random bits.
    @inlinable
    public mutating func uniform() -> Float { Float(next() >> 40) * (1.0 / 16_777_216.0) }

    /// Uniform Double in [0, 1) with 53 random bits.
    @inlinable
    public mutating func uniformDouble() -> Double { Double(next() >> 11) * (1.0 / 9_007_199_254_740_992.0) }

    /// Uniform integer in `0..<bound` (Lemire's unbiased method). `bound` must be > 0.
    @inlinable
    public mutating func int(below bound: Int) -> Int {
        if bound <= 1 { return 0 }
        return Int(truncatingIfNeeded: next(upperBound: UInt64(bound)))
    }

    /// Standard normal N(0, 1) by the Box–Muller transform.
    public mutating func normal() -> Double {
        var u1 = uniformDouble()
        while u1 <= 1e-300 { u1 = uniformDouble() }
        let u2 = uniformDouble()
        return (-2.0 * log(u1)).squareRoot() * cos(2.0 * Double.pi * u2)
    }

    /// Gamma(shape, 1) by Marsaglia & Tsang (2000); shape < 1 uses the boost Gamma(shape+1)·U^(1/shape).
    public mutating func gamma(shape: Double) -> Double {
        if shape < 1 {
            let g = gamma(shape: shape + 1)
            var u = uniformDouble()
            while u <= 1e-300 { u = uniformDouble() }
            return g * pow(u, 1.0 / shape)
        }
        let d = shape - 1.0 / 3.0
        let c = 1.0 / (9.0 * d).squareRoot()
        while true {
            var x = 0.0, v = 0.0
            repeat {
                x = normal()
                v = 1.0 + c * x
            } while v <= 0
            v = v * v * v
            let u = uniformDouble()
            if u < 1 - 0.0331 * x * x * x * x { return d * v }
            if log(u) < 0.5 * x * x + d * (1 - v + log(v)) { return d * v }
        }
    }

    /// Beta(a, b) as X/(X+Y) with X ~ Gamma(a), Y ~ Gamma(b). Both parameters must be > 0.
    /// Beta(1, 1) — the CutMix/Mixup default α = 1 — is exactly Uniform(0, 1) and takes one draw
    /// instead of two Gamma variates (each a Box–Muller normal plus a rejection test).
    public mutating func beta(_ a: Double, _ b: Double) -> Double {
        if a == 1 && b == 1 { return uniformDouble() }
        let x = gamma(shape: a)
        let y = gamma(shape: b)
        let s = x + y
        return s > 0 ? x / s : 0.5
    }

    /// A uniformly random permutation of `0..<n` (Fisher–Yates).
    public mutating func permutation(_ n: Int) -> [Int] {
        var p = Array(0..<n)
        if n > 1 {
            for i in stride(from: n - 1, to: 0, by: -1) {
                let j = int(below: i + 1)
                p.swapAt(i, j)
            }
        }
        return p
    }
}

