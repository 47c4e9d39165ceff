import XCTest
import Foundation
@testable import SAMix

/// Timing of the batch-mode kernels on 128×3×32×32 (CIFAR batch). The bounds are only asserted in
/// release builds (`swift test -c release --filter MixingPerf`), where they are ~10× above the
/// measured medians (shared 2-core VM); debug builds only print the numbers.
final class MixingPerfTests: XCTestCase {
    func median(_ runs: Int = 41, _ body: () throws -> Void) rethrows -> Double {
        var t: [Double] = []
        for _ in 0..<runs {
            let a = DispatchTime.now().uptimeNanoseconds
            try body()
            t.append(Double(DispatchTime.now().uptimeNanoseconds - a) / 1000)
        }
        return t.sorted()[runs / 2]
    }

    func testBatchKernelSpeed() throws {
        let s = try ImageBatchShape(batch: 128, channels: 3, height: 32, width: 32)
        var x = MixRef.images(s.elementCount, seed: 1)
        var out = [Float](repeating: 0, count: x.count)
        var u = MixRef.bytes(s.elementCount, seed: 1)
        var rng = SplitMix64(seed: 1)
        let mixup = try Mixup(), flip = try Mixup(partner: .flip), cut = try CutMix(alpha: 1)
        let timm = try TimmMixup(MixupConfig(numClasses: 100, cutmixAlpha: 1, mode: .elem))
        var results: [(String, Double, Double)] = []   // name, µs, release bound
        try x.withUnsafeMutableBufferPointer { xp in
            let p = xp.baseAddress!
            results.append(("mixup in place (perm)", try median { try mixup.mix(p, shape: s, rng: &rng) }, 400))
            results.append(("mixup in place (flip)", try median { try flip.mix(p, shape: s, rng: &rng) }, 400))
            results.append(("cutmix in place", try median { try cut.mix(p, shape: s, rng: &rng) }, 300))
            try out.withUnsafeMutableBufferPointer { op in
                let o = op.baseAddress!
                results.append(("mixup out of place", try median { try mixup.mix(UnsafePointer(p), into: o, shape: s, rng: &rng) }, 400))
                results.append(("cutmix out of place", try median { try cut.mix(UnsafePointer(p), into: o, shape: s, rng: &rng) }, 400))
            }
            results.append(("timm elem in place", try median { try timm.mix(p, shape: s, rng: &rng) }, 800))
            results.append(("fmix in place", try median { try FMix().mix(p, shape: s, rng: &rng) }, 2000))
        }
        try u.withUnsafeMutableBufferPointer { up in
            results.append(("uint8 mixup in place", try median { try mixup.mix(up.baseAddress!, shape: s, rng: &rng) }, 400))
        }
        for (name, us, bound) in results {
            FileHandle.standardError.write("mixing perf: \(name): \(String(format: "%.1f", us)) µs\n".data(using: .utf8)!)
            #if !DEBUG
            XCTAssertLessThan(us, bound, name)
            #else
            _ = bound
            #endif
        }
    }
}
