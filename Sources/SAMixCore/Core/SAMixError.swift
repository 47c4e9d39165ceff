/// Errors thrown by the engine. Every failure that user input can cause is reported through this
/// type (never a trap), so the C ABI can turn it into a status code and message.
public enum SAMixError: Error, CustomStringConvertible, Equatable {
    /// An argument has an invalid value (negative size, α ≤ 0, unknown name, …).
    case invalidArgument(String)
    /// Tensor shapes do not fit together.
    case shapeMismatch(String)
    /// A buffer could not be allocated.
    case outOfMemory(String)
    /// Reading or writing a file failed, or its contents are malformed.
    case io(String)
    /// NaN/Inf where finite values are required, or a diverged computation.
    case numerical(String)
    /// The operation is not valid in the object's current state (e.g. backward twice).
    case invalidState(String)
    /// Distributed training failed: MPI missing or failing, ranks that disagree (model, settings,
    /// parameters), or a rank that died or hung past the collective timeout.
    case distributed(String)
    /// The caller asked a long call to stop (`Interruption`, Ctrl-C); nothing the caller keeps changed.
    case interrupted(String)

    public var message: String {
        switch self {
        case .invalidArgument(let m), .shapeMismatch(let m), .outOfMemory(let m),
             .io(let m), .numerical(let m), .invalidState(let m), .distributed(let m),
             .interrupted(let m):
            return m
        }
    }

    public var description: String { message }
}

/// Throws `SAMixError.invalidArgument(message())` unless `condition` holds.
@inlinable
public func require(_ condition: Bool, _ message: @autoclosure () -> String) throws {
    if !condition { throw SAMixError.invalidArgument(message()) }
}

/// Throws `SAMixError.shapeMismatch(message())` unless `condition` holds.
@inlinable
public func requireShape(_ condition: Bool, _ message: @autoclosure () -> String) throws {
    if !condition { throw SAMixError.shapeMismatch(message()) }
}
