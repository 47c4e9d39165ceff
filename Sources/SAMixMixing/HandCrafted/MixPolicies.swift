import SAMixCore
import SAMixOps
import SAMixNN
import SAMixData

/// A hand-crafted policy whose partner choice and λ-per-sample switch can be set after creation.
public protocol ConfigurableMixPolicy: MixPolicy {
    /// One λ (and box or mask) per sample instead of one per batch.
    var perSample: Bool { get set }
    /// How each sample's partner is drawn.
    var partner: PartnerMode { get set }
}

extension Mixup: ConfigurableMixPolicy {}
extension CutMix: ConfigurableMixPolicy {}
extension SmoothMix: ConfigurableMixPolicy {}
extension ResizeMix: ConfigurableMixPolicy {}
extension GridMix: ConfigurableMixPolicy {}
extension FMix: ConfigurableMixPolicy {}
extension SaliencyMix: ConfigurableMixPolicy {}

/// The hand-crafted policies by name with OpenMixup's CIFAR defaults (each type's initialiser) — the
/// one factory behind the trainer objectives (`ObjectiveRegistry`), the C ABI (`samix_policy_create`)
/// and the CLI.
public enum MixPolicies {
    public static let names = ["mixup", "cutmix", "smoothmix", "resizemix", "gridmix", "fmix", "saliencymix"]

    /// `alpha`, `perSample`, `partner`: nil keeps the policy's default. SmoothMix has no α (giving
    /// one is an error, not silently ignored).
    public static func make(_ name: String, alpha: Double? = nil, perSample: Bool? = nil,
                            partner: PartnerMode? = nil) throws -> any ConfigurableMixPolicy {
        if let a = alpha { try require(a > 0 && a.isFinite, "alpha must be a finite value > 0, got \(a)") }
        var p: any ConfigurableMixPolicy
        switch name.lowercased() {
        case "mixup": p = try alpha.map { try Mixup(alpha: $0) } ?? Mixup()
        case "cutmix": p = try alpha.map { try CutMix(alpha: $0) } ?? CutMix()
        case "smoothmix":
            try require(alpha == nil, "smoothmix has no alpha parameter")
            p = try SmoothMix()
        case "resizemix": p = try alpha.map { try ResizeMix(alpha: $0) } ?? ResizeMix()
        case "gridmix": p = try alpha.map { try GridMix(alpha: $0) } ?? GridMix()
        case "fmix": p = try alpha.map { try FMix(alpha: $0) } ?? FMix()
        case "saliencymix": p = try alpha.map { try SaliencyMix(alpha: $0) } ?? SaliencyMix()
        default:
            throw SAMixError.invalidArgument("unknown mixing method '\(name)'; known: \(names.joined(separator: ", "))")
        }
        if let perSample { p.perSample = perSample }
        if let partner { p.partner = partner }
        return p
    }
}
