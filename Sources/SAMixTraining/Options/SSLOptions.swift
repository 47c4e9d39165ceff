import SAMixCore
import SAMixOps
import SAMixNN
import SAMixData
import SAMixMixing

/// "key=value" options of MoCo v2 and its mixing — the one parser behind the C ABI
/// (`samix_ssl_create`), the CLI (`samix-bench ssl`, which passes its flags as the same pairs) and
/// the Python package (`samix.ssl.MoCo`). Defaults, ranges and choices come from `OptionSchema.ssl`;
/// every value is checked again by the engine's initialisers.
public struct SSLOptions {
    public var queueSize: Int
    public var temperature: Float
    public var keyMomentum: Double
    public var neckHidden: Int
    public var embeddingDim: Int
    public var neckBatchNorm: Bool
    public var shuffleBNGroups: Int
    public var mix: SSLMix

    /// The schema method of a mix name: "none" (also "moco", ""), "mixup", "samix" (also "samix-i",
    /// "samix-c", whose variant defaults to cluster).
    public static func schemaMethod(_ mix: String) throws -> String {
        switch mix.lowercased() {
        case "none", "moco", "": return "none"
        case "mixup", "moco-mixup": return "mixup"
        case "samix", "samix-i", "samix-c": return "samix"
        default: throw SAMixError.invalidArgument("unknown SSL mix '\(mix)'; expected none, mixup or samix")
        }
    }

    public init(mix: String, text: String) throws {
        var o = try KeyValueOptions(text, context: "ssl options")
        try self.init(mix: mix, options: &o)
    }

    public init(mix: String, pairs: [(String, String)]) throws {
        var o = try KeyValueOptions(pairs: pairs, context: "ssl options")
        try self.init(mix: mix, options: &o)
    }

    public init(mix: String, options o: inout KeyValueOptions) throws {
        let method = try SSLOptions.schemaMethod(mix)
        if mix.lowercased() == "samix-c", o.peek("variant") == nil { o.insertDefault("variant", "cluster") }
        try o.applySchema(OptionSchema.ssl, method: method)
        queueSize = try o.required("queue_size") { try $0.int($1) }
        temperature = try o.required("temperature") { try $0.float($1) }
        keyMomentum = try o.required("momentum") { try $0.double($1) }
        neckHidden = try o.required("neck_hidden") { try $0.int($1) }
        embeddingDim = try o.required("embedding_dim") { try $0.int($1) }
        neckBatchNorm = try o.required("neck_bn") { try $0.bool($1) }
        shuffleBNGroups = try o.required("shuffle_bn_groups") { try $0.int($1) }
        switch method {
        case "none": self.mix = .none
        case "mixup": self.mix = .mixup(alpha: try o.required("alpha") { try $0.double($1) })
        default: self.mix = .samix(try SSLOptions.samixConfig(&o))
        }
        try o.finish(known: OptionSchema.ssl.options.map(\.name))
    }

    /// The MoCo configuration of a backbone with these options.
    public func mocoConfig(architecture: String, inChannels: Int, seed: UInt64) throws -> MoCoConfig {
        try MoCoConfig(architecture: architecture, inChannels: inChannels, neckHidden: neckHidden, embeddingDim: embeddingDim,
                       neckBatchNorm: neckBatchNorm, queueSize: queueSize, temperature: temperature,
                       keyMomentum: keyMomentum, shuffleBNGroups: shuffleBNGroups, seed: seed)
    }

    static func samixConfig(_ o: inout KeyValueOptions) throws -> SAMixSSLConfig {
        let ctx = o.context
        let variantText = try o.required("variant") { $0.take($1) }
        let variant: SAMixSSLConfig.Variant = ["cluster", "c"].contains(variantText.lowercased()) ? .cluster : .instance
        let eta = try o.required("eta") { try $0.float($1) }
        let mixer = try MixerConfig.samix(lamMulK: try o.required("lam_mul_k") { try $0.doubles($1) },
                                          dropout: try o.required("value_dropout") { try $0.float($1) })
        let maskLoss = try MaskLoss(mode: try LearnedMixOptions.maskLossMode(try o.required("mask_loss_mode") { $0.take($1) },
                                                                             context: ctx),
                                    margin: try o.required("mask_loss_margin") { try $0.float($1) })
        let cluster = try MixerObjectiveLoss.named(try o.required("mixer_loss") { $0.take($1) }, eta: eta)
        let instance: SAMixSSLConfig.InstanceObjective
        switch cluster {
        case .etaBalanced: instance = .etaBalanced(eta: eta)
        case .mixupCrossEntropy: instance = .globalOnly
        case .sigmoidBCE:
            guard variant == .cluster else {
                throw SAMixError.invalidArgument("\(ctx): mixer_loss bce is only defined for the cluster variant")
            }
            instance = .etaBalanced(eta: eta)
        }
        let margin = try o.required("mean_margin") { try $0.double($1) }
        let adjustText = try o.required("mask_adjust") { $0.take($1) }
        let adjust: SSLMixing.MaskAdjustMode
        switch adjustText.lowercased() {
        case "auto": adjust = .auto(meanMargin: margin)
        case "auto_label": adjust = .autoLabel(meanMargin: margin)
        case "off", "none": adjust = .off
        default:
            guard let p = Double(adjustText), p >= 0, p <= 1 else {
                throw SAMixError.invalidArgument("\(ctx): mask_adjust must be auto, auto_label, off or a probability in [0, 1], got '\(adjustText)'")
            }
            adjust = .probability(p)
        }
        let extText = try o.required("positive_extension") { $0.take($1) }
        guard let ext = SSLMixing.PositiveExtension(rawValue: extText.lowercased()) else {
            throw SAMixError.invalidArgument("\(ctx): positive_extension must be off, interpolate, extrapolate or both")
        }
        let featuresText = try o.required("cluster_features") { $0.take($1) }
        guard let features = SAMixSSLConfig.ClusterFeatureSource(rawValue: featuresText.lowercased()) else {
            throw SAMixError.invalidArgument("\(ctx): cluster_features must be query or key, got '\(featuresText)'")
        }
        let pcaText = try o.required("cluster_pca_dim") { $0.take($1) }
        let pca: Int? = pcaText.lowercased() == "none" || pcaText == "0" ? nil : Int(pcaText)
        return try SAMixSSLConfig(variant: variant, alpha: try o.required("alpha") { try $0.double($1) }, mixer: mixer,
                                  maskLayer: try o.required("mask_layer") { try $0.int($1) }, maskLoss: maskLoss,
                                  maskLossWeight: try o.required("mask_loss") { try $0.float($1) }, maskAdjust: adjust,
                                  instanceObjective: instance, positiveExtension: ext,
                                  clusters: try o.required("clusters") { try $0.int($1) },
                                  kmeansIterations: try o.required("kmeans_iterations") { try $0.int($1) },
                                  kmeansWarmStart: try o.required("kmeans_warm_start") { try $0.bool($1) },
                                  clusterObjective: cluster, clusterFeatures: features, clusterPCADimensions: pca,
                                  detachClusterHeadMixedFeatures: try o.required("detach_cluster_head_mixed") { try $0.bool($1) })
    }
}
