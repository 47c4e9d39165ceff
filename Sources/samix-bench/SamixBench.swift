import ArgumentParser
import SAMix

@main
struct SamixBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "samix-bench",
        abstract: "Benchmarks and trainings of the samix engine, without Python.",
        subcommands: [StepCommand.self, ScaleCommand.self, TrainCommand.self, OpsCommand.self, SSLCommand.self, ProbeCommand.self, VizCommand.self])
}
