import SAMixCore
import SAMixOps
import SAMixNN
import SAMixData
import SAMixMixing

/// "key=value" options of the learned-mixing methods, with OpenMixup's parameter names — the one
/// parser behind the C ABI (`samix_trainer_create_learned`, `samix_learned_check`,
/// `samix_learned_defaults`), the CLI (`samix-bench train --eta/--mixer-loss/...`, which passes its
/// flags as the same pairs) and the Python package (which sends the same text). Every value is
/// checked again by the engine's initialisers.
///
/// Keys (automix / samix): alpha, momentum, momentum_end, momentum_constant_fraction,
/// momentum_reference_steps (an integer or `none`), mask_layer, mask_loss (weight), mask_loss_mode,
/// mask_loss_margin, mask_loss_variance_weight, mask_loss_scope (batch | sample), mask_adjust,
/// mask_adjust_uses_mixer_lambda, lam_margin, mixer_loss (eta_balanced | official | bce), eta,
/// lam_mul_k (samix, comma list), value_dropout (samix), lam_concat (automix), switch_off,
/// mix_shuffle_no_repeat, head_init_std, reinit_online_head, evaluate_mix_heads,
/// momentum_stops_at_mask_layer, mixer_seed.
public enum LearnedMixOptions {
    public static let keys = ["alpha", "momentum", "momentum_end", "momentum_constant_fraction", "momentum_reference_steps",
                              "mask_layer", "mask_loss", "mask_loss_mode", "mask_loss_margin", "mask_loss_variance_weight",
                              "mask_loss_scope", "mask_adjust", "mask_adjust_uses_mixer_lambda", "lam_margin", "mixer_loss",
                              "eta", "lam_mul_k", "lam_concat", "value_dropout", "switch_off", "mix_shuffle_no_repeat",
                              "head_init_std", "reinit_online_head", "evaluate_mix_heads", "momentum_stops_at_mask_layer",
                              "mixer_seed"]

    /// The configuration of `method` ("automix" or "samix") with `options` applied over its defaults
    /// (`LearnedMixConfig.automix()` / `.samix()`); `defaultSeed` seeds the Mixer unless `mixer_seed`
    /// is given. Unknown or duplicate keys are errors.
    public static func config(method: String, options o: inout KeyValueOptions, defaultSeed: UInt64 = 0) throws -> LearnedMixConfig {
        let m = method.lowercased()
        let context = o.context
        guard m == "automix" || m == "samix" else {
            throw SAMixError.invalidArgument("\(context): unknown learned mixing method '\(method)'; expected automix or samix")
        }
        let alpha = try o.double("alpha") ?? 2
        let eta = try o.float("eta")
        var c: LearnedMixConfig
        if m == "samix" {
            let ks = try o.doubles("lam_mul_k") ?? [0.25]
            let dropout = try o.float("value_dropout") ?? 0
            c = try .samix(alpha: alpha, eta: eta ?? MixerObjectiveLoss.defaultEta, lamMulK: ks)
            c.mixer = try .samix(lamMulK: ks, dropout: dropout)
        } else {
            c = try .automix(alpha: alpha, lambdaChannel: try o.bool("lam_concat") ?? false)
        }
        // mixer_loss (default: the method's objective) with η (default: that objective's η, else 0.5);
        // η is accepted and unused with `official` (AutoMix's plain mixup CE).
        let current = c.mixerLoss.optionName
        c.mixerLoss = try MixerObjectiveLoss.named(o.take("mixer_loss") ?? current.name, eta: eta ?? current.eta)
        return try finish(c, &o, defaultSeed)
    }

    private static func finish(_ c: LearnedMixConfig, _ o: inout KeyValueOptions, _ defaultSeed: UInt64) throws -> LearnedMixConfig {
        let context = o.context
        let m0 = try o.double("momentum") ?? c.momentum.start
        let m1 = try o.double("momentum_end") ?? c.momentum.end
        let frac = try o.double("momentum_constant_fraction") ?? c.momentum.constantFraction
        let momentum = try MomentumSchedule(start: m0, end: m1, constantFraction: frac)
        var reference = c.momentumReferenceSteps
        if let s = o.take("momentum_reference_steps") {
            if s.lowercased() == "none" || s == "0" { reference = nil }
            else if let r = Int(s), r >= 1 { reference = r }
            else {
                throw SAMixError.invalidArgument("\(context): momentum_reference_steps must be an integer ≥ 1 or none, got '\(s)'")
            }
        }
        var maskLoss = c.maskLoss
        if let s = o.take("mask_loss_mode") { maskLoss.mode = try maskLossMode(s, context: context) }
        if let v = try o.float("mask_loss_margin") { maskLoss.margin = v }
        if let v = try o.float("mask_loss_variance_weight") { maskLoss.varianceWeight = v }
        if let s = o.take("mask_loss_scope") {
            guard let sc = MaskLoss.Scope(rawValue: s.lowercased()) else {
                throw SAMixError.invalidArgument("\(context): mask_loss_scope must be batch or sample, got '\(s)'")
            }
            maskLoss.scope = sc
        }
        maskLoss = try MaskLoss(mode: maskLoss.mode, margin: maskLoss.margin, varianceWeight: maskLoss.varianceWeight,
                                scope: maskLoss.scope)
        let maskLayer = try o.int("mask_layer") ?? c.maskLayer
        let weight = try o.float("mask_loss") ?? c.maskLossWeight
        let adjust = try o.double("mask_adjust") ?? c.maskAdjust
        let adjustBug = try o.bool("mask_adjust_uses_mixer_lambda") ?? c.maskAdjustUsesMixerLambda
        let margin = try o.float("lam_margin") ?? c.lambdaMargin
        let switchOff = try o.double("switch_off") ?? c.switchOff
        let noRepeat = try o.bool("mix_shuffle_no_repeat") ?? c.permutationsWithoutFixedPoints
        let headStd = try o.float("head_init_std") ?? c.headInitStd
        let reinit = try o.bool("reinit_online_head") ?? c.reinitializeOnlineHead
        let mixHeads = try o.bool("evaluate_mix_heads") ?? c.evaluateMixHeads
        let stopEarly = try o.bool("momentum_stops_at_mask_layer") ?? c.momentumStopsAtMaskLayer
        var seed = defaultSeed
        if let s = o.take("mixer_seed") {
            guard let v = UInt64(s) else { throw SAMixError.invalidArgument("\(context): mixer_seed must be an unsigned integer") }
            seed = v
        }
        try o.finish(known: keys)
        return try LearnedMixConfig(name: c.name, alpha: c.alpha, mixer: c.mixer, maskLayer: maskLayer,
                                    maskLoss: maskLoss, maskLossWeight: weight, maskAdjust: adjust,
                                    maskAdjustUsesMixerLambda: adjustBug, lambdaMargin: margin,
                                    mixerLoss: c.mixerLoss, momentum: momentum, momentumReferenceSteps: reference,
                                    switchOff: switchOff, permutationsWithoutFixedPoints: noRepeat,
                                    headInitStd: headStd, reinitializeOnlineHead: reinit,
                                    evaluateMixHeads: mixHeads, momentumStopsAtMaskLayer: stopEarly, seed: seed)
    }

    /// `config(method:options:defaultSeed:)` from "key=value" lines (the C ABI's form).
    public static func config(method: String, text: String, defaultSeed: UInt64 = 0) throws -> LearnedMixConfig {
        var o = try KeyValueOptions(text, context: "\(method.lowercased()) options")
        return try config(method: method, options: &o, defaultSeed: defaultSeed)
    }

    /// `config(method:options:defaultSeed:)` from (key, value) pairs (the CLI's form).
    public static func config(method: String, pairs: [(String, String)], defaultSeed: UInt64 = 0) throws -> LearnedMixConfig {
        var o = try KeyValueOptions(pairs: pairs, context: "\(method.lowercased()) options")
        return try config(method: method, options: &o, defaultSeed: defaultSeed)
    }

    /// The default value of every key of `method` (automix / samix), as `config` reads them — what
    /// the Python classes' signature defaults are tested against. Keys without a default value
    /// (`mixer_seed`: the trainer's seed) are left out; `eta` is the η `mixer_loss=eta_balanced|bce` would use.
    public static func defaults(method: String) throws -> [(String, String)] {
        let c = try config(method: method, text: "")
        let m = method.lowercased()
        func f(_ v: Double) -> String { "\(v)" }
        var out: [(String, String)] = [
            ("alpha", f(c.alpha)), ("momentum", f(c.momentum.start)), ("momentum_end", f(c.momentum.end)),
            ("momentum_constant_fraction", f(c.momentum.constantFraction)),
            ("momentum_reference_steps", c.momentumReferenceSteps.map { "\($0)" } ?? "none"),
            ("mask_layer", "\(c.maskLayer)"), ("mask_loss", f(Double(c.maskLossWeight))),
            ("mask_loss_mode", c.maskLoss.mode.rawValue), ("mask_loss_margin", f(Double(c.maskLoss.margin))),
            ("mask_loss_variance_weight", f(Double(c.maskLoss.varianceWeight))), ("mask_loss_scope", c.maskLoss.scope.rawValue),
            ("mask_adjust", f(c.maskAdjust)), ("mask_adjust_uses_mixer_lambda", c.maskAdjustUsesMixerLambda ? "1" : "0"),
            ("lam_margin", f(Double(c.lambdaMargin))), ("mixer_loss", c.mixerLoss.optionName.name),
            ("switch_off", f(c.switchOff)), ("mix_shuffle_no_repeat", c.permutationsWithoutFixedPoints ? "1" : "0"),
            ("head_init_std", f(Double(c.headInitStd))), ("reinit_online_head", c.reinitializeOnlineHead ? "1" : "0"),
            ("evaluate_mix_heads", c.evaluateMixHeads ? "1" : "0"),
            ("momentum_stops_at_mask_layer", c.momentumStopsAtMaskLayer ? "1" : "0"),
        ]
        out.append(("eta", f(Double(c.mixerLoss.optionName.eta ?? MixerObjectiveLoss.defaultEta))))
        if m == "samix" {
            if case .multiply(_, _, let ks) = c.mixer.lambdaEncoding {
                out.append(("lam_mul_k", ks.map { "\($0)" }.joined(separator: ",")))
            }
            if case .convNeck(let p) = c.mixer.value { out.append(("value_dropout", f(Double(p)))) }
        } else {
            if case .concat = c.mixer.lambdaEncoding { out.append(("lam_concat", "1")) } else { out.append(("lam_concat", "0")) }
        }
        return out
    }

    /// The mask-loss mode by OpenMixup's `mask_loss_mode` name (case-insensitive; "+", "_" and
    /// spaces ignored).
    public static func maskLossMode(_ s: String, context: String) throws -> MaskLoss.Mode {
        func key(_ x: String) -> String { String(x.lowercased().filter { $0 != "+" && $0 != "_" && $0 != " " }) }
        for m in MaskLoss.Mode.allCases where key(m.rawValue) == key(s) { return m }
        throw SAMixError.invalidArgument("\(context): unknown mask_loss_mode '\(s)'; expected "
            + MaskLoss.Mode.allCases.map(\.rawValue).joined(separator: ", "))
    }
}

/// "key=value" options (one per line, blank lines ignored; or given as pairs); duplicate keys are
/// errors, and `finish(known:)` rejects keys nobody `take`s.
public struct KeyValueOptions {
    private var values: [String: String] = [:]
    private var order: [String] = []
    public let context: String

    public init(_ text: String, context: String) throws {
        var pairs: [(String, String)] = []
        for raw in text.split(separator: "\n", omittingEmptySubsequences: true) {
            let line = raw.trimmingSpaces()
            if line.isEmpty { continue }
            guard let eq = line.firstIndex(of: "=") else {
                throw SAMixError.invalidArgument("\(context): option '\(line)' is not key=value")
            }
            pairs.append((String(line[..<eq]).trimmingSpaces(), String(line[line.index(after: eq)...]).trimmingSpaces()))
        }
        try self.init(pairs: pairs, context: context)
    }

    public init(pairs: [(String, String)], context: String) throws {
        self.context = context
        for (k, v) in pairs {
            guard !k.isEmpty else { throw SAMixError.invalidArgument("\(context): option '=\(v)' has no key") }
            guard values[k] == nil else { throw SAMixError.invalidArgument("\(context): option '\(k)' is given twice") }
            values[k] = v
            order.append(k)
        }
    }

    /// Removes and returns the raw value of `key`.
    public mutating func take(_ key: String) -> String? {
        values.removeValue(forKey: key)
    }

    public mutating func double(_ key: String) throws -> Double? {
        guard let s = take(key) else { return nil }
        guard let v = Double(s), v.isFinite else {
            throw SAMixError.invalidArgument("\(context): \(key) must be a finite number, got '\(s)'")
        }
        return v
    }

    public mutating func float(_ key: String) throws -> Float? {
        try double(key).map { Float($0) }
    }

    public mutating func int(_ key: String) throws -> Int? {
        guard let s = take(key) else { return nil }
        guard let v = Int(s), abs(v) <= 1 << 40 else {
            throw SAMixError.invalidArgument("\(context): \(key) must be an integer, got '\(s)'")
        }
        return v
    }

    public mutating func bool(_ key: String) throws -> Bool? {
        guard let s = take(key) else { return nil }
        switch s.lowercased() {
        case "1", "true", "yes", "on": return true
        case "0", "false", "no", "off": return false
        default: throw SAMixError.invalidArgument("\(context): \(key) must be 0 or 1, got '\(s)'")
        }
    }

    public mutating func doubles(_ key: String) throws -> [Double]? {
        guard let s = take(key) else { return nil }
        let parts = s.split(separator: ",").map { String($0).trimmingSpaces() }
        let vals = parts.compactMap { Double($0) }
        guard !parts.isEmpty, vals.count == parts.count, vals.allSatisfy(\.isFinite) else {
            throw SAMixError.invalidArgument("\(context): \(key) must be a comma-separated list of numbers, got '\(s)'")
        }
        return vals
    }

    /// Throws if any option was not consumed.
    public func finish(known: [String]) throws {
        let left = order.filter { values[$0] != nil }
        guard left.isEmpty else {
            throw SAMixError.invalidArgument("\(context): unknown option\(left.count > 1 ? "s" : "") "
                + left.map { "'\($0)'" }.joined(separator: ", ") + "; known: " + known.joined(separator: ", "))
        }
    }
}

extension StringProtocol {
    /// Without leading and trailing spaces, tabs and carriage returns.
    public func trimmingSpaces() -> String {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\t" || f == "\r" { s = s.dropFirst() }
        while let l = s.last, l == " " || l == "\t" || l == "\r" { s = s.dropLast() }
        return String(s)
    }
}
