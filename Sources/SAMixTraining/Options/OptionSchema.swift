import SAMixCore
import SAMixOps
import SAMixNN
import SAMixData
import SAMixMixing

/// One option of a front end (C ABI "key=value" text, `samix-bench` flag, Python keyword): its name,
/// type, default (per method where the methods differ), valid range or choices and a one-line doc.
/// Declared once in `OptionSchema`; the engine's parsers (`LearnedMixOptions`, `SSLOptions`) take
/// their defaults and ranges from it, the C ABI exports it (`samix_option_schema`), the CLI builds
/// its flag defaults and help from it and the Python package its signatures and docstrings.
public struct OptionSpec: Equatable, Sendable {
    public enum Kind: String, Equatable, Sendable {
        /// A finite real number.
        case real
        /// An integer (`allowsNone`: also "none", e.g. a feature that can be switched off).
        case int
        /// 0/1 (also true/false, yes/no, on/off).
        case bool
        /// One of `choices` (case-insensitive).
        case choice
        /// A comma-separated list of real numbers.
        case list
        /// Free text (a path).
        case string
    }

    public let name: String
    public let kind: Kind
    /// Default in the "key=value" text form for every method of the group; nil = no default (the
    /// value is required, or derived from another argument, e.g. the trainer's seed).
    public let defaultValue: String?
    /// Method-specific defaults overriding `defaultValue` (e.g. automix vs samix).
    public let methodDefaults: [String: String]
    /// Methods of the group the option applies to (empty: every method).
    public let methods: [String]
    /// Inclusive/exclusive numeric bounds of real, int and list values.
    public let minimum: Double?
    public let maximum: Double?
    public let minimumExclusive: Bool
    public let maximumExclusive: Bool
    public let choices: [String]
    /// Other spellings the parser accepts for a choice (not listed in `choices`).
    public let aliases: [String]
    public let allowsNone: Bool
    public let doc: String

    public init(_ name: String, _ kind: Kind, default d: String?, per methodDefaults: [String: String] = [:],
                methods: [String] = [], min: Double? = nil, max: Double? = nil, minExclusive: Bool = false,
                maxExclusive: Bool = false, choices: [String] = [], aliases: [String] = [], allowsNone: Bool = false,
                doc: String) {
        self.name = name; self.kind = kind; self.defaultValue = d; self.methodDefaults = methodDefaults
        self.methods = methods; self.minimum = min; self.maximum = max; self.minimumExclusive = minExclusive
        self.maximumExclusive = maxExclusive; self.choices = choices; self.aliases = aliases; self.allowsNone = allowsNone; self.doc = doc
    }

    /// Whether the option applies to `method` (nil: to some method of the group).
    public func applies(to method: String?) -> Bool {
        guard let m = method?.lowercased(), !methods.isEmpty else { return true }
        return methods.contains(m)
    }

    /// The default of `method` in the text form (nil: none).
    public func defaultText(method: String?) -> String? {
        if let m = method?.lowercased(), let d = methodDefaults[m] { return d }
        return defaultValue
    }

    /// The valid range as text, e.g. "[0, 0.5)" or "> 0" (nil: unbounded).
    public var rangeText: String? {
        func n(_ v: Double) -> String { v == v.rounded() && abs(v) < 1e15 ? String(Int(v)) : "\(v)" }
        switch (minimum, maximum) {
        case let (lo?, hi?): return (minimumExclusive ? "(" : "[") + "\(n(lo)), \(n(hi))" + (maximumExclusive ? ")" : "]")
        case let (lo?, nil): return (minimumExclusive ? "> " : "≥ ") + n(lo)
        case let (nil, hi?): return (maximumExclusive ? "< " : "≤ ") + n(hi)
        default: return nil
        }
    }

    /// Whether the number `v` is in range.
    public func inRange(_ v: Double) -> Bool {
        if let lo = minimum, minimumExclusive ? !(v > lo) : !(v >= lo) { return false }
        if let hi = maximum, maximumExclusive ? !(v < hi) : !(v <= hi) { return false }
        return true
    }

    /// Checks a given text value against the type, range and choices; throws an invalid-argument
    /// error naming the option.
    public func validate(_ s: String, context: String) throws {
        func fail(_ what: String) -> SAMixError {
            SAMixError.invalidArgument("\(context): \(name) must be \(what), got '\(s)'")
        }
        if allowsNone, s.lowercased() == "none" { return }
        let range = rangeText.map { $0.hasPrefix("[") || $0.hasPrefix("(") ? " in \($0)" : " \($0)" } ?? ""
        switch kind {
        case .real:
            guard let v = Double(s), v.isFinite else { throw fail("a finite number") }
            guard inRange(v) else { throw fail("a number\(range)") }
        case .int:
            guard Int(s) != nil || UInt64(s) != nil, let v = Double(s) else {
                throw fail("an integer" + (allowsNone ? " or none" : ""))
            }
            guard inRange(v) else { throw fail("an integer\(range)" + (allowsNone ? " or none" : "")) }
        case .bool:
            guard ["1", "true", "yes", "on", "0", "false", "no", "off"].contains(s.lowercased()) else { throw fail("0 or 1") }
        case .choice:
            guard OptionSpec.choiceIndex(s, in: choices + aliases) != nil else { throw fail("one of " + choices.joined(separator: ", ")) }
        case .list:
            let parts = s.split(separator: ",").map { String($0).trimmingSpaces() }
            let vals = parts.compactMap { Double($0) }
            guard !parts.isEmpty, vals.count == parts.count, vals.allSatisfy(\.isFinite) else {
                throw fail("a comma-separated list of numbers")
            }
            guard vals.allSatisfy(inRange) else { throw fail("a list of numbers\(range)") }
        case .string:
            break
        }
    }

    /// The index of `s` in `choices`, compared case-insensitively with "+", "_", "-" and spaces ignored.
    public static func choiceIndex(_ s: String, in choices: [String]) -> Int? {
        func key(_ x: String) -> String { String(x.lowercased().filter { !"+_- ".contains($0) }) }
        return choices.firstIndex { key($0) == key(s) }
    }

    /// One JSON object (for `samix_option_schema`).
    func json(method: String?) -> String {
        var f = ["\"name\": \(JSON.quote(name))", "\"type\": \(JSON.quote(kind.rawValue))",
                 "\"default\": " + (defaultText(method: method).map { JSON.quote($0) } ?? "null")]
        if method == nil, !methodDefaults.isEmpty {
            f.append("\"method_defaults\": {" + methodDefaults.sorted { $0.key < $1.key }
                .map { "\(JSON.quote($0.key)): \(JSON.quote($0.value))" }.joined(separator: ", ") + "}")
        }
        if !methods.isEmpty { f.append("\"methods\": [" + methods.map { JSON.quote($0) }.joined(separator: ", ") + "]") }
        if let lo = minimum { f.append("\"min\": \(lo)"); f.append("\"min_exclusive\": \(minimumExclusive)") }
        if let hi = maximum { f.append("\"max\": \(hi)"); f.append("\"max_exclusive\": \(maximumExclusive)") }
        if let r = rangeText { f.append("\"range\": \(JSON.quote(r))") }
        if !choices.isEmpty { f.append("\"choices\": [" + choices.map { JSON.quote($0) }.joined(separator: ", ") + "]") }
        f.append("\"allows_none\": \(allowsNone)")
        f.append("\"doc\": \(JSON.quote(doc))")
        return "{" + f.joined(separator: ", ") + "}"
    }
}


/// A named set of options: "learned" (AutoMix / SAMix, methods automix and samix), "pretrained"
/// (SAMix^P), "ssl" (MoCo v2 and its mixing, methods none, mixup, samix), "ssl_fit" (MoCo
/// pre-training and its kNN monitor) and "trainer" (the supervised trainer's `mix` names).
public struct OptionSchemaGroup: Sendable {
    public let name: String
    public let methods: [String]
    public let options: [OptionSpec]

    public subscript(_ name: String) -> OptionSpec? { options.first { $0.name == name } }

    /// The options that apply to `method` (nil: every option).
    public func options(for method: String?) -> [OptionSpec] { options.filter { $0.applies(to: method) } }

    /// (name, default) of every option of `method` that has a default, in declaration order.
    public func defaults(method: String?) -> [(String, String)] {
        options(for: method).compactMap { o in o.defaultText(method: method).map { (o.name, $0) } }
    }

    /// The default of option `name` for `method`; throws if the schema declares none (a programming error
    /// reported as an internal error, never a trap).
    public func defaultText(_ name: String, method: String? = nil) throws -> String {
        guard let o = self[name], let d = o.defaultText(method: method) else {
            throw SAMixError.invalidState("option schema '\(self.name)' has no default for '\(name)'")
        }
        return d
    }

    /// Typed defaults for front ends that cannot throw (CLI property initialisers); the schema test
    /// checks every default parses, so the fallbacks are never used.
    public func real(_ name: String, method: String? = nil) -> Double {
        (try? defaultText(name, method: method)).flatMap { Double($0) } ?? .nan
    }
    public func int(_ name: String, method: String? = nil) -> Int {
        (try? defaultText(name, method: method)).flatMap { Int($0) } ?? 0
    }
    public func bool(_ name: String, method: String? = nil) -> Bool {
        ["1", "true", "yes", "on"].contains(((try? defaultText(name, method: method)) ?? "0").lowercased())
    }
    public func text(_ name: String, method: String? = nil) -> String {
        (try? defaultText(name, method: method)) ?? ""
    }
    /// The option's doc with its range or choices, for `--help`; `showDefault` adds the default
    /// (per method where they differ) for flags whose parser shows none (optional flags).
    public func help(_ name: String, method: String? = nil, showDefault: Bool = false) -> String {
        guard let o = self[name] else { return "" }
        var s = o.doc
        if let r = o.rangeText { s += " Range \(r)." }
        if !o.choices.isEmpty { s += " One of: \(o.choices.joined(separator: ", "))." }
        guard showDefault else { return s }
        if method == nil, !o.methodDefaults.isEmpty {
            s += " Default: " + o.methodDefaults.sorted { $0.key < $1.key }.map { "\($0.value) (\($0.key))" }
                .joined(separator: ", ") + "."
        } else if let d = o.defaultText(method: method) {
            s += " Default: \(d)."
        }
        return s
    }

    /// The group (or one method of it) as a JSON object: {"group", "methods", "method", "options": [...]}.
    public func json(method: String?) throws -> String {
        if let m = method?.lowercased(), !methods.contains(m) {
            throw SAMixError.invalidArgument("option group '\(name)' has no method '\(m)'; expected "
                + methods.joined(separator: ", "))
        }
        let m = method?.lowercased()
        return "{\"group\": \(JSON.quote(name)), \"methods\": [" + methods.map { JSON.quote($0) }.joined(separator: ", ") + "], "
            + "\"method\": " + (m.map { JSON.quote($0) } ?? "null") + ", \"options\": ["
            + options(for: m).map { $0.json(method: m) }.joined(separator: ", ") + "]}"
    }
}

/// Every front-end option of the engine, declared once.
public enum OptionSchema {
    public static let groups = [learned, pretrained, ssl, sslFit, trainer, optimizer]

    /// The group by name, or by method name ("automix"/"samix" → learned, "samix-p" → pretrained).
    public static func group(_ name: String) throws -> OptionSchemaGroup {
        let n = name.lowercased()
        if let g = groups.first(where: { $0.name == n }) { return g }
        throw SAMixError.invalidArgument("unknown option group '\(name)'; expected "
            + groups.map { $0.name }.joined(separator: ", "))
    }

    /// "group" or "group:method" (e.g. "learned:samix") as JSON; "all": {"groups": [every group]}.
    public static func json(_ spec: String) throws -> String {
        if spec.lowercased() == "all" {
            return "{\"groups\": [" + (try groups.map { try $0.json(method: nil) }).joined(separator: ", ") + "]}"
        }
        let parts = spec.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
        let g = try group(parts[0])
        return try g.json(method: parts.count > 1 ? parts[1] : nil)
    }

    /// Other names `MixerObjectiveLoss.named` accepts.
    static let mixerLossAliases = ["eta", "mixup_ce", "global", "sigmoid_bce"]
    static let maskLossModes = MaskLoss.Mode.allCases.map(\.rawValue)

    /// AutoMix / SAMix, supervised (`LearnedMixOptions`): OpenMixup's names and CIFAR-config defaults.
    public static let learned = OptionSchemaGroup(name: "learned", methods: ["automix", "samix"], options: [
        OptionSpec("alpha", .real, default: "2.0", min: 0, minExclusive: true,
                   doc: "λ ~ Beta(alpha, alpha) for both draws of a step."),
        OptionSpec("momentum", .real, default: "0.999", min: 0, max: 1,
                   doc: "EMA momentum m₀ of the momentum network (cosine to momentum_end)."),
        OptionSpec("momentum_end", .real, default: "0.999999", min: 0, max: 1, doc: "Final EMA momentum."),
        OptionSpec("momentum_constant_fraction", .real, default: "0.1", min: 0, max: 1,
                   doc: "Fraction of training the EMA momentum stays at momentum before its cosine."),
        OptionSpec("momentum_reference_steps", .int, default: "200000", min: 1, allowsNone: true,
                   doc: "Run length the momentum schedule was tuned for (EMA step rescaled to the actual run); none = the literal schedule."),
        OptionSpec("mask_layer", .int, default: "2", min: 0,
                   doc: "0-based backbone stage feeding the Mixer (2: the stride-4 stage on CIFAR)."),
        OptionSpec("mask_loss", .real, default: "0.1", min: 0, doc: "Weight of the mask regulariser (0 = ablated)."),
        OptionSpec("mask_loss_mode", .choice, default: nil, per: ["automix": "L1", "samix": "L1+Variance"],
                   choices: maskLossModes, doc: "Mask regulariser (OpenMixup mask_loss_mode)."),
        OptionSpec("mask_loss_margin", .real, default: "0.1", min: 0, doc: "Margin δ of the mask loss."),
        OptionSpec("mask_loss_variance_weight", .real, default: "2.0", min: 0,
                   doc: "Weight of the variance term of the +Variance mask losses."),
        OptionSpec("mask_loss_scope", .choice, default: "batch", choices: ["batch", "sample"],
                   doc: "Mask-loss statistics over the whole batch (the reference) or per sample."),
        OptionSpec("mask_adjust", .real, default: "0.0", min: 0, max: 1,
                   doc: "Probability of rescaling the classifier's mask to mean λ."),
        OptionSpec("mask_adjust_uses_mixer_lambda", .bool, default: "0",
                   doc: "Reproduce the reference's mask_adjust bug (λ of the Mixer branch)."),
        OptionSpec("lam_margin", .real, default: "0.08", min: 0, max: 0.5, maxExclusive: true,
                   doc: "Constant (Mixup) mask when λ or 1 − λ ≤ lam_margin."),
        OptionSpec("mixer_loss", .choice, default: nil, per: ["automix": "official", "samix": "eta_balanced"],
                   choices: ["eta_balanced", "official", "bce"], aliases: mixerLossAliases,
                   doc: "Mixer objective: eta_balanced (local + η·global), official (global mixup CE), bce (η weights the negatives)."),
        OptionSpec("eta", .real, default: "0.5", min: 0, doc: "η of the eta_balanced / bce Mixer objective."),
        OptionSpec("lam_mul_k", .list, default: "0.25", methods: ["samix"],
                   doc: "k of the λ encoding R_k, one value or a list drawn from per Mixer call (-1 = plain λ)."),
        OptionSpec("lam_concat", .bool, default: "0", methods: ["automix"], doc: "Append a λ channel to the Mix Block input."),
        OptionSpec("value_dropout", .real, default: "0.0", methods: ["samix"], min: 0, max: 1, maxExclusive: true,
                   doc: "Dropout of the Mixer's value network."),
        OptionSpec("switch_off", .real, default: "0.0", min: 0, max: 1,
                   doc: "Skip the Mixer objective when U(0,1) > switch_off (0 = never skip)."),
        OptionSpec("mix_shuffle_no_repeat", .bool, default: "0", doc: "Partner permutations without fixed points."),
        OptionSpec("head_init_std", .real, default: "0.01", min: 0, minExclusive: true,
                   doc: "Std of the N(0, σ²) init of the mixup heads."),
        OptionSpec("reinit_online_head", .bool, default: "0", doc: "Re-initialise the classifier's own head like the mixup heads."),
        OptionSpec("evaluate_mix_heads", .bool, default: "0", doc: "Also report the mixup heads (momentum_mix, online_mix)."),
        OptionSpec("momentum_stops_at_mask_layer", .bool, default: "0",
                   doc: "Run the momentum encoder's clean forward only up to mask_layer (project option)."),
        OptionSpec("mixer_seed", .int, default: nil, min: 0, doc: "Seed of the Mixer and heads (default: the trainer's seed)."),
    ])

    /// SAMix^P: a saved, frozen Mixer (`PretrainedMixerObjective`).
    public static let pretrained = OptionSchemaGroup(name: "pretrained", methods: ["samix-p"], options: [
        OptionSpec("path", .string, default: nil, doc: "Mixer file saved by save_mixer."),
        OptionSpec("alpha", .real, default: "2.0", min: 0, minExclusive: true, doc: "λ ~ Beta(alpha, alpha)."),
        OptionSpec("lam_margin", .real, default: "0.08", min: 0, max: 0.5, maxExclusive: true,
                   doc: "Constant (Mixup) mask when λ or 1 − λ ≤ lam_margin."),
        OptionSpec("mask_adjust", .real, default: "0.0", min: 0, max: 1, doc: "Probability of rescaling a mask to mean λ."),
        OptionSpec("batch_statistics", .bool, default: "1",
                   doc: "Run the frozen encoder/Mixer with batch statistics (0: the saved running statistics)."),
    ])

    static let sslMix = ["mixup", "samix"]

    /// MoCo v2 and its mixing (`SSLOptions`): MoCo settings for every method, `alpha` for mixup and
    /// samix, the rest for SAMix-I / SAMix-C (method samix).
    public static let ssl = OptionSchemaGroup(name: "ssl", methods: ["none", "mixup", "samix"], options: [
        OptionSpec("queue_size", .int, default: "4096", min: 1, max: 16_777_216,
                   doc: "Queue size K (OpenMixup: 65536; keep it below the training-set size)."),
        OptionSpec("temperature", .real, default: "0.2", min: 0, minExclusive: true, doc: "InfoNCE temperature T."),
        OptionSpec("momentum", .real, default: "0.99", min: 0, max: 1,
                   doc: "Key-encoder EMA momentum (OpenMixup: 0.999; 0.99 suits short CIFAR runs)."),
        OptionSpec("neck_hidden", .int, default: "2048", min: 1, max: 16_777_216, doc: "Hidden width of the projection neck."),
        OptionSpec("embedding_dim", .int, default: "128", min: 1, max: 16_777_216, doc: "Output width of the projection neck."),
        OptionSpec("neck_bn", .bool, default: "0", doc: "BN in the projection neck (SimCLR-style) instead of MoCo v2's plain MLP."),
        OptionSpec("shuffle_bn_groups", .int, default: "2", min: 1, max: 1_048_576, doc: "Shuffle-BN groups on one device (1 = plain BN)."),
        OptionSpec("alpha", .real, default: "2.0", methods: sslMix, min: 0, minExclusive: true,
                   doc: "Beta(α, α) of Mixup / SAMix."),
        OptionSpec("variant", .choice, default: "instance", methods: ["samix"], choices: ["instance", "cluster"],
                   aliases: ["i", "c"], doc: "SAMix-I (instance) or SAMix-C (cluster: k-means pseudo-labels)."),
        OptionSpec("eta", .real, default: "0.5", methods: ["samix"], min: 0, doc: "η of the SAMix Mixer objective (local + η·global)."),
        OptionSpec("mask_layer", .int, default: "2", methods: ["samix"], min: 0, doc: "Backbone stage feeding the Mixer (0-based)."),
        OptionSpec("mask_loss", .real, default: "0.1", methods: ["samix"], min: 0, doc: "Weight of the mask regulariser."),
        OptionSpec("mask_loss_mode", .choice, default: "L1+Variance", methods: ["samix"], choices: maskLossModes,
                   doc: "Mask regulariser (OpenMixup mask_loss_mode)."),
        OptionSpec("mask_loss_margin", .real, default: "0.1", methods: ["samix"], min: 0, doc: "Margin δ of the mask loss."),
        OptionSpec("lam_mul_k", .list, default: "0.25", methods: ["samix"], doc: "k of the λ encoding R_k (-1 = plain λ)."),
        OptionSpec("value_dropout", .real, default: "0.0", methods: ["samix"], min: 0, max: 1, maxExclusive: true,
                   doc: "Dropout of the Mixer's value network."),
        OptionSpec("mixer_loss", .choice, default: "eta_balanced", methods: ["samix"], choices: ["eta_balanced", "official", "bce"],
                   aliases: mixerLossAliases, doc: "Mixer objective (bce: cluster variant only)."),
        OptionSpec("clusters", .int, default: "100", methods: ["samix"], min: 2, max: 16_777_216, doc: "SAMix-C: number of k-means clusters."),
        OptionSpec("kmeans_iterations", .int, default: "20", methods: ["samix"], min: 1, max: 16_777_216,
                   doc: "SAMix-C: k-means iterations per refresh."),
        OptionSpec("kmeans_warm_start", .bool, default: "0", methods: ["samix"],
                   doc: "SAMix-C: start each epoch's k-means from the last centroids (the reference re-clusters from scratch)."),
        OptionSpec("mask_adjust", .string, default: "auto", methods: ["samix"],
                   doc: "Backbone-mask adjustment: auto, auto_label, off or a probability in [0, 1]."),
        OptionSpec("mean_margin", .real, default: "0.1", methods: ["samix"], min: 0, max: 1,
                   doc: "mask_adjust auto: rescale masks whose mean is further than this from λ."),
        OptionSpec("positive_extension", .choice, default: "both", methods: ["samix"],
                   choices: SSLMixing.PositiveExtension.allCases.map(\.rawValue),
                   doc: "SAMix-I's positive feature extension."),
        OptionSpec("cluster_features", .choice, default: "query", methods: ["samix"], choices: ["query", "key"],
                   doc: "SAMix-C: encoder whose features are clustered (the reference: query)."),
        OptionSpec("cluster_pca_dim", .int, default: "256", methods: ["samix"], min: 0, max: 1_048_576, allowsNone: true,
                   doc: "SAMix-C: PCA-whitening dimension before k-means (the reference: 256); 0 or none = L2-normalised features only."),
        OptionSpec("detach_cluster_head_mixed", .bool, default: "0", methods: ["samix"],
                   doc: "SAMix-C: detach the mixed features before the cluster head's mixup CE (the reference lets it reach the Mixer)."),
    ])

    /// MoCo pre-training (`samix_ssl_fit`, `samix-bench ssl`, `samix.ssl.MoCo.fit`) and its kNN monitor.
    public static let sslFit = OptionSchemaGroup(name: "ssl_fit", methods: [], options: [
        OptionSpec("batch_size", .int, default: "128", min: 2, max: 1_048_576, doc: "Images per step (the last partial batch is dropped)."),
        OptionSpec("lr", .real, default: "0.06", min: 0, minExclusive: true, doc: "SGD learning rate (momentum 0.9, cosine to 0)."),
        OptionSpec("weight_decay", .real, default: "0.0005", min: 0, doc: "SGD weight decay."),
        OptionSpec("knn_every", .int, default: "5", min: 0, doc: "kNN monitor every N epochs and after the last (0: only at the end)."),
        OptionSpec("knn_k", .int, default: "200", min: 1, doc: "kNN neighbours."),
        OptionSpec("knn_temperature", .real, default: "0.1", min: 0, minExclusive: true, doc: "Temperature of the weighted kNN vote."),
    ])

    /// The supervised optimizers (Python `samix.optim.SGD` / `AdamW`, `samix-bench train --lr/--weight-decay`).
    public static let optimizer = OptionSchemaGroup(name: "optimizer", methods: ["sgd", "adamw"], options: [
        OptionSpec("lr", .real, default: nil, per: ["sgd": "0.1", "adamw": "0.001"], min: 0, minExclusive: true,
                   doc: "Base learning rate (OpenMixup CIFAR: SGD 0.1)."),
        OptionSpec("momentum", .real, default: "0.9", methods: ["sgd"], min: 0, max: 1, maxExclusive: true,
                   doc: "SGD momentum."),
        OptionSpec("weight_decay", .real, default: nil, per: ["sgd": "0.0005", "adamw": "0.05"], min: 0,
                   doc: "Weight decay (SGD: L2 added to the gradient; AdamW: decoupled)."),
        OptionSpec("nesterov", .bool, default: "0", methods: ["sgd"], doc: "Nesterov momentum."),
    ])

    /// The supervised trainer: its mixing-method names (`ObjectiveRegistry.names`).
    public static let trainer = OptionSchemaGroup(name: "trainer", methods: [], options: [
        OptionSpec("mix", .choice, default: "vanilla", choices: ObjectiveRegistry.names,
                   doc: "Training objective / mixing method."),
    ])
}

extension KeyValueOptions {
    /// Validates every given option of `group` that applies to `method` against the schema, then
    /// fills in the schema's defaults for the options not given, so the parser reads each value
    /// without a default of its own. Options of other methods are left alone (`finish` rejects them).
    public mutating func applySchema(_ group: OptionSchemaGroup, method: String?) throws {
        for spec in group.options(for: method) {
            if let v = peek(spec.name) {
                try spec.validate(v, context: context)
            } else if let d = spec.defaultText(method: method) {
                insertDefault(spec.name, d)
            }
        }
    }

    /// The value of `key` that `applySchema` guarantees; an internal error if the schema declared none.
    public mutating func required<T>(_ key: String, _ read: (inout KeyValueOptions, String) throws -> T?) throws -> T {
        guard let v = try read(&self, key) else {
            throw SAMixError.invalidState("\(context): the option schema gives no default for '\(key)'")
        }
        return v
    }
}
