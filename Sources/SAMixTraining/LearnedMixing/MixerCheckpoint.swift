import Glibc
import SAMixCore
import SAMixOps
import SAMixNN
import SAMixData
import SAMixMixing

/// A trained Mixer together with the frozen encoder whose stage features it reads: what SAMix^P
/// (docs/method.md §6) transfers to a new run. The reference never implemented this path (its
/// `_mixblock()` raises `NotImplementedError`, issue #53).
///
/// File format: safetensors (written atomically), tensors `mixer.*` and `encoder.*`, metadata
/// `format = samix-mixer-v1` plus the Mixer's and the encoder's architecture.
public struct MixerCheckpoint {
    public var mixerConfig: MixerConfig
    /// Channels of the feature map the Mixer reads.
    public var channels: Int
    /// Encoder stage (0-based) feeding the Mixer.
    public var maskLayer: Int
    /// `ModelZoo` name and input channels of the encoder.
    public var encoderArchitecture: String
    public var encoderInChannels: Int
    public var mixerState: [(String, Tensor)]
    public var encoderState: [(String, Tensor)]

    public init(mixerConfig: MixerConfig, channels: Int, maskLayer: Int, encoderArchitecture: String,
                encoderInChannels: Int, mixerState: [(String, Tensor)], encoderState: [(String, Tensor)]) {
        self.mixerConfig = mixerConfig
        self.channels = channels
        self.maskLayer = maskLayer
        self.encoderArchitecture = encoderArchitecture
        self.encoderInChannels = encoderInChannels
        self.mixerState = mixerState
        self.encoderState = encoderState
    }

    /// A snapshot (copied tensors) of `mixer` and of the `encoder` whose stage `maskLayer` feeds it.
    public init(mixer: Mixer, maskLayer: Int, encoder: Backbone, encoderArchitecture: String,
                encoderInChannels: Int) throws {
        try require(maskLayer >= 0 && maskLayer < encoder.stageCount && encoder.stageChannels[maskLayer] == mixer.channels,
                    "Mixer checkpoint: encoder stage \(maskLayer) does not have the Mixer's \(mixer.channels) channels")
        self.init(mixerConfig: mixer.config, channels: mixer.channels, maskLayer: maskLayer,
                  encoderArchitecture: encoderArchitecture, encoderInChannels: encoderInChannels,
                  mixerState: try mixer.stateDict().map { ($0.0, try $0.1.copy()) },
                  encoderState: try encoder.stateDict().map { ($0.0, try $0.1.copy()) })
    }

    /// `format` metadata value that marks a Mixer checkpoint.
    static let formatTag = "samix-mixer-v1"

    /// A Mixer with the saved weights, frozen (`requiresGrad = false`).
    public func makeMixer() throws -> Mixer {
        let m = try Mixer(channels: channels, config: mixerConfig)
        try m.loadStateDict(Dictionary(uniqueKeysWithValues: mixerState))
        m.freeze()
        return m
    }

    /// The encoder backbone with the saved weights and BN statistics, frozen.
    public func makeEncoder() throws -> Backbone {
        var rng = SplitMix64(seed: 0)
        let b = try ModelZoo.makeBackbone(encoderArchitecture, inChannels: encoderInChannels, rng: &rng)
        try b.loadStateDict(Dictionary(uniqueKeysWithValues: encoderState))
        try require(maskLayer < b.stageCount && b.stageChannels[maskLayer] == channels,
                    "checkpoint: encoder stage \(maskLayer) does not have the Mixer's \(channels) channels")
        b.setRequiresGrad(false)
        return b
    }

    // MARK: metadata

    var metadata: [(String, String)] {
        let c = mixerConfig
        var out: [(String, String)] = [("channels", "\(channels)"), ("mask_layer", "\(maskLayer)"),
                                       ("encoder", encoderArchitecture), ("encoder_in_channels", "\(encoderInChannels)")]
        switch c.lambdaEncoding {
        case .none: out.append(("lam_encoding", "none"))
        case .concat(let v): out.append(("lam_encoding", v ? "concat_v" : "concat"))
        case .multiply(let f, let r, let ks):
            out += [("lam_encoding", "multiply"), ("lam_mul", "\(f)"), ("lam_residual", r ? "1" : "0"),
                    ("lam_mul_k", ks.map { "\($0)" }.joined(separator: ","))]
        }
        out.append(("attention", c.attention.rawValue))
        switch c.value {
        case .linear: out.append(("value", "linear"))
        case .convNeck(let p): out += [("value", "conv_neck"), ("value_dropout", "\(p)")]
        }
        out += [("x_v_concat", c.valueInputConcat ? "1" : "0"),
                ("upsampling", c.upsampling.map(\.rawValue).joined(separator: ",")),
                ("reduction", "\(c.reduction)"), ("init_std", "\(c.initStd)")]
        return out
    }

    static func config(from meta: [String: String]) throws -> MixerConfig {
        func get(_ k: String) throws -> String {
            guard let v = meta[k] else { throw SAMixError.invalidArgument("mixer checkpoint: missing '\(k)'") }
            return v
        }
        func float(_ k: String) throws -> Float {
            guard let v = Float(try get(k)) else { throw SAMixError.invalidArgument("mixer checkpoint: bad '\(k)'") }
            return v
        }
        let lam: LambdaEncoding
        switch try get("lam_encoding") {
        case "none": lam = .none
        case "concat": lam = .concat(valueOnly: false)
        case "concat_v": lam = .concat(valueOnly: true)
        case "multiply":
            let ks = try get("lam_mul_k").split(separator: ",").map { s -> Double in
                guard let d = Double(s) else { throw SAMixError.invalidArgument("mixer checkpoint: bad lam_mul_k") }
                return d
            }
            lam = .multiply(factor: try float("lam_mul"), residual: try get("lam_residual") == "1", rescaleK: ks)
        case let other: throw SAMixError.invalidArgument("mixer checkpoint: unknown λ encoding '\(other)'")
        }
        guard let att = MixingAttention.Kind(rawValue: try get("attention")) else {
            throw SAMixError.invalidArgument("mixer checkpoint: unknown attention kind")
        }
        let value: MixerValueNetwork.Kind
        switch try get("value") {
        case "linear": value = .linear
        case "conv_neck": value = .convNeck(dropout: try float("value_dropout"))
        case let other: throw SAMixError.invalidArgument("mixer checkpoint: unknown value network '\(other)'")
        }
        let ups = try get("upsampling").split(separator: ",").map { s -> MaskUpsampling in
            guard let u = MaskUpsampling(rawValue: String(s)) else {
                throw SAMixError.invalidArgument("mixer checkpoint: unknown upsampling '\(s)'")
            }
            return u
        }
        guard let red = Int(try get("reduction")) else { throw SAMixError.invalidArgument("mixer checkpoint: bad reduction") }
        return try MixerConfig(lambdaEncoding: lam, attention: att, value: value,
                               valueInputConcat: try get("x_v_concat") == "1", upsampling: ups,
                               reduction: red, initStd: try float("init_std"))
    }

    // MARK: file I/O

    public func save(to path: String) throws {
        var meta = Dictionary(uniqueKeysWithValues: metadata)
        meta["format"] = MixerCheckpoint.formatTag
        let tensors = mixerState.map { ("mixer." + $0.0, $0.1) } + encoderState.map { ("encoder." + $0.0, $0.1) }
        try SafetensorsFile(tensors: tensors, metadata: meta).write(to: path)
    }

    public static func load(from path: String) throws -> MixerCheckpoint {
        let file = try SafetensorsFile.read(path)
        let meta = file.metadata
        guard meta["format"] == formatTag else { throw SAMixError.io("\(path): not a samix mixer checkpoint") }
        var mixerState: [(String, Tensor)] = [], encoderState: [(String, Tensor)] = []
        for (name, t) in file.tensors {
            if name.hasPrefix("mixer.") { mixerState.append((String(name.dropFirst(6)), t)) }
            else if name.hasPrefix("encoder.") { encoderState.append((String(name.dropFirst(8)), t)) }
            else { throw SAMixError.io("\(path): unexpected tensor '\(name)'") }
        }
        guard let channels = Int(meta["channels"] ?? ""), let layer = Int(meta["mask_layer"] ?? ""),
              let arch = meta["encoder"], let inCh = Int(meta["encoder_in_channels"] ?? "") else {
            throw SAMixError.io("\(path): incomplete mixer checkpoint metadata")
        }
        return MixerCheckpoint(mixerConfig: try config(from: meta), channels: channels, maskLayer: layer,
                               encoderArchitecture: arch, encoderInChannels: inCh,
                               mixerState: mixerState, encoderState: encoderState)
    }
}
