import XCTest
import SAMix
@testable import SAMixCore
@testable import SAMixOps
@testable import SAMixNN
@testable import SAMixData
@testable import SAMixMixing
@testable import SAMixTraining
@testable import samix_bench

/// `samix-bench train` builds its AutoMix/SAMix objective with the engine's option parser, the same
/// call the C ABI makes (`samix_trainer_create_learned` → `LearnedMixOptions.config(method:text:)`).
final class CLIOptionTests: XCTestCase {
    func cliConfig(_ args: [String]) throws -> LearnedMixConfig? {
        let cmd = try TrainCommand.parse(["--data", "/nonexistent"] + args)
        return (try cmd.learnedVariant() as? LearnedMixObjective)?.config
    }

    func testTrainFlagsBuildTheSameObjectiveAsTheABIOptions() throws {
        let cases: [([String], String, String)] = [
            (["--mix", "samix", "--mixer-loss", "bce", "--eta", "0.3"], "samix", "mixer_loss=bce\neta=0.3"),
            (["--mix", "samix", "--mixer-loss", "bce"], "samix", "mixer_loss=bce"),
            (["--mix", "automix", "--mixer-loss", "eta"], "automix", "mixer_loss=eta"),
            (["--mix", "samix", "--mixer-loss", "official"], "samix", "mixer_loss=official"),
            (["--mix", "samix", "--eta", "0.2"], "samix", "eta=0.2"),
            (["--mix", "samix", "--mask-loss-scope", "sample", "--alpha", "1"], "samix", "mask_loss_scope=sample\nalpha=1"),
            (["--mix", "automix", "--mask-loss-weight", "0"], "automix", "mask_loss=0"),
        ]
        for (args, method, text) in cases {
            let cli = try XCTUnwrap(try cliConfig(args), "\(args)")
            XCTAssertEqual(cli, try LearnedMixOptions.config(method: method, text: text), "\(args)")
        }
        // The bug of issue 14: --mixer-loss bce used negative weight 1 whatever --eta said.
        XCTAssertEqual(try cliConfig(["--mix", "samix", "--mixer-loss", "bce", "--eta", "0.3"])?.mixerLoss,
                       .sigmoidBCE(negativeWeight: 0.3))
        XCTAssertNil(try cliConfig(["--mix", "samix"]), "no ablation flag: the registry's default objective")
        XCTAssertThrowsError(try cliConfig(["--mix", "mixup", "--eta", "0.3"]))
        XCTAssertThrowsError(try cliConfig(["--mix", "samix", "--mixer-loss", "hinge"]))
    }
}

extension CLIOptionTests {
    /// The flags bench/accuracy_table.py passes for the issue-14 rows parse and build what they name.
    func testIssue14TrainFlags() throws {
        let clean = try TrainCommand.parse(["--data", "/d", "--mix", "mixup", "--clean-term", "--val-split", "5000",
                                            "--min-lr", "0.01"])
        XCTAssertTrue(clean.cleanTerm)
        XCTAssertEqual(clean.valSplit, 5000)
        XCTAssertEqual(clean.minLr, 0.01)
        XCTAssertNil(try TrainCommand.parse(["--data", "/d", "--mix", "mixup"]).minLr, "default: the method's floor")
        XCTAssertEqual(try cliConfig(["--mix", "samix", "--mask-loss-scope", "sample"])?.maskLoss.scope, .sample)
        XCTAssertEqual(try cliConfig(["--mix", "automix", "--mixer-loss", "eta"])?.mixerLoss, .etaBalanced(eta: 0.5))
        XCTAssertEqual(try cliConfig(["--mix", "samix", "--mixer-loss", "official"])?.mixerLoss, .mixupCrossEntropy)
    }
}
