import SAMixCore
import SAMixOps

/// Multiply-accumulate count of a model's convolution and linear layers for one image — the
/// convention of `shared/bench/torch_reference.py` (BN, activations, pooling not counted).
public enum FLOPCounter {
    public static func forwardMACs(model: ImageClassifier, inChannels: Int, size: Int) throws -> Int {
        // Trace the conv geometry with one image in inference mode, hooking no ops: compute each
        // conv's output size from a forward pass at batch 1.
        var total = 0
        let x = try Tensor(zeros: [1, inChannels, size, size])
        try GradMode.withDisabled {
            try ConvTrace.record { _ = try model(x) } onConv: { g in
                total += g.cout * g.colRows * g.ho * g.wo
            }
        }
        total += model.head.fc.inFeatures * model.head.fc.outFeatures
        return total
    }
}
