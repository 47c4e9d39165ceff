import SAMixCore
import SAMixOps

/// Builds the engine's models by name: "resnet20", "resnet32", "resnet44", "resnet56", "resnet110",
/// "resnet18", "resnet34", "preactresnet18", "wrn28_k" (e.g. "wrn28_2", "wrn28_10").
public enum ModelZoo {
    /// Names `make` accepts (WRN with any widening factor k as "wrn28_k").
    public static let names = ["resnet20", "resnet32", "resnet44", "resnet56", "resnet110", "resnet18", "resnet34",
                               "preactresnet18", "wrn28_2", "wrn28_8", "wrn28_10"]

    public static func makeBackbone(_ name: String, inChannels: Int = 3, rng: inout SplitMix64) throws -> Backbone {
        let key = String(name.lowercased().filter { $0 != "-" })
        switch key {
        case "resnet20": return try ResNetCIFAR(depth: 20, inChannels: inChannels, rng: &rng)
        case "resnet32": return try ResNetCIFAR(depth: 32, inChannels: inChannels, rng: &rng)
        case "resnet44": return try ResNetCIFAR(depth: 44, inChannels: inChannels, rng: &rng)
        case "resnet56": return try ResNetCIFAR(depth: 56, inChannels: inChannels, rng: &rng)
        case "resnet110": return try ResNetCIFAR(depth: 110, inChannels: inChannels, rng: &rng)
        case "resnet18": return try ResNet(blocks: [2, 2, 2, 2], inChannels: inChannels, rng: &rng)
        case "resnet34": return try ResNet(blocks: [3, 4, 6, 3], inChannels: inChannels, rng: &rng)
        case "preactresnet18": return try PreActResNet(blocks: [2, 2, 2, 2], inChannels: inChannels, rng: &rng)
        default:
            if key.hasPrefix("wrn28_"), let k = Int(key.dropFirst(6)) {
                return try WideResNet(depth: 28, widen: k, inChannels: inChannels, rng: &rng)
            }
            throw SAMixError.invalidArgument("unknown model '\(name)'; known: \(names.joined(separator: ", "))")
        }
    }

    /// A classifier (backbone + GAP + linear head) by name.
    public static func make(_ name: String, numClasses: Int, inChannels: Int = 3, seed: UInt64 = 0) throws -> ImageClassifier {
        Engine.configureBLAS()
        try require(numClasses >= 1 && numClasses <= 1_000_000, "num_classes must be in 1...1000000, got \(numClasses)")
        try require(inChannels >= 1 && inChannels <= 4096, "in_channels must be in 1...4096, got \(inChannels)")
        var rng = SplitMix64(seed: seed)
        let backbone = try makeBackbone(name, inChannels: inChannels, rng: &rng)
        return try ImageClassifier(architecture: name.lowercased(), backbone: backbone, inChannels: inChannels,
                                   numClasses: numClasses, rng: &rng)
    }
}
