import XCTest
import SAMix
@testable import SAMixNN
@testable import SAMixTraining

/// Parameter discovery is explicit (`children`, `localParameters`, `localBuffers`); a stored sub-module
/// or tensor that a class forgets to list would silently escape the optimizer, checkpoints and
/// `train()`/`eval()`. This test reflects over every module the engine builds and fails on any stored
/// `Module` or `Tensor` that is not registered.
final class ModuleRegistrationTests: XCTestCase {
    /// Stored properties of `module` (through its superclasses) holding a Module, [Module], Tensor or
    /// [Tensor] that are not registered; recurses into registered children. `path` prefixes the names.
    static func unregistered(_ module: Module, path: String = "") -> [String] {
        let children = module.children
        let registeredModules = Set(children.map { ObjectIdentifier($0.1) })
        let registeredTensors = Set((module.localParameters + module.localBuffers).map { ObjectIdentifier($0.1) })
        var missing: [String] = []
        var mirror: Mirror? = Mirror(reflecting: module)
        while let m = mirror {
            for case let (label?, value) in m.children {
                let name = path + label
                for item in flatten(value) {
                    if let sub = item as? Module, !registeredModules.contains(ObjectIdentifier(sub)) {
                        missing.append(name)
                    } else if let t = item as? Tensor, !registeredTensors.contains(ObjectIdentifier(t)) {
                        missing.append(name)
                    }
                }
            }
            mirror = m.superclassMirror
        }
        for (name, child) in children { missing += unregistered(child, path: path + name + ".") }
        return missing
    }

    /// The Module/Tensor values inside a stored property (optionals and arrays unwrapped).
    private static func flatten(_ value: Any) -> [Any] {
        let m = Mirror(reflecting: value)
        switch m.displayStyle {
        case .optional: return m.children.first.map { flatten($0.value) } ?? []
        case .collection: return m.children.flatMap { flatten($0.value) }
        default: return [value]
        }
    }

    func testEveryStoredModuleAndTensorOfTheEngineIsRegistered() throws {
        var roots: [(String, Module)] = []
        for name in ModelZoo.names {
            roots.append((name, try ModelZoo.make(name, numClasses: 10, inChannels: 3, seed: 0)))
        }
        roots.append(("mixer(automix)", try Mixer(channels: 16, config: .automix())))
        roots.append(("mixer(automix, λ channel)", try Mixer(channels: 16, config: .automix(lambdaChannel: true))))
        roots.append(("mixer(samix)", try Mixer(channels: 16, config: .samix(lamMulK: [0.25, 0.5], dropout: 0.1))))
        let cfg = try MoCoConfig(architecture: "resnet20", neckHidden: 16, embeddingDim: 8, queueSize: 8, seed: 2)
        for mix: SSLMix in [.none, .samix(try SAMixSSLConfig(variant: .instance, maskLayer: 1)),
                            .samix(try SAMixSSLConfig(variant: .cluster, maskLayer: 1, clusters: 3))] {
            let moco = try MoCo(config: cfg, mix: mix)
            roots += moco.trainableModules.map { ("moco.\($0.0)", $0.1) }
            roots.append(("moco.key", moco.key))
            if let f = moco.frozenClusterHead { roots.append(("moco.frozen_cluster_head", f)) }
        }
        for (name, module) in roots {
            XCTAssertEqual(Self.unregistered(module), [], "\(name): stored but not registered")
        }
    }

    /// The check itself catches a forgotten child and a forgotten parameter.
    func testAForgottenChildOrParameterIsReported() throws {
        final class Forgetful: Module {
            let kept: Linear
            let forgotten: Linear
            let scale: Tensor
            init(kept: Linear, forgotten: Linear, scale: Tensor) {
                self.kept = kept
                self.forgotten = forgotten
                self.scale = scale
            }
            override var children: [(String, Module)] { [("kept", kept)] }
        }
        var r = SplitMix64(seed: 1)
        let m = Forgetful(kept: try Linear(2, 2, rng: &r), forgotten: try Linear(2, 2, rng: &r), scale: try Tensor(zeros: [1]))
        XCTAssertEqual(Self.unregistered(m), ["forgotten", "scale"])
    }
}
