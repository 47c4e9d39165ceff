import SAMixCore

extension Engine {
    /// Returns cached memory to the system: oneDNN's scratchpad arena, the caching allocator's free
    /// lists (large blocks are unmapped by glibc's free). Called after an allocation failure (the C ABI does it for every
    /// `outOfMemory` error), so the failed call's buffers do not stay allocated and the next call
    /// finds the address space it needs — including OpenBLAS, whose own allocator spins forever
    /// when its packing buffer cannot be allocated.
    public static func releaseCachedMemory() {
        DNNLConvolution.releaseScratch()
        BufferPool.shared.trim()
    }
}
