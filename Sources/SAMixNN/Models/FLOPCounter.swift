import Synchronization
import SAMixCore
import SAMixOps

/// Multiply-accumulate count of a model's convolution and linear layers for one image — the
/// convention of `shared/bench/torch_reference.py` (BN, activations, pooling not counted).
public enum FLOPCounter {
    public static func forwardMACs(model: ImageClassifier, inChannels: Int, size: Int) throws -> Int {
        // Trace the conv geometry with one image in inference mode, hooking no ops: compute each
        // conv's output size from a forward pass at batch 1.
        final class Count: Sendable { let macs = Atomic<Int>(0) }
        let count = Count()
        let x = try Tensor(zeros: [1, inChannels, size, size])
        try GradMode.withDisabled {
            try ConvTrace.record { _ = try model(x) } onConv: { g in
                count.macs.add(g.cout * g.colRows * g.ho * g.wo, ordering: .relaxed)
            }
        }
        return count.macs.load(ordering: .relaxed) + model.head.fc.inFeatures * model.head.fc.outFeatures
    }
}
