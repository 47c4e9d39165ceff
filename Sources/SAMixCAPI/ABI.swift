import Glibc
import SAMix

// The C ABI of samix (`libsamix.so`). The public header `include/samix.h` is the single source of
// truth for names, status codes and signatures; this file and its siblings implement it.
//
// Every exported function:
//   * validates its arguments (null pointers, ranks, shapes, sizes, label ranges, handles) before
//     touching the engine, so no Swift trap is reachable from C;
//   * returns a `samix_status` (Int32); on failure a thread-local message is available from
//     `samix_last_error()` until the next failing call on the same thread;
//   * never retains caller memory after it returns.

/// Version of the C ABI. Bump on any incompatible change of `samix.h`; must equal
/// `SAMIX_ABI_VERSION` in the header and `ABI_VERSION` in `python/samix/_lib.py`.
let samixABIVersion: Int32 = 7

/// Version of the samix package (the Python package reports the same string).
let samixVersion = "0.1.0"

/// Status codes (`samix_status` in samix.h).
enum Status: Int32 {
    case ok = 0
    case invalidArgument = 1
    case shape = 2
    case nullPointer = 3
    case invalidHandle = 4
    case wrongHandleKind = 5
    case outOfMemory = 6
    case io = 7
    case numerical = 8
    case invalidState = 9
    case internalError = 10
    case distributed = 11
    case interrupted = 12
}

/// Errors raised by the ABI layer itself (argument validation), besides the engine's `SAMixError`.
struct CAPIError: Error {
    let status: Status
    let message: String
    init(_ status: Status, _ message: String) {
        self.status = status
        self.message = message
    }
}

// MARK: - Thread-local last error

/// Per-thread last error message, stored as a malloc'd C string under a pthread key (freed by the
/// key's destructor when the thread exits).
enum LastError {
    static let key: pthread_key_t = {
        var k = pthread_key_t()
        _ = pthread_key_create(&k) { p in free(p) }
        return k
    }()
    static let codeKey: pthread_key_t = {
        var k = pthread_key_t()
        _ = pthread_key_create(&k, nil)
        return k
    }()

    static func set(_ status: Status, _ message: String) {
        let old = pthread_getspecific(key)
        let new = strdup(message)
        _ = pthread_setspecific(key, new.map { UnsafeRawPointer($0) })
        _ = pthread_setspecific(codeKey, UnsafeRawPointer(bitPattern: Int(status.rawValue)))
        if let old { free(old) }
    }

    static func clear() {
        if let old = pthread_getspecific(key) {
            _ = pthread_setspecific(key, nil)
            free(old)
        }
        _ = pthread_setspecific(codeKey, nil)
    }

    static var message: UnsafePointer<CChar>? {
        pthread_getspecific(key).map { UnsafePointer($0.assumingMemoryBound(to: CChar.self)) }
    }

    static var code: Int32 {
        Int32(truncatingIfNeeded: Int(bitPattern: pthread_getspecific(codeKey)))
    }
}

/// Maps an engine error to its status code.
func status(of error: SAMixError) -> Status {
    switch error {
    case .invalidArgument: return .invalidArgument
    case .shapeMismatch: return .shape
    case .outOfMemory: return .outOfMemory
    case .io: return .io
    case .numerical: return .numerical
    case .invalidState: return .invalidState
    case .distributed: return .distributed
    case .interrupted: return .interrupted
    }
}

/// Runs `body`, translating thrown errors into a status code and the thread-local message.
/// `function` names the entry point in the message, e.g. "samix_mix: alpha must be > 0".
@inline(__always)
func guarded(_ function: StaticString, _ body: () throws -> Void) -> Int32 {
    do {
        try body()
        return Status.ok.rawValue
    } catch let e as CAPIError {
        LastError.set(e.status, "\(function): \(e.message)")
        return e.status.rawValue
    } catch let e as SAMixError {
        let s = status(of: e)
        if s == .outOfMemory { Engine.releaseCachedMemory() }
        LastError.set(s, "\(function): \(e.message)")
        return s.rawValue
    } catch {
        LastError.set(.internalError, "\(function): \(error)")
        return Status.internalError.rawValue
    }
}

// MARK: - Version, errors, threads, BLAS

@_cdecl("samix_abi_version")
public func samix_abi_version() -> Int32 { samixABIVersion }

private let versionCString = ConstantCString(samixVersion)

@_cdecl("samix_version")
public func samix_version() -> UnsafePointer<CChar> { versionCString.pointer }

private let emptyCString = ConstantCString("")

/// A C string made once and never freed or written: safe to hand to any thread.
struct ConstantCString: @unchecked Sendable {
    let pointer: UnsafePointer<CChar>
    init(_ s: String) { pointer = UnsafePointer(strdup(s)!) }
}

@_cdecl("samix_last_error")
public func samix_last_error() -> UnsafePointer<CChar> {
    LastError.message ?? emptyCString.pointer
}

@_cdecl("samix_last_error_code")
public func samix_last_error_code() -> Int32 { LastError.code }

@_cdecl("samix_clear_error")
public func samix_clear_error() { LastError.clear() }

@_cdecl("samix_set_num_threads")
public func samix_set_num_threads(_ n: Int64) -> Int32 {
    guarded("samix_set_num_threads") {
        guard let k = Int(exactly: n) else { throw CAPIError(.invalidArgument, "number of threads \(n) is out of range") }
        try Engine.setThreads(k)
    }
}

/// SAMIX_E_INVALID_ARGUMENT naming every invalid engine environment switch (SAMIX_NUM_THREADS,
/// SAMIX_CONV, SAMIX_CONV_ALGO, SAMIX_WINOGRAD_MIN_CHANNELS); front ends call it before any work.
@_cdecl("samix_check_environment")
public func samix_check_environment() -> Int32 {
    guarded("samix_check_environment") { try Engine.checkEnvironment() }
}

@_cdecl("samix_set_interrupt_check")
public func samix_set_interrupt_check(_ check: (@convention(c) (UnsafeMutableRawPointer?) -> Int32)?,
                                      _ user: UnsafeMutableRawPointer?) -> Int32 {
    guarded("samix_set_interrupt_check") {
        Interruption.setCheck(check.map { f in { f(user) != 0 } })   // the caller's pointer, passed back as given
    }
}

@_cdecl("samix_get_num_threads")
public func samix_get_num_threads() -> Int64 { Int64(Engine.threads) }

private let blasCString = ConstantCString(Engine.blasDescription)

@_cdecl("samix_blas_info")
public func samix_blas_info() -> UnsafePointer<CChar> { blasCString.pointer }

// MARK: - Argument validation helpers

/// Throws `nullPointer` if `p` is nil; returns it unwrapped.
@inline(__always)
func nonNull<T>(_ p: T?, _ name: String) throws -> T {
    guard let p else { throw CAPIError(.nullPointer, "\(name) is NULL") }
    return p
}

/// Reads a C shape array of `rank` dims, checking null, rank bounds, non-negative dims and that the
/// element count fits (`Tensor.maxElements`).
func readShape(_ shape: UnsafePointer<Int64>?, _ rank: Int64, name: String,
               expectedRank: ClosedRange<Int64>? = nil) throws -> [Int] {
    guard rank >= 0, rank <= 8 else { throw CAPIError(.shape, "\(name): rank \(rank) is out of range 0...8") }
    if let r = expectedRank, !r.contains(rank) {
        let want = r.lowerBound == r.upperBound ? "\(r.lowerBound)" : "\(r.lowerBound)...\(r.upperBound)"
        throw CAPIError(.shape, "\(name) must have rank \(want), got \(rank)")
    }
    if rank == 0 { return [] }
    let p = try nonNull(shape, "\(name) shape")
    let raw = Array(UnsafeBufferPointer(start: p, count: Int(rank)))
    if let d = raw.first(where: { $0 < 0 }) { throw CAPIError(.shape, "\(name): negative dimension \(d)") }
    guard Tensor.elementCount(raw) != nil else { throw CAPIError(.invalidArgument, "\(name): shape is too large") }
    return raw.map { Int($0) }
}

/// Whether all `n` floats at `p` are finite: the largest magnitude bit pattern (sign cleared) is
/// below the all-ones exponent of Inf/NaN. Integer max over four SIMD8 accumulators, so the loop
/// is bound by memory bandwidth rather than by add latency.
func allFinite(_ p: UnsafePointer<Float>, _ n: Int) -> Bool {
    let raw = UnsafeRawPointer(p)
    let magnitude = SIMD8<UInt32>(repeating: 0x7FFF_FFFF)
    var a0 = SIMD8<UInt32>(), a1 = a0, a2 = a0, a3 = a0
    var i = 0
    while i &+ 32 <= n {
        a0 = pointwiseMax(a0, raw.loadUnaligned(fromByteOffset: i &* 4, as: SIMD8<UInt32>.self) & magnitude)
        a1 = pointwiseMax(a1, raw.loadUnaligned(fromByteOffset: (i &+ 8) &* 4, as: SIMD8<UInt32>.self) & magnitude)
        a2 = pointwiseMax(a2, raw.loadUnaligned(fromByteOffset: (i &+ 16) &* 4, as: SIMD8<UInt32>.self) & magnitude)
        a3 = pointwiseMax(a3, raw.loadUnaligned(fromByteOffset: (i &+ 24) &* 4, as: SIMD8<UInt32>.self) & magnitude)
        i &+= 32
    }
    var m = pointwiseMax(pointwiseMax(a0, a1), pointwiseMax(a2, a3)).max()
    while i < n {
        m = max(m, p[i].bitPattern & 0x7FFF_FFFF)
        i &+= 1
    }
    return m < 0x7F80_0000
}

/// Throws `numerical` unless all `n` floats at `p` are finite.
func requireFinite(_ p: UnsafePointer<Float>, _ n: Int, _ name: String) throws {
    if allFinite(p, n) { return }
    var i = 0
    while i < n && p[i].isFinite { i &+= 1 }
    throw CAPIError(.numerical, "\(name) contains NaN or Inf (first at flat index \(i))")
}

/// Checks a finite float scalar.
func requireFinite(_ x: Float, _ name: String) throws {
    guard x.isFinite else { throw CAPIError(.numerical, "\(name) must be finite, got \(x)") }
}
