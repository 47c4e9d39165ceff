import ArgumentParser
import SAMix

/// `samix-bench viz`: a PNG of what a mixing policy does — originals, partner-weight masks and mixed
/// images of a few test images (Fashion-MNIST from Debian's package by default, or a CIFAR folder).
struct VizCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "viz",
        abstract: "Write a PNG grid of originals, partner-weight masks (white = partner) and mixed images.")

    @Option(help: "Mixing policy: mixup, cutmix, fmix, gridmix, resizemix, smoothmix, saliencymix.") var method = "cutmix"
    @Option(help: "Output PNG file.") var out: String
    @Option(help: "Dataset folder (CIFAR-10/100 binary or IDX files); default: Fashion-MNIST test images.") var data: String?
    @Option(help: "Number of images (columns).") var count = 8
    @Option(help: "Beta(α, α) parameter (not for smoothmix).") var alpha = 1.0
    @Option(help: "Pixel scale factor (default: 3 for images up to 32 pixels, else 1).") var scale: Int?
    @Option(help: "Random seed.") var seed: UInt64 = 0
    @Option(help: "Draw the masks of a trained Mixer (from `train --save-mixer`) instead of --method.") var mixer: String?
    @Option(help: "λ (weight of the original) for --mixer.") var lam: Float = 0.5

    /// The policy with one λ per sample and a derangement (no sample paired with itself), so every
    /// column shows a real mix.
    static func policy(_ name: String, alpha: Double) throws -> MixPolicy {
        switch name.lowercased() {
        case "mixup": return try Mixup(alpha: alpha, partner: .derangement, perSample: true)
        case "cutmix": return try CutMix(alpha: alpha, partner: .derangement, perSample: true)
        case "fmix": var p = try FMix(alpha: alpha); p.perSample = true; p.partner = .derangement; return p
        case "gridmix": var p = try GridMix(alpha: alpha); p.perSample = true; p.partner = .derangement; return p
        case "resizemix": var p = try ResizeMix(alpha: alpha); p.perSample = true; p.partner = .derangement; return p
        case "smoothmix": var p = try SmoothMix(); p.perSample = true; p.partner = .derangement; return p
        case "saliencymix": var p = try SaliencyMix(alpha: alpha); p.perSample = true; p.partner = .derangement; return p
        default: throw ValidationError("unknown method '\(name)'; expected mixup, cutmix, fmix, gridmix, resizemix, smoothmix or saliencymix")
        }
    }

    func run() throws {
        guard count >= 2, count <= 64 else { throw ValidationError("--count must be in 2...64") }
        if let mixer { return try drawLearned(mixerPath: mixer) }
        let policy = try VizCommand.policy(method, alpha: alpha)
        let kind: DatasetKind = data == nil ? .idx : .auto
        let ds = try ImageDataset.load(directory: data ?? "/usr/share/datasets/fashion-mnist", split: .test, kind: kind)
        guard ds.count >= count else { throw ValidationError("the dataset has only \(ds.count) images") }
        let (c, h, w) = (ds.channels, ds.height, ds.width)
        // The first `count` test images as floats in [0, 1].
        let x = try Tensor(uninitializedShape: [count, c, h, w])
        for i in 0..<x.count { x.data[i] = Float(ds.pixels[i]) / 255 }
        let mixed = try x.copy()
        var rng = SplitMix64(seed: seed)
        let shape = try ImageBatchShape(batch: count, channels: c, height: h, width: w)
        let r = try policy.mix(UnsafeMutablePointer<Float>(mixed.data), shape: shape, rng: &rng)
        var masks: [Float] = []
        for i in 0..<count { masks += try r.partnerWeightMap(sample: i) }
        let grid = try MixGrid(scale: scale ?? (max(h, w) <= 32 ? 3 : 1), gap: 2)
        let (width, height, px) = try grid.render(original: x, masks: masks, mixed: mixed)
        try PNGWriter.write(out, width: width, height: height, channels: 3, pixels: px)
        let lams = r.lambda.map { String(Int(($0 * 100).rounded())) }.joined(separator: " ")
        print("\(out): \(method) on \(count) images of \(ds.name), \(width)×\(height) px; λ (%): \(lams)")
    }

    /// Masks of a trained (frozen) Mixer at ratio `lam`, partner of column i = column i+1. The encoder
    /// sees the images normalised as in training; the grid shows them in [0, 1].
    func drawLearned(mixerPath: String) throws {
        guard lam >= 0, lam <= 1 else { throw ValidationError("--lam must be in [0, 1]") }
        let obj = try PretrainedMixerObjective(path: mixerPath)
        let ds = try ImageDataset.load(directory: data ?? "/usr/share/datasets/fashion-mnist", split: .test,
                                       kind: data == nil ? .idx : .auto)
        guard ds.count >= count else { throw ValidationError("the dataset has only \(ds.count) images") }
        try obj.prepare(inChannels: ds.channels)
        let (c, h, w) = (ds.channels, ds.height, ds.width)
        let x = try Tensor(uninitializedShape: [count, c, h, w])
        for i in 0..<x.count { x.data[i] = Float(ds.pixels[i]) / 255 }
        let normalized = try ds.normalizedTensor(.standard(for: ds), indices: Array(0..<count))
        let partner = (0..<count).map { ($0 + 1) % count }
        var rng = SplitMix64(seed: seed)
        let m = try obj.masks(images: normalized, lam: lam, permutation: partner, rng: &rng)
        let mixed = try x.mixed(withPartners: partner, partnerMask: m)
        let grid = try MixGrid(scale: scale ?? (max(h, w) <= 32 ? 3 : 1), gap: 2)
        let (width, height, px) = try grid.render(original: x, masks: m.scalars, mixed: mixed)
        try PNGWriter.write(out, width: width, height: height, channels: 3, pixels: px)
        let means = (0..<count).map { i in m.scalars[(i * h * w)..<((i + 1) * h * w)].reduce(0, +) / Float(h * w) }
        print("\(out): Mixer \(mixerPath) at λ = \(lam) on \(count) images of \(ds.name); partner-weight mask means (%): "
              + means.map { String(Int(($0 * 100).rounded())) }.joined(separator: " "))
    }
}
