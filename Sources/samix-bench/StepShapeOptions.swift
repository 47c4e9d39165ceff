import ArgumentParser

/// The options of the step-timing commands (`step`, `scale`): model, batch, threads, input size,
/// classes, warm-up and timed steps.
struct StepShapeOptions: ParsableArguments {
    @Option(help: "Model name (resnet20, resnet18, …).") var model = "resnet20"
    @Option(help: "Batch size (`scale`: the global batch, split over the ranks).") var batch = 128
    @Option(help: "Worker threads (per rank under mpirun; default: the cores, shared among a node's ranks).")
    var threads: Int?
    @Option(help: "Input height and width.") var size = 32
    @Option(help: "Number of classes.") var classes = 10
    @Option(help: "Warm-up steps (not timed).") var warmup = 2
    @Option(help: "Timed steps.") var iters = 7
}
