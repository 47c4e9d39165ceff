import SAMixCore
import SAMixOps
import SAMixNN
import SAMixData

/// Shared pieces of the model-dependent mixing objectives (AttentiveMix, PuzzleMix, AlignMix,
/// DecoupleMix): the loss choice and helpers that run a model for side information (attention maps,
/// input saliency) without disturbing training.

package enum ModelMixing {
    /// Runs `body` with `model` in evaluation mode (restoring its previous mode afterwards).
    static func inEvalMode<T>(_ model: ImageClassifier, _ body: () throws -> T) rethrows -> T {
        let wasTraining = model.isTraining
        model.eval()
        defer { model.train(wasTraining) }
        return try body()
    }

    /// Runs `body` with every parameter of `model` excluded from gradient recording, restoring each
    /// parameter's own `requiresGrad` flag afterwards (so a side computation's `backward()` does not
    /// accumulate into the gradients the training step is about to compute).
    static func withFrozenParameters<T>(_ model: Module, _ body: () throws -> T) rethrows -> T {
        let params = model.parameters()
        let flags = params.map { $0.requiresGrad }
        for p in params { p.requiresGrad = false }
        defer { for (p, f) in zip(params, flags) { p.requiresGrad = f } }
        return try body()
    }

    /// Checks a training batch: images [N, C, H, W] with N labels.
    package static func checkBatch(_ batch: Batch, _ name: String) throws -> (n: Int, c: Int, h: Int, w: Int) {
        let x = batch.images
        try requireShape(x.rank == 4, "\(name): images must be [N, C, H, W], got \(x.shape)")
        try requireShape(x.shape[0] == batch.labels.count && x.shape[0] >= 1,
                         "\(name): \(batch.labels.count) labels for images \(x.shape)")
        return (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
    }

    /// Beta(α, α) draw or a fixed λ.
    static func drawLambda(alpha: Double, fixed: Double?, rng: inout SplitMix64) -> Double {
        if let f = fixed { return f }
        return rng.beta(alpha, alpha)
    }
}
