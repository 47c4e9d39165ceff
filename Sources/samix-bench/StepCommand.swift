import ArgumentParser
import SAMix
import Glibc

/// `samix-bench step`: training-step throughput (forward + cross-entropy + backward + SGD step) on a
/// fixed random batch, the same protocol as `shared/bench/torch_reference.py step`.
struct StepCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "step",
        abstract: "Time one training step (forward, loss, backward, SGD) of a model on a random batch.")

    @OptionGroup var shape: StepShapeOptions
    @Option(help: "Input channels.") var inChannels = 3
    @Option(help: "Random seed.") var seed: UInt64 = 0
    @Option(help: "Training objective (mixup, samix, automix, …; see `train --mix`). Default: plain cross-entropy.")
    var mix: String?
    @Flag(help: "Print one JSON object.") var json = false

    func run() throws {
        try Engine.checkEnvironment(); if let threads = shape.threads { try Engine.setThreads(threads) }
        let net = try ModelZoo.make(shape.model, numClasses: shape.classes, inChannels: inChannels, seed: seed)
        net.train()
        let objective = try mix.map { try ObjectiveRegistry.make($0) }
        let opt = try objective.map { try Trainer.sgd(model: net, objective: $0, lr: 0.1) }
            ?? SGD(net.namedParameters(), lr: 0.1, momentum: 0.9, weightDecay: 5e-4)
        for (_, m) in objective?.extraModules ?? [] { m.train() }
        var rng = SplitMix64(seed: seed &+ 1)
        let x = try Tensor(uninitializedShape: [shape.batch, inChannels, shape.size, shape.size])
        for i in 0..<x.count { x.data[i] = Float(rng.normal()) }
        let y = (0..<shape.batch).map { _ in rng.int(below: shape.classes) }
        // With an objective, each step gets a fresh copy of the batch (mixing policies work in place).
        let source = try ArrayBatchSource(images: x, labels: y, batchSize: shape.batch, shuffle: false)
        var times: [Double] = []
        for it in 0..<(shape.warmup + shape.iters) {
            let b = try objective.map { _ in try source.batch(0, epoch: 0) }
            let t0 = Clock.now()
            opt.zeroGrad()
            let loss: Tensor
            if let objective, let b {
                var ctx = StepContext(step: it, totalSteps: shape.warmup + shape.iters, epoch: 0, rng: SplitMix64(seed: seed).fork(index: UInt64(it)))
                loss = try objective.loss(model: net, batch: b, context: &ctx)
                try loss.backward()
                try opt.step()
                try objective.afterStep(model: net, context: ctx)
            } else {
                loss = try net(x).crossEntropy(labels: y)
                try loss.backward()
                try opt.step()
            }
            let dt = Clock.now() - t0
            if it >= shape.warmup { times.append(dt) }
            if !json { FileIO.stderr("step \(it): \(String(format3(dt * 1000))) ms loss \(loss.scalars.first ?? .nan)\n") }
        }
        times.sort()
        let median = times[times.count / 2], best = times.first ?? median
        let macs = try FLOPCounter.forwardMACs(model: net, inChannels: inChannels, size: shape.size)
        let ips = Double(shape.batch) / median
        let gflops = 3 * 2 * Double(macs) * Double(shape.batch) / 1e9 / median
        let rssMB = Double(ResourceUsage.peakRSSKilobytes()) / 1024
        if json {
            print("{\"engine\": \"samix\", \"model\": \"\(shape.model)\", \"mix\": \"\(mix ?? "none")\", \"batch\": \(shape.batch), \"threads\": \(Engine.threads), "
                + "\"in_channels\": \(inChannels), \"size\": \(shape.size), \"step_ms_median\": \(format3(median * 1000)), "
                + "\"step_ms_best\": \(format3(best * 1000)), \"images_per_second\": \(format3(ips)), "
                + "\"gflops\": \(format3(gflops)), \"peak_rss_mb\": \(format3(rssMB)), \"mac_per_image\": \(macs)}")
        } else {
            print("\(shape.model)\(mix.map { " mix=" + $0 } ?? "") shape.batch \(shape.batch) shape.threads \(Engine.threads): median \(format3(median * 1000)) ms "
                + "(best \(format3(best * 1000))), \(format3(ips)) img/s, \(format3(gflops)) GFLOP/s, peak RSS \(format3(rssMB)) MB")
        }
    }
}
