import Glibc

/// A caller's request to stop a long engine call between batches (Ctrl-C in a notebook).
///
/// The caller installs a check for the calling thread (`withCheck` / `setCheck`); the long loops
/// that change no state the caller keeps — evaluations, feature extraction, kNN, the linear probe,
/// mask comparisons — call `checkpoint(_:)` between batches, which throws
/// `SAMixError.interrupted` when the check returns true. Training loops do not use it: they stop
/// through their step callbacks, which leave the trainer resumable at the next step.
///
/// The check runs on the thread that made the call (never on a parallel worker), at most once per
/// batch, so its cost (a C callback into Python: ~1 µs) does not show.
public enum Interruption {
    /// Returns true when the caller wants the running call to stop.
    public typealias Check = () -> Bool

    final class Box {
        let check: Check
        init(_ check: @escaping Check) { self.check = check }
    }

    /// The calling thread's check (a retained `Box`, released by the key's destructor at thread exit).
    static let key: pthread_key_t = {
        var k = pthread_key_t()
        _ = pthread_key_create(&k) { p in if let p { Unmanaged<AnyObject>.fromOpaque(p).release() } }
        return k
    }()

    /// Installs `check` for the calling thread (nil removes it).
    public static func setCheck(_ check: Check?) {
        if let old = pthread_getspecific(key) { Unmanaged<AnyObject>.fromOpaque(old).release() }
        let new = check.map { Unmanaged.passRetained(Box($0) as AnyObject).toOpaque() }
        _ = pthread_setspecific(key, new.map { UnsafeRawPointer($0) })
    }

    /// Runs `body` with `check` installed for the calling thread, then restores the previous one.
    public static func withCheck<T>(_ check: @escaping Check, _ body: () throws -> T) rethrows -> T {
        let previous = current
        setCheck(check)
        defer { setCheck(previous) }
        return try body()
    }

    /// The calling thread's check, if any.
    public static var current: Check? {
        guard let p = pthread_getspecific(key) else { return nil }
        return (Unmanaged<AnyObject>.fromOpaque(p).takeUnretainedValue() as? Box)?.check
    }

    /// Throws `SAMixError.interrupted` ("<what> was interrupted") when the calling thread's check
    /// asks to stop; does nothing without a check.
    public static func checkpoint(_ what: @autoclosure () -> String) throws {
        guard let p = pthread_getspecific(key),
              let box = Unmanaged<AnyObject>.fromOpaque(p).takeUnretainedValue() as? Box else { return }
        if box.check() { throw SAMixError.interrupted("\(what()) was interrupted") }
    }
}
