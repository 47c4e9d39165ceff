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
/// Keys, types, defaults (automix / samix), ranges and docs: `OptionSchema.learned`, declared once
/// and exported by `samix_option_schema`.
public enum LearnedMixOptions {
    /// Every key, in the order of `OptionSchema.learned`.
    public static var keys: [String] { OptionSchema.learned.options.map(\.name) }

    /// The configuration of `method` ("automix" or "samix") with `options` applied over the defaults
    /// of `OptionSchema.learned` (the one place they are declared; validated against its ranges and
    /// choices, then again by the engine's initialisers); `defaultSeed` seeds the Mixer unless
    /// `mixer_seed` is given. Unknown or duplicate keys are errors.
    public static func config(method: String, options o: inout KeyValueOptions, defaultSeed: UInt64 = 0) throws -> LearnedMixConfig {
        let m = method.lowercased()
        let context = o.context
        guard OptionSchema.learned.methods.contains(m) else {
            throw SAMixError.invalidArgument("\(context): unknown learned mixing method '\(method)'; expected automix or samix")
        }
        try o.applySchema(OptionSchema.learned, method: m)
        let alpha = try o.required("alpha") { try $0.double($1) }
        let eta = try o.required("eta") { try $0.float($1) }
        let mixerLoss = try MixerObjectiveLoss.named(try o.required("mixer_loss") { $0.take($1) }, eta: eta)
        let mixer: MixerConfig
        if m == "samix" {
            mixer = try .samix(lamMulK: try o.required("lam_mul_k") { try $0.doubles($1) },
                               dropout: try o.required("value_dropout") { try $0.float($1) })
        } else {
            mixer = try .automix(lambdaChannel: try o.required("lam_concat") { try $0.bool($1) })
        }
        let momentum = try MomentumSchedule(start: try o.required("momentum") { try $0.double($1) },
                                            end: try o.required("momentum_end") { try $0.double($1) },
                                            constantFraction: try o.required("momentum_constant_fraction") { try $0.double($1) })
        let referenceText = try o.required("momentum_reference_steps") { $0.take($1) }
        var reference: Int? = nil
        if !(referenceText.lowercased() == "none" || referenceText == "0") {
            guard let r = Int(referenceText), r >= 1 else {
                throw SAMixError.invalidArgument("\(context): momentum_reference_steps must be an integer ≥ 1 or none, got '\(referenceText)'")
            }
            reference = r
        }
        let maskLoss = try MaskLoss(mode: try maskLossMode(try o.required("mask_loss_mode") { $0.take($1) }, context: context),
                                    margin: try o.required("mask_loss_margin") { try $0.float($1) },
                                    varianceWeight: try o.required("mask_loss_variance_weight") { try $0.float($1) },
                                    scope: try scope(try o.required("mask_loss_scope") { $0.take($1) }, context: context))
        var seed = defaultSeed
        if let s = o.take("mixer_seed") {
            guard let v = UInt64(s) else { throw SAMixError.invalidArgument("\(context): mixer_seed must be an unsigned integer") }
            seed = v
        }
        let c = try LearnedMixConfig(name: m, alpha: alpha, mixer: mixer,
                                     maskLayer: try o.required("mask_layer") { try $0.int($1) },
                                     maskLoss: maskLoss, maskLossWeight: try o.required("mask_loss") { try $0.float($1) },
                                     maskAdjust: try o.required("mask_adjust") { try $0.double($1) },
                                     maskAdjustUsesMixerLambda: try o.required("mask_adjust_uses_mixer_lambda") { try $0.bool($1) },
                                     lambdaMargin: try o.required("lam_margin") { try $0.float($1) },
                                     mixerLoss: mixerLoss, momentum: momentum, momentumReferenceSteps: reference,
                                     switchOff: try o.required("switch_off") { try $0.double($1) },
                                     permutationsWithoutFixedPoints: try o.required("mix_shuffle_no_repeat") { try $0.bool($1) },
                                     headInitStd: try o.required("head_init_std") { try $0.float($1) },
                                     reinitializeOnlineHead: try o.required("reinit_online_head") { try $0.bool($1) },
                                     evaluateMixHeads: try o.required("evaluate_mix_heads") { try $0.bool($1) },
                                     momentumStopsAtMaskLayer: try o.required("momentum_stops_at_mask_layer") { try $0.bool($1) },
                                     seed: seed)
        try o.finish(known: keys)
        return c
    }

    static func scope(_ s: String, context: String) throws -> MaskLoss.Scope {
        guard let sc = MaskLoss.Scope(rawValue: s.lowercased()) else {
            throw SAMixError.invalidArgument("\(context): mask_loss_scope must be batch or sample, got '\(s)'")
        }
        return sc
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

    /// The default value of every key of `method` (automix / samix): `OptionSchema.learned`'s, which
    /// `config` reads — what the Python classes' defaults are tested against. Keys without a default
    /// (`mixer_seed`: the trainer's seed) are left out.
    public static func defaults(method: String) throws -> [(String, String)] {
        let m = method.lowercased()
        guard OptionSchema.learned.methods.contains(m) else {
            throw SAMixError.invalidArgument("unknown learned mixing method '\(method)'; expected automix or samix")
        }
        return OptionSchema.learned.defaults(method: m)
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

    /// The raw value of `key`, left in place.
    public func peek(_ key: String) -> String? { values[key] }

    /// Sets `key` to `value` unless it is given (a schema default).
    mutating func insertDefault(_ key: String, _ value: String) {
        guard values[key] == nil else { return }
        values[key] = value
        order.append(key)
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
