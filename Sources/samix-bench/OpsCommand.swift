import ArgumentParser
import SAMix

/// `samix-bench ops`: time per call of every hand-crafted mixing policy (draw + apply, in place) on
/// float32 NCHW batches, the shapes `shared/bench/torch_reference.py ops` uses.
struct OpsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "ops",
        abstract: "Time one mixing call (sampling + in-place mixing) of each policy on B×3×S×S float32 batches.")

    @Option(help: "Batch size.") var batch = 128
    @Option(help: "Image sides, comma-separated.") var size = "32,224"
    @Option(help: "Comma-separated policies (default: all).") var methods = "mixup,mixup-flip,cutmix,fmix,gridmix,resizemix,smoothmix,saliencymix,timm-batch,timm-elem,timm-mixup-pair,timm-mixup-elem,timm-cutmix-pair,timm-cutmix-elem"
    @Option(help: "Timed calls per policy and size.") var iters = 41
    @Option(help: "Worker threads.") var threads: Int?
    @Flag(help: "Print one JSON object.") var json = false

    static func policy(_ name: String) throws -> MixPolicy {
        switch name {
        case "mixup": return try Mixup(alpha: 1)
        case "mixup-flip": return try Mixup(alpha: 1, partner: .flip)
        case "cutmix": return try CutMix(alpha: 1)
        case "fmix": return try FMix(alpha: 1)
        case "gridmix": return try GridMix(alpha: 1)
        case "resizemix": return try ResizeMix(alpha: 1)
        case "smoothmix": return try SmoothMix()
        case "saliencymix": return try SaliencyMix(alpha: 1)
        case "timm-batch": return try TimmMixup(MixupConfig(numClasses: 10, mixupAlpha: 1, cutmixAlpha: 1, mode: .batch))
        case "timm-elem": return try TimmMixup(MixupConfig(numClasses: 10, mixupAlpha: 1, cutmixAlpha: 1, mode: .elem))
        case "timm-mixup-pair", "timm-mixup-elem", "timm-cutmix-pair", "timm-cutmix-elem":
            // timm's per-sample modes with one method only, as compare_ops.py and torch_reference.py time them.
            let cut = name.contains("cutmix")
            return try TimmMixup(MixupConfig(numClasses: 10, mixupAlpha: cut ? 0 : 1, cutmixAlpha: cut ? 1 : 0,
                                             mode: name.hasSuffix("pair") ? .pair : .elem))
        default: throw ValidationError("unknown policy '\(name)'")
        }
    }

    func run() throws {
        try Engine.checkEnvironment(); if let threads { try Engine.setThreads(threads) }
        let sizes = try size.split(separator: ",").map { s -> Int in
            guard let v = Int(s), v > 0 else { throw ValidationError("bad size '\(s)'") }
            return v
        }
        var rows: [String] = []
        for s in sizes {
            let shape = try ImageBatchShape(batch: batch, channels: 3, height: s, width: s)
            let x = try Tensor(uninitializedShape: [batch, 3, s, s])
            var rng = SplitMix64(seed: 1)
            for i in 0..<x.count { x.data[i] = Float(rng.normal()) }
            for name in methods.split(separator: ",").map(String.init) {
                let p = try OpsCommand.policy(name)
                // One call = plan (λ, partners, boxes/masks) + in-place apply; both halves are timed so a
                // change can be attributed to the random draws or to the pixel kernels.
                var times: [Double] = [], planTimes: [Double] = [], applyTimes: [Double] = []
                for it in 0..<(iters + 3) {
                    let t0 = Clock.now()
                    let r = try p.plan(images: UnsafePointer(x.data), shape: shape, lambda: nil, rng: &rng)
                    let t1 = Clock.now()
                    try r.apply(inPlace: x.data, shape: shape)
                    let t2 = Clock.now()
                    if it >= 3 {
                        times.append((t2 - t0) * 1e6)
                        planTimes.append((t1 - t0) * 1e6)
                        applyTimes.append((t2 - t1) * 1e6)
                    }
                }
                func median(_ v: [Double]) -> Double { v.sorted()[v.count / 2] }
                let med = median(times), best = times.min() ?? 0
                let planMed = median(planTimes), applyMed = median(applyTimes)
                if json {
                    rows.append("{\"policy\": \"\(name)\", \"size\": \(s), \"batch\": \(batch), \"median_us\": \(format3(med)), \"best_us\": \(format3(best)), \"plan_median_us\": \(format3(planMed)), \"apply_median_us\": \(format3(applyMed))}")
                } else {
                    print("\(name) \(batch)x3x\(s)x\(s): median \(format3(med)) µs (plan \(format3(planMed)), apply \(format3(applyMed))), best \(format3(best)) µs")
                }
            }
        }
        if json { print("{\"engine\": \"samix\", \"threads\": \(Engine.threads), \"results\": [\(rows.joined(separator: ", "))]}") }
    }
}
