import Synchronization

extension ImageClassifier {
    /// Per-sample peak bytes of an evaluation pass, by (architecture, channels, classes, H, W).
    private static let perSampleBytes = Mutex<[String: Int]>([:])

    /// Estimated peak bytes of a pass over `batch` images of `height`×`width`: the bytes one image
    /// takes in a no-gradient evaluation pass (measured once per architecture and image size with
    /// one zero image; weights and BN statistics untouched), times the batch — times 4 for a
    /// training step, which keeps activations for backward and adds their gradients.
    public func estimatedPeakBytes(batch: Int, height: Int, width: Int, training: Bool) throws -> Int {
        let key = "\(architecture)/\(inChannels)/\(numClasses)/\(height)x\(width)"
        var one = ImageClassifier.perSampleBytes.withLock { $0[key] }
        if one == nil {
            let x = try Tensor(zeros: [1, inChannels, height, width])
            let measured = try BufferPool.shared.measurePeak {
                _ = try withMode(training: false) { try GradMode.withDisabled { try self(x) } }
            }
            ImageClassifier.perSampleBytes.withLock { $0[key] = measured }
            one = measured
        }
        let (bytes, overflow) = (one ?? 0).multipliedReportingOverflow(by: batch * (training ? 4 : 1))
        return overflow ? Int.max : bytes
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
