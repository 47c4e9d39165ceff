import Synchronization
import Glibc
import SAMix

/// Kinds of objects behind handles (`samix_handle_kind` in samix.h).
enum HandleKind: Int32, CaseIterable {
    case model = 1
    case optimizer = 2
    case policy = 3
    case trainer = 4
    case schedule = 5
    case dataset = 6
    case ssl = 7

    var name: String {
        switch self {
        case .model: return "model"
        case .optimizer: return "optimizer"
        case .policy: return "mixing policy"
        case .trainer: return "trainer"
        case .schedule: return "schedule"
        case .dataset: return "dataset"
        case .ssl: return "SSL model"
        }
    }
}

/// A lock shared by reference (several handles can share one): the engine's one lock type,
/// `Synchronization.Mutex`, guarding no value of its own.
///
/// A call made from inside a callback of a running call on the same object (e.g. a `MoCo.fit`
/// record callback that evaluates the model) would lock it again on the same thread, which
/// `Mutex` turns into a trap; `lockedForCall` reports it as `SAMIX_E_INVALID_STATE` instead.
final class CAPIMutex: Sendable {
    private let m = Mutex(())
    /// The thread holding the lock through `lockedForCall` (0 = none). Only the owner stores its
    /// own id, so a thread reading its own id here is the owner, whatever the ordering.
    private let owner = Atomic<UInt>(0)

    @inline(__always)
    func locked<R>(_ body: () throws -> R) rethrows -> R {
        try m.withLock { _ in try body() }
    }

    /// `locked` for the C ABI's calls on an object: a re-entrant call from the thread that holds
    /// the lock throws instead of trapping.
    func lockedForCall<R>(_ body: () throws -> R) throws -> R {
        let me = UInt(pthread_self())
        guard owner.load(ordering: .relaxed) != me else {
            throw CAPIError(.invalidState, "the object is in use by a running call on this thread (a callback of a "
                                           + "call cannot use the object that call is running on)")
        }
        return try m.withLock { _ in
            owner.store(me, ordering: .relaxed)
            defer { owner.store(0, ordering: .relaxed) }
            return try body()
        }
    }
}

/// One live object. `lock` serialises calls that use the object, so two Python threads calling the
/// same model never race on its buffers; calls on different objects run in parallel.
final class HandleEntry {
    let id: UInt64
    let kind: HandleKind
    let object: AnyObject
    let lock: CAPIMutex

    init(id: UInt64, kind: HandleKind, object: AnyObject, lock: CAPIMutex? = nil) {
        self.id = id
        self.kind = kind
        self.object = object
        self.lock = lock ?? CAPIMutex()
    }
}

/// Thread-safe table of live objects keyed by 64-bit ids.
///
/// Ids are never reused: they combine a per-process random tag (so a handle from another process or
/// a made-up integer is almost surely rejected) with a counter. A freed or garbage handle is
/// reported as `SAMIX_E_INVALID_HANDLE`, never dereferenced. Objects are kept alive by the table,
/// and an in-flight call keeps its own reference, so freeing a handle while another thread uses
/// it is safe (the object dies when the call finishes).
final class Registry: @unchecked Sendable {  // every mutable field is read and written under `lock`
    static let shared = Registry()

    private let lock = CAPIMutex()
    private var entries: [UInt64: HandleEntry] = [:]
    private var counter: UInt64 = 0
    private let tag: UInt64

    private init() {
        var g = SplitMix64(seed: UInt64(truncatingIfNeeded: time(nil)) ^ UInt64(getpid()) << 32)
        tag = (g.next() & 0x7FFF) | 0x100  // 9..15 bits, never zero
    }

    /// Registers `object` and returns its new handle. Objects that share state (a trainer and the
    /// model it trains) pass `sharing:` so calls on either are serialised by one lock.
    func insert(_ object: AnyObject, kind: HandleKind, sharing: HandleEntry? = nil) -> UInt64 {
        lock.locked {
            counter &+= 1
            let id = (tag << 48) | (counter & 0x0000_FFFF_FFFF_FFFF)
            entries[id] = HandleEntry(id: id, kind: kind, object: object, lock: sharing?.lock)
            return id
        }
    }

    /// The live entry for `id`, checked to be of `kind`.
    func entry(_ id: UInt64, _ kind: HandleKind) throws -> HandleEntry {
        let e = lock.locked { entries[id] }
        guard let e else {
            if id == 0 { throw CAPIError(.invalidHandle, "\(kind.name) handle is null (0)") }
            throw CAPIError(.invalidHandle,
                            "\(kind.name) handle 0x\(String(id, radix: 16)) is not live (freed or never created)")
        }
        guard e.kind == kind else {
            throw CAPIError(.wrongHandleKind, "handle 0x\(String(id, radix: 16)) is a \(e.kind.name), expected a \(kind.name)")
        }
        return e
    }

    /// Runs `body` with the object behind `id` (of type `T`), holding the object's lock.
    func with<T: AnyObject, R>(_ id: UInt64, _ kind: HandleKind, as: T.Type,
                               _ body: (T) throws -> R) throws -> R {
        let e = try entry(id, kind)
        guard let obj = e.object as? T else {
            throw CAPIError(.wrongHandleKind, "handle 0x\(String(id, radix: 16)) holds an unexpected object type")
        }
        return try e.lock.lockedForCall { try body(obj) }
    }

    /// Removes the handle; throws if it is not live or of another kind.
    func remove(_ id: UInt64, _ kind: HandleKind) throws {
        _ = try entry(id, kind)
        _ = lock.locked { entries.removeValue(forKey: id) }
    }

    /// Number of live handles of `kind` (all kinds if nil).
    func count(_ kind: HandleKind?) -> Int {
        lock.locked {
            guard let kind else { return entries.count }
            return entries.values.reduce(0) { $0 + ($1.kind == kind ? 1 : 0) }
        }
    }

    /// Kind of a live handle, or nil.
    func kind(of id: UInt64) -> HandleKind? {
        lock.locked { entries[id]?.kind }
    }
}

// MARK: - C entry points

@_cdecl("samix_live_handles")
public func samix_live_handles(_ kind: Int32) -> Int64 {
    if kind == 0 { return Int64(Registry.shared.count(nil)) }
    guard let k = HandleKind(rawValue: kind) else { return -1 }
    return Int64(Registry.shared.count(k))
}

@_cdecl("samix_handle_kind")
public func samix_handle_kind(_ handle: UInt64) -> Int32 {
    Registry.shared.kind(of: handle)?.rawValue ?? 0
}

/// Shared implementation of the typed free functions.
func freeHandle(_ function: StaticString, _ handle: UInt64, _ kind: HandleKind) -> Int32 {
    guarded(function) { try Registry.shared.remove(handle, kind) }
}
