import Glibc
import SAMix

/// Reference box so a value-type engine object can live in the handle registry.
final class Box<T> {
    var value: T
    init(_ value: T) { self.value = value }
}

/// Reads a NUL-terminated UTF-8 C string argument.
func readString(_ p: UnsafePointer<CChar>?, _ name: String, maxBytes: Int = 1 << 16) throws -> String {
    let p = try nonNull(p, name)
    let n = strnlen(p, maxBytes + 1)
    guard n <= maxBytes else { throw CAPIError(.invalidArgument, "\(name) is longer than \(maxBytes) bytes") }
    return String(cString: p)
}

func datasetSplit(_ split: Int32) throws -> DatasetSplit {
    switch split {
    case 0: return .train
    case 1: return .test
    default: throw CAPIError(.invalidArgument, "split must be 0 (train) or 1 (test), got \(split)")
    }
}

func datasetKind(_ name: String) throws -> DatasetKind {
    switch name.lowercased() {
    case "auto", "": return .auto
    case "cifar10", "cifar-10": return .cifar10
    case "cifar100", "cifar-100": return .cifar100
    case "cifar100-coarse", "cifar100_coarse", "cifar100coarse": return .cifar100Coarse
    case "idx", "mnist", "fashion-mnist", "fashion_mnist", "fashionmnist": return .idx
    default:
        throw CAPIError(.invalidArgument,
                        "unknown dataset kind '\(name)'; expected auto, cifar10, cifar100, cifar100-coarse or idx")
    }
}

@_cdecl("samix_dataset_load")
public func samix_dataset_load(_ directory: UnsafePointer<CChar>?, _ split: Int32,
                               _ kind: UnsafePointer<CChar>?, _ allowPartial: Int32,
                               _ out: UnsafeMutablePointer<UInt64>?) -> Int32 {
    guarded("samix_dataset_load") {
        let out = try nonNull(out, "out")
        let dir = try readString(directory, "directory")
        let k = try kind == nil ? DatasetKind.auto : datasetKind(readString(kind, "kind"))
        let ds = try ImageDataset.load(directory: dir, split: try datasetSplit(split), kind: k, allowPartial: allowPartial != 0)
        out.pointee = Registry.shared.insert(Box(ds), kind: .dataset)
    }
}

@_cdecl("samix_dataset_create")
public func samix_dataset_create(_ pixels: UnsafePointer<UInt8>?, _ labels: UnsafePointer<Int64>?,
                                 _ count: Int64, _ channels: Int64, _ height: Int64, _ width: Int64,
                                 _ classCount: Int64, _ out: UnsafeMutablePointer<UInt64>?) -> Int32 {
    guarded("samix_dataset_create") {
        let out = try nonNull(out, "out")
        let dims = try readDims([count, channels, height, width], names: ["count", "channels", "height", "width"])
        guard channels >= 1, height >= 1, width >= 1 else {
            throw CAPIError(.shape, "image dimensions \(channels)×\(height)×\(width) must be positive")
        }
        guard classCount >= 1, classCount <= 1 << 24 else {
            throw CAPIError(.invalidArgument, "number of classes must be in 1...\(1 << 24), got \(classCount)")
        }
        let n = dims[0], total = dims[0] * dims[1] * dims[2] * dims[3]
        var pix = [UInt8]()
        var labs = [Int32](repeating: 0, count: n)
        if n > 0 {
            let pp = try nonNull(pixels, "pixels"), lp = try nonNull(labels, "labels")
            for i in 0..<n {
                let l = lp[i]
                guard l >= 0, l < classCount else {
                    throw CAPIError(.invalidArgument, "label \(l) of image \(i) is outside 0..<\(classCount)")
                }
                labs[i] = Int32(l)
            }
            pix = Array(UnsafeBufferPointer(start: pp, count: total))
        }
        let ds = try ImageDataset(pixels: pix, labels: labs, channels: dims[1], height: dims[2], width: dims[3],
                                  classCount: Int(classCount), name: "arrays")
        out.pointee = Registry.shared.insert(Box(ds), kind: .dataset)
    }
}

/// Validates non-negative sizes whose product fits (`Tensor.maxElements`).
func readDims(_ values: [Int64], names: [String]) throws -> [Int] {
    for (v, name) in zip(values, names) where v < 0 { throw CAPIError(.shape, "\(name) must be ≥ 0, got \(v)") }
    guard Tensor.elementCount(values) != nil else { throw CAPIError(.invalidArgument, "sizes \(values) are too large") }
    return values.map { Int($0) }
}

@_cdecl("samix_dataset_shape")
public func samix_dataset_shape(_ handle: UInt64, _ out: UnsafeMutablePointer<Int64>?) -> Int32 {
    guarded("samix_dataset_shape") {
        let out = try nonNull(out, "out")
        try Registry.shared.with(handle, .dataset, as: Box<ImageDataset>.self) { b in
            let d = b.value
            out[0] = Int64(d.count)
            out[1] = Int64(d.channels)
            out[2] = Int64(d.height)
            out[3] = Int64(d.width)
            out[4] = Int64(d.classCount)
        }
    }
}

@_cdecl("samix_dataset_copy")
public func samix_dataset_copy(_ handle: UInt64, _ pixels: UnsafeMutablePointer<UInt8>?, _ pixelCount: Int64,
                               _ labels: UnsafeMutablePointer<Int64>?, _ labelCount: Int64) -> Int32 {
    guarded("samix_dataset_copy") {
        try Registry.shared.with(handle, .dataset, as: Box<ImageDataset>.self) { b in
            let d = b.value
            guard pixelCount == Int64(d.pixels.count) else {
                throw CAPIError(.shape, "pixels buffer holds \(pixelCount) bytes, dataset has \(d.pixels.count)")
            }
            guard labelCount == Int64(d.count) else {
                throw CAPIError(.shape, "labels buffer holds \(labelCount) entries, dataset has \(d.count)")
            }
            if d.count == 0 { return }
            let pp = try nonNull(pixels, "pixels"), lp = try nonNull(labels, "labels")
            d.pixels.withUnsafeBufferPointer { src in
                if let s = src.baseAddress { pp.update(from: s, count: src.count) }
            }
            for i in 0..<d.count { lp[i] = Int64(d.labels[i]) }
        }
    }
}

/// Copies `text` + NUL into `buf` (capacity `cap`) and stores the needed size (including NUL).
func copyOutString(_ text: String, _ buf: UnsafeMutablePointer<CChar>?, _ cap: Int64,
                   _ needed: UnsafeMutablePointer<Int64>?) throws {
    let bytes = Array(text.utf8)
    needed?.pointee = Int64(bytes.count + 1)
    guard cap > 0 else { return }
    let b = try nonNull(buf, "buf")
    guard Int64(bytes.count + 1) <= cap else {
        throw CAPIError(.invalidArgument, "buffer of \(cap) bytes is too small, \(bytes.count + 1) needed")
    }
    for (i, c) in bytes.enumerated() { b[i] = CChar(bitPattern: c) }
    b[bytes.count] = 0
}

@_cdecl("samix_dataset_info")
public func samix_dataset_info(_ handle: UInt64, _ buf: UnsafeMutablePointer<CChar>?, _ cap: Int64,
                               _ needed: UnsafeMutablePointer<Int64>?) -> Int32 {
    guarded("samix_dataset_info") {
        try Registry.shared.with(handle, .dataset, as: Box<ImageDataset>.self) { b in
            let text = ([b.value.name] + b.value.classNames).joined(separator: "\n")
            try copyOutString(text, buf, cap, needed)
        }
    }
}

@_cdecl("samix_dataset_free")
public func samix_dataset_free(_ handle: UInt64) -> Int32 {
    freeHandle("samix_dataset_free", handle, .dataset)
}
