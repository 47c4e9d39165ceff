/// Vectorised float reductions. Swift never auto-vectorises float reductions (strict FP order), so
/// these use SIMD8 with four accumulators (machine-notes: 8–22× faster than a scalar loop).
@inlinable
public func sumFloats(_ p: UnsafePointer<Float>, _ n: Int) -> Float {
    var a0 = SIMD8<Float>(), a1 = SIMD8<Float>(), a2 = SIMD8<Float>(), a3 = SIMD8<Float>()
    var i = 0
    let raw = UnsafeRawPointer(p)
    while i &+ 32 <= n {
        a0 += raw.loadUnaligned(fromByteOffset: i &* 4, as: SIMD8<Float>.self)
        a1 += raw.loadUnaligned(fromByteOffset: (i &+ 8) &* 4, as: SIMD8<Float>.self)
        a2 += raw.loadUnaligned(fromByteOffset: (i &+ 16) &* 4, as: SIMD8<Float>.self)
        a3 += raw.loadUnaligned(fromByteOffset: (i &+ 24) &* 4, as: SIMD8<Float>.self)
        i &+= 32
    }
    while i &+ 8 <= n {
        a0 += raw.loadUnaligned(fromByteOffset: i &* 4, as: SIMD8<Float>.self)
        i &+= 8
    }
    var s = ((a0 + a1) + (a2 + a3)).sum()
    while i < n { s += p[i]; i &+= 1 }
    return s
}

/// Σ a[i]·b[i], vectorised.
@inlinable
public func dotFloats(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
    var s0 = SIMD8<Float>(), s1 = SIMD8<Float>()
    var i = 0
    let ra = UnsafeRawPointer(a), rb = UnsafeRawPointer(b)
    while i &+ 16 <= n {
        s0 += ra.loadUnaligned(fromByteOffset: i &* 4, as: SIMD8<Float>.self)
            * rb.loadUnaligned(fromByteOffset: i &* 4, as: SIMD8<Float>.self)
        s1 += ra.loadUnaligned(fromByteOffset: (i &+ 8) &* 4, as: SIMD8<Float>.self)
            * rb.loadUnaligned(fromByteOffset: (i &+ 8) &* 4, as: SIMD8<Float>.self)
        i &+= 16
    }
    var s = (s0 + s1).sum()
    while i < n { s += a[i] * b[i]; i &+= 1 }
    return s
}
