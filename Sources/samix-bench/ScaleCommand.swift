import ArgumentParser
import SAMix

/// `samix-bench scale`: data-parallel training-step throughput. Run it alone (one rank) or under
/// `mpirun -np N` (N ranks, each on its shard of the global batch); rank 0 prints the global images/s
/// and the time per step spent in collectives (gradient all-reduce, and BatchNorm reductions with
/// --sync-bn), measured through the engine's own fit loop on random data.
struct ScaleCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "scale",
        abstract: "Data-parallel step throughput (run under mpirun -np N, or alone for one rank).")

    @OptionGroup var shape: StepShapeOptions
    @Option(help: "Training objective (vanilla, mixup, samix, …).") var mix = "vanilla"
    @Flag(help: "Synchronized BatchNorm across ranks.") var syncBn = false
    @OptionGroup var buckets: GradientBucketOption
    @Flag(help: "Print one JSON object.") var json = false

    func run() throws {
        try Engine.checkEnvironment()
        if let threads = shape.threads { try Engine.setThreads(threads) }
        let world = try ProcessGroup.world()
        let net = try ModelZoo.make(shape.model, numClasses: shape.classes, inChannels: 3, seed: 0)
        let objective = try ObjectiveRegistry.make(mix)
        let trainer = Trainer(model: net, objective: objective,
                              optimizer: try Trainer.sgd(model: net, objective: objective, lr: 0.01), seed: 0)
        trainer.runSettings = ["model": shape.model, "batch": String(shape.batch), "mix": mix]
        try trainer.distribute(over: world, syncBatchNorm: syncBn, bucketCapMB: buckets.bucketCapMb)
        var rng = SplitMix64(seed: 1)
        let steps = shape.warmup + shape.iters
        let x = try Tensor(uninitializedShape: [steps * shape.batch, 3, shape.size, shape.size])
        for i in 0..<x.count { x.data[i] = Float(rng.normal()) }
        let y = (0..<(steps * shape.batch)).map { _ in rng.int(below: shape.classes) }
        let source = try ArrayBatchSource(images: x, labels: y, batchSize: shape.batch, shuffle: false)
        var stamps: [Double] = [], comm: [Double] = []
        let t0 = Clock.now()
        stamps.append(t0)
        comm.append(world.secondsInCollectives)
        try trainer.fit(source, epochs: 1, evaluations: [], onStep: { _ in
            stamps.append(Clock.now())
            comm.append(world.secondsInCollectives)
            return true
        })
        let timed = (shape.warmup..<steps).map { stamps[$0 + 1] - stamps[$0] }.sorted()
        let commTimed = (shape.warmup..<steps).map { comm[$0 + 1] - comm[$0] }.sorted()
        let median = timed[timed.count / 2], commMedian = commTimed[commTimed.count / 2]
        let params = trainer.optimizer.namedParameters.reduce(0) { $0 + $1.1.count }
        guard world.isMain else { return }
        let ips = Double(shape.batch) / median
        if json {
            print("{\"engine\": \"samix\", \"model\": \"\(shape.model)\", \"mix\": \"\(mix)\", \"ranks\": \(world.size), "
                + "\"threads_per_rank\": \(Engine.threads), \"batch\": \(shape.batch), \"sync_bn\": \(syncBn), "
                + "\"bucket_cap_mb\": \(buckets.bucketCapMb), \"buckets\": \(trainer.dataParallel?.bucketCount ?? 0), "
                + "\"step_ms_median\": \(format3(median * 1000)), \"images_per_second\": \(format3(ips)), "
                + "\"collective_ms_per_step\": \(format3(commMedian * 1000)), \"gradient_bytes\": \(params * 4)}")
        } else {
            print("\(shape.model) mix=\(mix) \(world.size) rank(s) × \(Engine.threads) thread(s), global batch \(shape.batch), "
                + "buckets \(trainer.dataParallel?.bucketCount ?? 0) (cap \(buckets.bucketCapMb) MiB): "
                + "\(format3(median * 1000)) ms/step, \(format3(ips)) img/s, collectives \(format3(commMedian * 1000)) ms/step, "
                + "gradient \(format3(Double(params * 4) / 1e6)) MB")
        }
    }
}
