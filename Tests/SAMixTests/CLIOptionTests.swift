import XCTest
@testable import SAMix
@testable import samix_bench

/// `samix-bench train` builds its AutoMix/SAMix objective with the engine's option parser, the same
/// call the C ABI makes (`samix_trainer_create_learned` → `LearnedMixOptions.config(method:text:)`).
final class CLIOptionTests: XCTestCase {
    private func cliConfig(_ args: [String]) throws -> LearnedMixConfig? {
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
