import XCTest
import SAMix
@testable import SAMixCore
@testable import SAMixMixing
@testable import SAMixTraining
@testable import samix_bench

/// Issue 12, "one option schema owned by the engine": every front end's default is the schema's.
/// The C ABI keeps no defaults (it calls `LearnedMixOptions`, `PretrainedMixerObjective(options:)` and
/// `SSLOptions` with the caller's text), so an ABI-created configuration is the parser's with empty text.
final class OptionSchemaTests: XCTestCase {
    /// Every declared default is a valid value of its own option, for every method it applies to.
    func testEveryDefaultIsValidForItsOption() throws {
        for g in OptionSchema.groups {
            for o in g.options {
                for m in (g.methods.isEmpty ? [nil] : g.methods.map { Optional($0) }) where o.applies(to: m) {
                    guard let d = o.defaultText(method: m) else { continue }
                    XCTAssertNoThrow(try o.validate(d, context: "\(g.name)"), "\(g.name).\(o.name) (\(m ?? "-")) = \(d)")
                }
                XCTAssertFalse(o.doc.isEmpty, "\(g.name).\(o.name) has no doc")
            }
            XCTAssertEqual(Set(g.options.map(\.name)).count, g.options.count, "\(g.name): duplicate option")
        }
    }

    /// The learned parser (C ABI `samix_trainer_create_learned` / `samix_learned_check`, CLI `train`)
    /// with no options equals the configuration built from the schema's defaults given explicitly,
    /// the registry's `--mix samix|automix`, and `LearnedMixConfig.automix()/.samix()`.
    func testLearnedParserDefaultsAreTheSchema() throws {
        for m in ["automix", "samix"] {
            let empty = try LearnedMixOptions.config(method: m, text: "")
            let explicit = try LearnedMixOptions.config(method: m, pairs: OptionSchema.learned.defaults(method: m))
            XCTAssertEqual(empty, explicit, m)
            XCTAssertEqual(try LearnedMixOptions.defaults(method: m).map { "\($0.0)=\($0.1)" },
                           OptionSchema.learned.defaults(method: m).map { "\($0.0)=\($0.1)" })
            let registry = try XCTUnwrap(try ObjectiveRegistry.make(m) as? LearnedMixObjective)
            XCTAssertEqual(registry.config, empty, m)
            XCTAssertEqual(m == "samix" ? try LearnedMixConfig.samix() : try LearnedMixConfig.automix(), empty, m)
        }
        // Typed spot checks: what the schema declares is what the parser produced.
        let s = try LearnedMixOptions.config(method: "samix", text: "")
        XCTAssertEqual(Double(s.lambdaMargin), OptionSchema.learned.real("lam_margin"), accuracy: 1e-7)
        XCTAssertEqual(s.alpha, OptionSchema.learned.real("alpha"))
        XCTAssertEqual(s.maskLoss.mode.rawValue, OptionSchema.learned.text("mask_loss_mode", method: "samix"))
        XCTAssertEqual(s.mixerLoss.optionName.name, OptionSchema.learned.text("mixer_loss", method: "samix"))
        XCTAssertEqual(try LearnedMixOptions.config(method: "automix", text: "").mixerLoss.optionName.name,
                       OptionSchema.learned.text("mixer_loss", method: "automix"))
        XCTAssertEqual(s.momentumReferenceSteps, OptionSchema.learned.int("momentum_reference_steps"))
        XCTAssertEqual(Set(LearnedMixOptions.keys), Set(OptionSchema.learned.options.map(\.name)))
    }

    /// Ranges and choices of the schema are enforced by the parser, naming the option.
    func testSchemaRangesAreEnforced() throws {
        for (text, name) in [("lam_margin=0.5", "lam_margin"), ("alpha=0", "alpha"), ("value_dropout=1", "value_dropout"),
                             ("mask_loss_scope=pixel", "mask_loss_scope"), ("mixer_loss=hinge", "mixer_loss"),
                             ("mask_layer=-1", "mask_layer"), ("eta=-0.1", "eta")] {
            XCTAssertThrowsError(try LearnedMixOptions.config(method: "samix", text: text), text) { e in
                XCTAssertTrue("\(e)".contains(name), "\(text): \(e)")
            }
        }
        XCTAssertThrowsError(try SSLOptions(mix: "samix", text: "clusters=1"))
        XCTAssertThrowsError(try SSLOptions(mix: "samix", text: "cluster_features=value"))
        XCTAssertThrowsError(try SSLOptions(mix: "mixup", text: "eta=0.5"), "a samix-only option with mixup")
        XCTAssertThrowsError(try SSLOptions(mix: "none", text: "alpha=1"), "alpha needs a mix")
        XCTAssertNoThrow(try LearnedMixOptions.config(method: "samix", text: "momentum_reference_steps=none\nmixer_seed=18446744073709551615"))
    }

    /// `samix_ssl_create`'s parser with no options = the schema's defaults given explicitly, per mix.
    func testSSLParserDefaultsAreTheSchema() throws {
        for m in ["none", "mixup", "samix"] {
            let empty = try SSLOptions(mix: m, text: "")
            let explicit = try SSLOptions(mix: m, pairs: OptionSchema.ssl.defaults(method: m))
            XCTAssertEqual(try empty.mocoConfig(architecture: "resnet20", inChannels: 1, seed: 0),
                           try explicit.mocoConfig(architecture: "resnet20", inChannels: 1, seed: 0), m)
            XCTAssertEqual(empty.mix, explicit.mix, m)
        }
        let c = try SSLOptions(mix: "samix", text: "").mocoConfig(architecture: "resnet20", inChannels: 1, seed: 0)
        XCTAssertEqual(c.queueSize, OptionSchema.ssl.int("queue_size"))
        XCTAssertEqual(Double(c.temperature), OptionSchema.ssl.real("temperature"), accuracy: 1e-7)
        XCTAssertEqual(c.keyMomentum, OptionSchema.ssl.real("momentum"))
        guard case .samix(let s) = try SSLOptions(mix: "samix-c", text: "").mix else { return XCTFail("samix-c") }
        XCTAssertEqual(s.variant, .cluster)
        XCTAssertEqual(s.clusters, OptionSchema.ssl.int("clusters", method: "samix"))
        XCTAssertEqual(s.clusterPCADimensions, OptionSchema.ssl.int("cluster_pca_dim", method: "samix"))
        XCTAssertEqual(s.clusterFeatures.rawValue, OptionSchema.ssl.text("cluster_features", method: "samix"))
    }

    /// `samix-bench ssl` parsed with no flags builds exactly what the engine's parser builds from
    /// empty options (so every CLI default is the schema's), for every method.
    func testSSLCommandDefaultsAreTheSchema() throws {
        for (method, mix) in [("moco", "none"), ("moco-mixup", "mixup"), ("samix-i", "samix"), ("samix-c", "samix-c")] {
            let cmd = try SSLCommand.parse(["--data", "/nonexistent", "--method", method])
            let cli = try cmd.sslOptions()
            let engine = try SSLOptions(mix: mix, text: "")
            XCTAssertEqual(cli.mix, engine.mix, method)
            XCTAssertEqual(try cli.mocoConfig(architecture: "resnet20", inChannels: 3, seed: 0),
                           try engine.mocoConfig(architecture: "resnet20", inChannels: 3, seed: 0), method)
        }
        let cmd = try SSLCommand.parse(["--data", "/nonexistent"])
        let ssl = OptionSchema.ssl
        XCTAssertEqual(cmd.queue, ssl.int("queue_size"))
        XCTAssertEqual(Double(cmd.temperature), ssl.real("temperature"), accuracy: 1e-7)
        XCTAssertEqual(cmd.keyMomentum, ssl.real("momentum"))
        XCTAssertEqual(cmd.shuffleBnGroups, ssl.int("shuffle_bn_groups"))
        XCTAssertEqual(cmd.neckHidden, ssl.int("neck_hidden"))
        XCTAssertEqual(cmd.neckBn, ssl.bool("neck_bn"))
        XCTAssertEqual(cmd.alpha, ssl.real("alpha", method: "samix"))
        XCTAssertEqual(Double(cmd.eta), ssl.real("eta", method: "samix"), accuracy: 1e-7)
        XCTAssertEqual(cmd.maskLayer, ssl.int("mask_layer", method: "samix"))
        XCTAssertEqual(cmd.clusters, ssl.int("clusters", method: "samix"))
        XCTAssertEqual(cmd.kmeansWarmStart, ssl.bool("kmeans_warm_start", method: "samix"))
        XCTAssertEqual(cmd.clusterFeatures, ssl.text("cluster_features", method: "samix"))
        XCTAssertEqual(cmd.clusterPcaDim, ssl.int("cluster_pca_dim", method: "samix"))
        XCTAssertEqual(cmd.detachClusterHeadMixed, ssl.bool("detach_cluster_head_mixed", method: "samix"))
        let fit = OptionSchema.sslFit
        XCTAssertEqual(cmd.batch, fit.int("batch_size"))
        XCTAssertEqual(Double(cmd.lr), fit.real("lr"), accuracy: 1e-7)
        XCTAssertEqual(Double(cmd.weightDecay), fit.real("weight_decay"), accuracy: 1e-9)
        XCTAssertEqual(cmd.knnEvery, fit.int("knn_every"))
        XCTAssertEqual(cmd.knnK, fit.int("knn_k"))
        XCTAssertEqual(try ProbeCommand.parse(["--data", "/d", "--backbone", "b"]).knnK, fit.int("knn_k"))
    }

    /// The engine's own struct defaults agree with the schema where they describe the same thing
    /// (SAMix-I/C's configuration; MoCoConfig's are OpenMixup's ImageNet values — queue 65536, m 0.999 —
    /// which the front ends deliberately do not use).
    func testSAMixSSLConfigDefaultsAreTheSchema() throws {
        guard case .samix(let parsed) = try SSLOptions(mix: "samix", text: "").mix else { return XCTFail("samix") }
        XCTAssertEqual(parsed, try SAMixSSLConfig())
        guard case .samix(let cluster) = try SSLOptions(mix: "samix-c", text: "").mix else { return XCTFail("samix-c") }
        XCTAssertEqual(cluster, try SAMixSSLConfig(variant: .cluster))
    }

    /// `samix-bench train` with no flags: the schema's mix, and no learned flag (the engine's defaults).
    func testTrainCommandDefaultsAreTheSchema() throws {
        let cmd = try TrainCommand.parse(["--data", "/nonexistent"])
        XCTAssertEqual(cmd.mix, OptionSchema.trainer.text("mix"))
        XCTAssertTrue(cmd.learnedOptionPairs.isEmpty)
        XCTAssertNil(cmd.alpha)
        XCTAssertEqual(OptionSchema.trainer["mix"]?.choices, ObjectiveRegistry.names)
        XCTAssertTrue(ObjectiveRegistry.names.contains("alignmix"))
        // Optimizer flags: the schema's SGD defaults (OpenMixup CIFAR: lr 0.1, weight decay 5e-4).
        XCTAssertEqual(cmd.lr, Float(OptionSchema.optimizer.real("lr", method: "sgd")))
        XCTAssertEqual(cmd.weightDecay, Float(OptionSchema.optimizer.real("weight_decay", method: "sgd")))
        XCTAssertEqual(OptionSchema.optimizer.real("lr", method: "sgd"), 0.1)
        XCTAssertEqual(OptionSchema.optimizer.real("weight_decay", method: "sgd"), 5e-4)
        // --help text is the schema's (doc, choices, per-method defaults).
        let help = TrainCommand.helpMessage()
        XCTAssertTrue(help.contains("official (automix)") && help.contains("eta_balanced (samix)"), help)
    }

    /// The exported JSON names every option once with its default.
    func testSchemaJSON() throws {
        let j = try OptionSchema.json("learned:samix")
        for o in OptionSchema.learned.options(for: "samix") { XCTAssertTrue(j.contains("\"name\": \"\(o.name)\""), o.name) }
        XCTAssertFalse(j.contains("\"name\": \"lam_concat\""), "automix-only option in samix")
        XCTAssertTrue(j.contains("\"default\": \"L1+Variance\""))
        XCTAssertTrue(try OptionSchema.json("all").hasPrefix("{\"groups\": ["))
        XCTAssertThrowsError(try OptionSchema.json("nope"))
        XCTAssertThrowsError(try OptionSchema.json("learned:mixup"))
    }
}
