import Glibc

/// The part of Open MPI's C API samix uses, bound at run time with `dlopen`/`dlsym`, so that neither
/// `libsamix.so` nor `samix-bench` links libmpi: single-process use works on machines without Open MPI,
/// and only asking for distributed training needs it (a clear error names what is missing).
///
/// Open MPI's predefined handles (`MPI_COMM_WORLD`, `MPI_FLOAT`, `MPI_SUM`, …) are addresses of
/// exported globals (`&ompi_mpi_comm_world`, …), which is how `mpi.h` defines them; `MPI_IN_PLACE`
/// is `(void *)1`. This binding is therefore specific to Open MPI (any 4.x/5.x, `libmpi.so.40`).
/// The library is opened with `RTLD_GLOBAL` because Open MPI's own plugins resolve symbols of libmpi.
final class OpenMPILibrary: @unchecked Sendable {  // immutable after init; MPI calls are serialized by ProcessGroup
    typealias Raw = UnsafeMutableRawPointer
    let initThread: @convention(c) (Raw?, Raw?, Int32, UnsafeMutablePointer<Int32>) -> Int32
    let initialized: @convention(c) (UnsafeMutablePointer<Int32>) -> Int32
    let finalized: @convention(c) (UnsafeMutablePointer<Int32>) -> Int32
    let finalize: @convention(c) () -> Int32
    let commRank: @convention(c) (Raw, UnsafeMutablePointer<Int32>) -> Int32
    let commSize: @convention(c) (Raw, UnsafeMutablePointer<Int32>) -> Int32
    let commSetErrhandler: @convention(c) (Raw, Raw) -> Int32
    let allreduce: @convention(c) (UnsafeRawPointer?, Raw?, Int32, Raw, Raw, Raw) -> Int32
    let iallreduce: @convention(c) (UnsafeRawPointer?, Raw?, Int32, Raw, Raw, Raw, UnsafeMutablePointer<Raw?>) -> Int32
    let wait: @convention(c) (UnsafeMutablePointer<Raw?>, Raw?) -> Int32
    let test: @convention(c) (UnsafeMutablePointer<Raw?>, UnsafeMutablePointer<Int32>, Raw?) -> Int32
    let commDup: @convention(c) (Raw, UnsafeMutablePointer<Raw?>) -> Int32
    let bcast: @convention(c) (Raw?, Int32, Raw, Int32, Raw) -> Int32
    let allgather: @convention(c) (UnsafeRawPointer?, Int32, Raw, Raw?, Int32, Raw, Raw) -> Int32
    let barrier: @convention(c) (Raw) -> Int32
    let abort: @convention(c) (Raw, Int32) -> Int32
    let errorString: @convention(c) (Int32, UnsafeMutablePointer<CChar>, UnsafeMutablePointer<Int32>) -> Int32

    let commWorld: Raw
    let float32: Raw, float64: Raw, uint64: Raw, byte: Raw
    let opSum: Raw, opMax: Raw, opMin: Raw
    let errorsReturn: Raw
    /// `MPI_IN_PLACE`.
    static var inPlace: UnsafeRawPointer { UnsafeRawPointer(bitPattern: 1)! }

    /// The file name opened (for messages).
    let path: String

    /// Opens libmpi: `SAMIX_MPI_LIBRARY` when set, else `libmpi.so.40`, then `libmpi.so`.
    init() throws {
        var candidates = ["libmpi.so.40", "libmpi.so"]
        if let p = getenv("SAMIX_MPI_LIBRARY"), !String(cString: p).isEmpty { candidates = [String(cString: p)] }
        var handle: UnsafeMutableRawPointer?
        var errors: [String] = []
        var opened = ""
        for name in candidates {
            handle = dlopen(name, RTLD_NOW | RTLD_GLOBAL)
            if handle != nil { opened = name; break }
            errors.append(dlerror().map { String(cString: $0) } ?? name)
        }
        guard let handle else {
            throw SAMixError.distributed("distributed training needs Open MPI's libmpi, which could not be loaded ("
                + errors.joined(separator: "; ") + "); install it (Debian: apt-get install openmpi-bin libopenmpi3) "
                + "or point SAMIX_MPI_LIBRARY at libmpi.so")
        }
        path = opened
        func symbol(_ name: String) throws -> Raw {
            guard let s = dlsym(handle, name) else {
                throw SAMixError.distributed("\(opened) has no symbol \(name): samix's MPI binding needs Open MPI 4 or 5")
            }
            return s
        }
        func function<F>(_ name: String) throws -> F { unsafeBitCast(try symbol(name), to: F.self) }
        initThread = try function("MPI_Init_thread")
        initialized = try function("MPI_Initialized")
        finalized = try function("MPI_Finalized")
        finalize = try function("MPI_Finalize")
        commRank = try function("MPI_Comm_rank")
        commSize = try function("MPI_Comm_size")
        commSetErrhandler = try function("MPI_Comm_set_errhandler")
        allreduce = try function("MPI_Allreduce")
        iallreduce = try function("MPI_Iallreduce")
        wait = try function("MPI_Wait")
        test = try function("MPI_Test")
        commDup = try function("MPI_Comm_dup")
        bcast = try function("MPI_Bcast")
        allgather = try function("MPI_Allgather")
        barrier = try function("MPI_Barrier")
        abort = try function("MPI_Abort")
        errorString = try function("MPI_Error_string")
        commWorld = try symbol("ompi_mpi_comm_world")
        float32 = try symbol("ompi_mpi_float")
        float64 = try symbol("ompi_mpi_double")
        uint64 = try symbol("ompi_mpi_uint64_t")
        byte = try symbol("ompi_mpi_byte")
        opSum = try symbol("ompi_mpi_op_sum")
        opMax = try symbol("ompi_mpi_op_max")
        opMin = try symbol("ompi_mpi_op_min")
        errorsReturn = try symbol("ompi_mpi_errors_return")
    }

    /// The text of an MPI error code.
    func message(_ code: Int32) -> String {
        var buf = [CChar](repeating: 0, count: 512)
        var len: Int32 = 0
        _ = errorString(code, &buf, &len)
        return String(decoding: buf.prefix(Int(max(0, min(len, 511)))).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
