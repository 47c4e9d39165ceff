import XCTest
import SAMix
@testable import SAMixCore
@testable import SAMixOps
@testable import SAMixNN
@testable import SAMixData
@testable import SAMixMixing
@testable import SAMixTraining

final class SSLAugmentationTests: XCTestCase {
    private func dataset(_ n: Int, h: Int = 12, w: Int = 10, seed: UInt64 = 1) throws -> ImageDataset {
        var rng = SplitMix64(seed: seed)
        let px = (0..<(n * 3 * h * w)).map { _ in UInt8(rng.int(below: 256)) }
        return try ImageDataset(pixels: px, labels: [Int32](repeating: 0, count: n), channels: 3, height: h, width: w,
                                classCount: 1, name: "aug")
    }

    func testShapesRangesAndDeterminism() throws {
        let d = try dataset(6)
        let aug = try SSLAugmentation(outputHeight: 8, outputWidth: 8, blurProbability: 0.5)
        let norm = try Normalization(mean: [0.5, 0.4, 0.3], std: [0.2, 0.25, 0.3])
        let a = try aug.view(of: d, indices: [0, 1, 2, 3, 4, 5], normalization: norm, rng: SplitMix64(seed: 3))
        XCTAssertEqual(a.shape, [6, 3, 8, 8])
        // Un-normalised values are in [0, 1].
        for i in 0..<6 { for c in 0..<3 { for p in 0..<64 {
            let v = a.data[(i * 3 + c) * 64 + p] * norm.std[c] + norm.mean[c]
            XCTAssertGreaterThanOrEqual(v, -1e-5); XCTAssertLessThanOrEqual(v, 1 + 1e-5)
        } } }
        let b = try aug.view(of: d, indices: [0, 1, 2, 3, 4, 5], normalization: norm, rng: SplitMix64(seed: 3))
        XCTAssertEqual(a.scalars, b.scalars)
        let c = try aug.view(of: d, indices: [0, 1, 2, 3, 4, 5], normalization: norm, rng: SplitMix64(seed: 4))
        XCTAssertNotEqual(a.scalars, c.scalars)
        // Thread-count invariance (per-image forks).
        let saved = Engine.threads
        Engine.threads = 1
        let e = try aug.view(of: d, indices: [0, 1, 2, 3, 4, 5], normalization: norm, rng: SplitMix64(seed: 3))
        Engine.threads = saved
        XCTAssertEqual(a.scalars, e.scalars)
        // Image i of the batch depends only on its own position's fork.
        let single = try aug.view(of: d, indices: [0], normalization: norm, rng: SplitMix64(seed: 3))
        XCTAssertEqual(Array(a.scalars[0..<192]), single.scalars)
        // The two views differ.
        let (v1, v2) = try aug.twoViews(of: d, indices: [0, 1], normalization: norm, rng: SplitMix64(seed: 3))
        XCTAssertEqual(v1.shape, v2.shape)
        XCTAssertNotEqual(v1.scalars, v2.scalars)
    }

    func testIdentitySettingsReproduceTheNormalisedImage() throws {
        let d = try dataset(2, h: 6, w: 6)
        let aug = try SSLAugmentation(outputHeight: 6, outputWidth: 6, cropScale: (1, 1), cropRatio: (1, 1),
                                      flipProbability: 0, jitterProbability: 0, grayscaleProbability: 0)
        let norm = Normalization.cifar10
        let a = try aug.view(of: d, indices: [1, 0], normalization: norm, rng: SplitMix64(seed: 1))
        let ref = try d.normalizedTensor(norm, indices: [1, 0])
        for i in 0..<a.count { XCTAssertEqual(a.data[i], ref.data[i], accuracy: 1e-4) }
        // Float input path = uint8 path.
        let raw = try d.normalizedTensor(.unitRange, indices: [1, 0])
        let b = try aug.view(of: raw, normalization: norm, rng: SplitMix64(seed: 1))
        for i in 0..<a.count { XCTAssertEqual(a.data[i], b.data[i], accuracy: 1e-5) }
        // Flip always: mirrored rows.
        var flip = aug
        flip.flipProbability = 1
        let f = try flip.view(of: d, indices: [1, 0], normalization: norm, rng: SplitMix64(seed: 1))
        for c in 0..<3 { for y in 0..<6 { for x in 0..<6 {
            XCTAssertEqual(f.data[c * 36 + y * 6 + x], a.data[c * 36 + y * 6 + (5 - x)], accuracy: 1e-6)
        } } }
    }

    func testColourOperations() throws {
        let plane = 4
        // Zero hue shift is an exact HSV round trip (up to float rounding).
        var px: [Float] = [0.9, 0.1, 0.5, 0.3, 0.2, 0.8, 0.5, 0.3, 0.4, 0.7, 0.5, 0.3]
        let orig = px
        px.withUnsafeMutableBufferPointer { SSLAugmentation.shiftHue($0.baseAddress!, plane: plane, by: 0) }
        for i in 0..<px.count { XCTAssertEqual(px[i], orig[i], accuracy: 1e-5) }
        // A shift of 1/3 turns pure red into pure green.
        var red: [Float] = [1, 0, 0]
        red.withUnsafeMutableBufferPointer { SSLAugmentation.shiftHue($0.baseAddress!, plane: 1, by: 1.0 / 3) }
        XCTAssertEqual(red[0], 0, accuracy: 1e-5); XCTAssertEqual(red[1], 1, accuracy: 1e-5); XCTAssertEqual(red[2], 0, accuracy: 1e-5)
        // Grayscale: equal channels with the ITU-R 601 weights; saturation 0 gives the same.
        var g = orig, s = orig
        g.withUnsafeMutableBufferPointer { SSLAugmentation.toGray($0.baseAddress!, plane: plane) }
        s.withUnsafeMutableBufferPointer { SSLAugmentation.adjustSaturation($0.baseAddress!, plane: plane, factor: 0) }
        for k in 0..<plane {
            let ref = 0.299 * orig[k] + 0.587 * orig[plane + k] + 0.114 * orig[2 * plane + k]
            for c in 0..<3 { XCTAssertEqual(g[c * plane + k], ref, accuracy: 1e-6); XCTAssertEqual(s[c * plane + k], ref, accuracy: 1e-6) }
        }
        // Contrast 0 gives the mean gray everywhere.
        var z = orig
        z.withUnsafeMutableBufferPointer { SSLAugmentation.adjustContrast($0.baseAddress!, plane: plane, factor: 0) }
        XCTAssertEqual(Set(z.map { ($0 * 1e5).rounded() }).count, 1)
        // Blur keeps a constant image constant (normalised kernel, reflected borders) and spreads a
        // central impulse symmetrically, preserving its sum when the kernel (radius 2 for σ = 0.5)
        // does not reach the border.
        var flat = [Float](repeating: 0.3, count: 3 * 49)
        flat.withUnsafeMutableBufferPointer { SSLAugmentation.gaussianBlur($0.baseAddress!, channels: 3, height: 7, width: 7, sigma: 2) }
        for v in flat { XCTAssertEqual(v, 0.3, accuracy: 1e-5) }
        var img = [Float](repeating: 0, count: 3 * 49)
        img[24] = 1
        img.withUnsafeMutableBufferPointer { SSLAugmentation.gaussianBlur($0.baseAddress!, channels: 3, height: 7, width: 7, sigma: 0.5) }
        XCTAssertEqual(img[0..<49].reduce(0, +), 1, accuracy: 1e-4)
        XCTAssertLessThan(img[24], 0.8)
        XCTAssertEqual(img[23], img[25], accuracy: 1e-6)
        XCTAssertEqual(img[17], img[31], accuracy: 1e-6)
        XCTAssertGreaterThan(img[23], 0.05)
    }

    func testCropParametersFollowTheScaleAndRatioRanges() throws {
        let aug = try SSLAugmentation.mocoV2(height: 32, width: 32)
        XCTAssertEqual(aug.blurProbability, 0, "blur is off at CIFAR resolution")
        XCTAssertEqual(try SSLAugmentation.mocoV2(height: 64, width: 64).blurProbability, 0.5)
        var rng = SplitMix64(seed: 5)
        var jitters = 0, grays = 0
        let trials = 2000
        for _ in 0..<trials {
            let p = aug.draw(sourceHeight: 32, sourceWidth: 32, rng: &rng)
            XCTAssertTrue(p.top >= 0 && p.left >= 0 && p.top + p.height <= 32 && p.left + p.width <= 32)
            let area = Double(p.height * p.width) / 1024
            XCTAssertGreaterThanOrEqual(area, 0.12)   // 0.2 up to rounding of a small box
            XCTAssertEqual(Set(p.jitterOrder), [0, 1, 2, 3])
            if let j = p.jitter {
                jitters += 1
                XCTAssertTrue((0.6...1.4).contains(j.brightness) && (-0.1...0.1).contains(j.hue))
            }
            if p.grayscale { grays += 1 }
            XCTAssertNil(p.blurSigma)
        }
        XCTAssertEqual(Double(jitters) / Double(trials), 0.8, accuracy: 0.04)
        XCTAssertEqual(Double(grays) / Double(trials), 0.2, accuracy: 0.04)
    }
}
