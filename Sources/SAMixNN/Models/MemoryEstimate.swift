import Synchronization
import SAMixCore
import SAMixOps

extension ImageClassifier {
    /// (fixed, per-sample) peak bytes of an evaluation pass, by (architecture, channels, classes, H, W).
    private static let passCost = Mutex<[String: (fixed: Int, perSample: Int)]>([:])

    /// Estimated peak bytes of a pass over `batch` images of `height`×`width`: `fixed + batch ×
    /// perSample` of a no-gradient evaluation pass — measured once per architecture and image size
    /// from passes over 2 and 4 zero images after a warm-up pass (so one-off work buffers do not count
    /// as per-image cost; weights and BN statistics are untouched) — and 4 × that for a training
    /// step, which keeps activations for backward and adds their gradients.
    public func estimatedPeakBytes(batch: Int, height: Int, width: Int, training: Bool) throws -> Int {
        let key = "\(architecture)/\(inChannels)/\(numClasses)/\(height)x\(width)"
        var cost = ImageClassifier.passCost.withLock { $0[key] }
        if cost == nil {
            func peak(_ n: Int) throws -> Int {
                let x = try Tensor(zeros: [n, inChannels, height, width])
                return try BufferPool.shared.measurePeak {
                    _ = try withMode(training: false) { try GradMode.withDisabled { try self(x) } }
                }
            }
            _ = try peak(1)
            let p2 = try peak(2), p4 = try peak(4)
            let per = max(1, (p4 - p2) / 2)
            let c = (fixed: max(0, p2 - 2 * per), perSample: per)
            ImageClassifier.passCost.withLock { $0[key] = c }
            cost = c
        }
        guard let cost else { return 0 }
        let (scaled, o1) = cost.perSample.multipliedReportingOverflow(by: batch)
        let (pass, o2) = scaled.addingReportingOverflow(cost.fixed)
        let (bytes, o3) = pass.multipliedReportingOverflow(by: training ? 4 : 1)
        return o1 || o2 || o3 ? Int.max : bytes
    }

    /// Throws `outOfMemory` before allocating when a pass over `batch` images clearly cannot fit
    /// (`MemoryBudget`); cheap when it fits (one cached estimate, two small /proc reads).
    public func requireMemory(batch: Int, height: Int, width: Int, training: Bool) throws {
        guard MemoryBudget.availableBytes() != nil else { return }
        let need = try estimatedPeakBytes(batch: batch, height: height, width: width, training: training)
        try MemoryBudget.require(need, for: (training ? "a training step" : "a forward pass")
                                 + " over \(batch) images of \(inChannels)×\(height)×\(width) (\(architecture))")
    }
}
