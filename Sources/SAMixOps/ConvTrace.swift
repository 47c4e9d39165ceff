import Synchronization
import SAMixCore

/// Lets a caller observe the geometry of every conv2d executed inside `record` (FLOP counting). One
/// observer at a time, process-wide: convolutions on other threads meanwhile are reported too.
package enum ConvTrace {
    private static let observer = Mutex<(@Sendable (Conv2DGeometry) -> Void)?>(nil)

    /// Called by `conv2d` for each convolution.
    static func report(_ g: Conv2DGeometry) {
        if let o = observer.withLock({ $0 }) { o(g) }
    }

    package static func record(_ body: () throws -> Void, onConv: @escaping @Sendable (Conv2DGeometry) -> Void) throws {
        observer.withLock { $0 = onConv }
        defer { observer.withLock { $0 = nil } }
        try body()
    }
}
