import SAMixCore

/// Lets a caller observe the geometry of every conv2d executed on this thread inside `record`.
package enum ConvTrace {
    nonisolated(unsafe) static var observer: ((Conv2DGeometry) -> Void)?

    package static func record(_ body: () throws -> Void, onConv: @escaping (Conv2DGeometry) -> Void) throws {
        observer = onConv
        defer { observer = nil }
        try body()
    }
}
