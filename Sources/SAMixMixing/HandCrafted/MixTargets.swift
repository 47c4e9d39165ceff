import SAMixCore
import SAMixOps
import SAMixNN
import SAMixData

// Soft targets for mixed batches (timm `mixup_target`):
//     targets[i, :] = λ_i · s(y_i) + (1 − λ_i) · s(y_π(i))
// with label smoothing ε over K classes: s(class c) = off + (1 − ε)·onehot(c), off = ε/K, so the true class
// gets on = 1 − ε + ε/K. Soft (dense) labels y ∈ R^{B×K} are smoothed the same way:
// s(y) = (1 − ε)·y + ε/K, which equals the one-hot rule when y is one-hot.

public enum MixTargets {
    /// Builds `B × K` soft targets from integer class labels into `out` (row-major).
    /// - Parameters:
    ///   - labels: `count` class indices, each in `0..<numClasses`.
    ///   - lambda: weight of sample i's own label (`MixResult.labelLambda`), `count` values in [0, 1].
    ///   - partner: π(i), `count` values in `0..<count`.
    ///   - smoothing: ε ∈ [0, 1).
    /// - Complexity: O(B·K).
    @_specialize(where L == Int64)
    @_specialize(where L == Int)
    public static func build<L: BinaryInteger>(labels: UnsafePointer<L>, count: Int, numClasses: Int, smoothing: Float,
                                               lambda: [Float], partner: [Int],
                                               into out: UnsafeMutablePointer<Float>) throws {
        try validate(count: count, numClasses: numClasses, smoothing: smoothing, lambda: lambda, partner: partner)
        for i in 0..<count {
            let y = labels[i]
            guard let yi = Int(exactly: y), yi >= 0, yi < numClasses else {
                throw SAMixError.invalidArgument("label \(y) at index \(i) is outside 0..<\(numClasses)")
            }
        }
        writeRows(labels: labels, count: count, numClasses: numClasses, smoothing: smoothing,
                  lambda: { lambda[$0] }, partner: { partner[$0] }, into: out)
    }

    /// The rows of `build` without its checks (labels in range, λ and π valid): row i is the smoothed
    /// one-hot of `labels[i]` weighted λ(i) plus that of `labels[partner(i)]` weighted 1 − λ(i).
    @inline(__always)
    static func writeRows<L: BinaryInteger>(labels: UnsafePointer<L>, count: Int, numClasses K: Int, smoothing: Float,
                                            lambda: (Int) -> Float, partner: (Int) -> Int,
                                            into out: UnsafeMutablePointer<Float>) {
        let off = smoothing / Float(K)
        let on = 1 - smoothing + off
        for i in 0..<count {
            let row = out + i &* K
            row.update(repeating: off, count: K)
            let l = lambda(i)
            let a = Int(labels[i]), b = Int(labels[partner(i)])
            // Written as λ·on + (1−λ)·off etc. so a λ of 1 or 0 gives exactly the smoothed one-hot.
            if a == b {
                row[a] = on
            } else {
                row[a] = l * on + (1 - l) * off
                row[b] = l * off + (1 - l) * on
            }
        }
    }

    /// Builds `B × K` soft targets from dense (soft) labels `B × K`.
    public static func build(softLabels: UnsafePointer<Float>, count: Int, numClasses: Int, smoothing: Float,
                             lambda: [Float], partner: [Int], into out: UnsafeMutablePointer<Float>) throws {
        try validate(count: count, numClasses: numClasses, smoothing: smoothing, lambda: lambda, partner: partner)
        let K = numClasses
        let off = smoothing / Float(K), keep = 1 - smoothing
        // `out` may alias `softLabels`: row i needs row π(i) of the input, so compute into a temporary.
        var tmp = [Float](repeating: 0, count: count &* K)
        tmp.withUnsafeMutableBufferPointer { t in
            guard let tp = t.baseAddress else { return }
            for i in 0..<count {
                let l = lambda[i], m = 1 - l
                let ya = softLabels + i &* K, yb = softLabels + partner[i] &* K
                let row = tp + i &* K
                for k in 0..<K {
                    row[k] = l * (keep * ya[k] + off) + m * (keep * yb[k] + off)
                }
            }
            out.update(from: tp, count: count &* K)
        }
    }

    /// Array convenience for integer labels: returns `B × K` soft targets.
    public static func build(labels: [Int], numClasses: Int, smoothing: Float = 0, lambda: [Float],
                             partner: [Int]) throws -> [Float] {
        try validate(count: labels.count, numClasses: numClasses, smoothing: smoothing, lambda: lambda, partner: partner)
        var out = [Float](repeating: 0, count: labels.count * numClasses)
        try labels.withUnsafeBufferPointer { lp in
            try out.withUnsafeMutableBufferPointer { op in
                guard let l = lp.baseAddress, let o = op.baseAddress else { return }
                try build(labels: l, count: labels.count, numClasses: numClasses, smoothing: smoothing,
                          lambda: lambda, partner: partner, into: o)
            }
        }
        return out
    }

    /// Array convenience for dense labels (`B × K`, row-major): returns `B × K` soft targets.
    public static func build(softLabels: [Float], numClasses: Int, smoothing: Float = 0, lambda: [Float],
                             partner: [Int]) throws -> [Float] {
        try require(numClasses >= 1, "numClasses must be ≥ 1, got \(numClasses)")
        try requireShape(softLabels.count == lambda.count * numClasses,
                         "soft labels have \(softLabels.count) values, expected \(lambda.count)×\(numClasses)")
        var out = [Float](repeating: 0, count: softLabels.count)
        try softLabels.withUnsafeBufferPointer { lp in
            try out.withUnsafeMutableBufferPointer { op in
                guard let l = lp.baseAddress, let o = op.baseAddress else { return }
                try build(softLabels: l, count: lambda.count, numClasses: numClasses, smoothing: smoothing,
                          lambda: lambda, partner: partner, into: o)
            }
        }
        return out
    }

    private static func validate(count: Int, numClasses: Int, smoothing: Float, lambda: [Float], partner: [Int]) throws {
        try require(count >= 1, "batch must contain at least one label")
        try require(numClasses >= 1, "numClasses must be ≥ 1, got \(numClasses)")
        try require(smoothing >= 0 && smoothing < 1, "label smoothing must be in [0, 1), got \(smoothing)")
        try requireShape(lambda.count == count && partner.count == count,
                         "λ (\(lambda.count)) and partner (\(partner.count)) must have one entry per label (\(count))")
        try require(lambda.allSatisfy { $0 >= 0 && $0 <= 1 }, "λ values must be in [0, 1]")
        try require(partner.allSatisfy { $0 >= 0 && $0 < count }, "partner index out of range 0..<\(count)")
    }
}

extension MixResult {
    /// Soft targets `B × K` for integer labels (timm `mixup_target` with this result's λ and partners).
    public func softTargets(labels: [Int], numClasses: Int, smoothing: Float = 0) throws -> [Float] {
        try requireShape(labels.count == batch, "got \(labels.count) labels for a batch of \(batch)")
        return try MixTargets.build(labels: labels, numClasses: numClasses, smoothing: smoothing,
                                    lambda: labelLambda, partner: partner)
    }

    /// Soft targets `B × K` for dense labels (`B × K`, row-major).
    public func softTargets(softLabels: [Float], numClasses: Int, smoothing: Float = 0) throws -> [Float] {
        try requireShape(softLabels.count == batch * numClasses,
                         "soft labels have \(softLabels.count) values, expected \(batch)×\(numClasses)")
        return try MixTargets.build(softLabels: softLabels, numClasses: numClasses, smoothing: smoothing,
                                    lambda: labelLambda, partner: partner)
    }

    /// Pointer variant for the C ABI: integer labels in, `B × K` floats out.
    @_specialize(where L == Int64)
    public func softTargets<L: BinaryInteger>(labels: UnsafePointer<L>, numClasses: Int, smoothing: Float,
                                              into out: UnsafeMutablePointer<Float>) throws {
        try MixTargets.build(labels: labels, count: batch, numClasses: numClasses, smoothing: smoothing,
                             lambda: labelLambda, partner: partner, into: out)
    }
}
