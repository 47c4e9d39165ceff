import Glibc

/// Whether ops record autodiff history on the current thread (on by default).
/// `GradMode.withDisabled { ... }` runs a block in inference mode: no tape, no saved tensors.
public enum GradMode {
    private static let key: pthread_key_t = {
        var k = pthread_key_t()
        pthread_key_create(&k, nil)
        return k
    }()

    /// True when recording is on for this thread.
    public static var isEnabled: Bool { pthread_getspecific(key) == nil }

    /// Runs `body` with recording off on this thread, restoring the previous mode afterwards.
    public static func withDisabled<T>(_ body: () throws -> T) rethrows -> T {
        let previous = pthread_getspecific(key)
        pthread_setspecific(key, UnsafeRawPointer(bitPattern: 1))
        defer { pthread_setspecific(key, previous) }
        return try body()
    }

    /// Runs `body` with recording on (inside a `withDisabled` block, for example).
    public static func withEnabled<T>(_ body: () throws -> T) rethrows -> T {
        let previous = pthread_getspecific(key)
        pthread_setspecific(key, nil)
        defer { pthread_setspecific(key, previous) }
        return try body()
    }
}
