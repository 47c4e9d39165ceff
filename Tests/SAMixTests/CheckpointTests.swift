import Glibc
import XCTest
import SAMix
@testable import SAMixCore
@testable import SAMixOps
@testable import SAMixNN
@testable import SAMixData
@testable import SAMixMixing
@testable import SAMixTraining

/// JSON, safetensors files, atomic writes, model and trainer checkpoints (exact resume).
final class CheckpointTests: XCTestCase {
    private var tmp: TemporaryDirectory!
    private var dir: String { tmp.path }

    override func setUpWithError() throws { tmp = try TemporaryDirectory(prefix: "samix-ckpt") }
    override func tearDown() { tmp.remove() }
    private func files() -> [String] { tmp.files() }

    private func writeBytes(_ path: String, _ bytes: [UInt8]) {
        let f = fopen(path, "wb")!
        _ = bytes.withUnsafeBytes { fwrite($0.baseAddress, 1, bytes.count, f) }
        fclose(f)
    }

    private func ioMessage(_ body: () throws -> Void) -> String? {
        do { try body() } catch let e as SAMixError {
            if case .io(let m) = e { return m }
            return "non-io error: \(e)"
        } catch { return "other error: \(error)" }
        return nil
    }

    // MARK: JSON

    func testJSONRoundTripAndEscapes() throws {
        let text = #"{"a":[1,-2.5e3,0,true,false,null],"s":"q\"b\\s\/\n\t\u00e9\ud83d\ude00","o":{}}"#
        let v = try JSON.parse(text)
        XCTAssertEqual(v["a"], .array([.number("1"), .number("-2.5e3"), .number("0"), .bool(true), .bool(false), .null]))
        XCTAssertEqual(v["s"], .string("q\"b\\s/\n\té😀"))
        if case .array(let a)? = v["a"] { XCTAssertEqual(a[0].int, 1); XCTAssertNil(a[1].int) } else { XCTFail("no array") }
        // The writer's output parses back to the same value (keys keep their order).
        XCTAssertEqual(try JSON.parse(v.serialized), v)
        XCTAssertEqual(JSON.quote("a\u{01}\"\\"), #""a\u0001\"\\""#)
        XCTAssertEqual(try JSON.parse("  [ ] "), .array([]))
    }

    func testJSONRejectsMalformedInput() {
        let bad = ["", "{", "{\"a\":}", "[1,]", "01", "1.", "-", "\"abc", "\"\\x\"", "\"\\ud800\"", "{\"a\":1} x",
                   "tru", "\"a\u{01}\"", String(repeating: "[", count: 100) + String(repeating: "]", count: 100),
                   "{1:2}", "[1 2]"]
        for s in bad {
            XCTAssertNotNil(ioMessage { _ = try JSON.parse(s) }, "accepted \(s.debugDescription)")
        }
        XCTAssertNotNil(ioMessage { _ = try JSON.parse([0x22, 0xFF, 0x22]) }, "accepted invalid UTF-8")
    }

    // MARK: safetensors

    func testSafetensorsByteLayoutAndRoundTrip() throws {
        let a = try Tensor([1, 2, 3, 4, 5, 6], shape: [2, 3])
        let b = try Tensor([-0.5], shape: [])
        let e = try Tensor(zeros: [0, 4])
        let path = dir + "/t.safetensors"
        try SafetensorsFile(tensors: [("w\"eird/näme", a), ("scalar", b), ("empty", e)],
                            metadata: ["k": "v", "z": "line\nbreak"]).write(to: path)
        let bytes = try FileBytes.read(path)
        var n = 0
        for k in 0..<8 { n |= Int(bytes[k]) << (8 * k) }
        XCTAssertEqual((8 + n) % 8, 0, "data section is 8-byte aligned")
        XCTAssertEqual(bytes.count, 8 + n + 7 * 4)
        let header = try JSON.parse(Array(bytes[8..<(8 + n)]))
        // Caller metadata plus one CRC-32 per tensor (sorted keys: "crc32:…" first).
        XCTAssertEqual(header["__metadata__"], .object([
            ("crc32:empty", .string("00000000")),
            ("crc32:scalar", .string(SafetensorsFile.hex8(SafetensorsFile.crc32(of: b)))),
            ("crc32:w\"eird/näme", .string(SafetensorsFile.hex8(SafetensorsFile.crc32(of: a)))),
            ("k", .string("v")), ("z", .string("line\nbreak"))]))
        XCTAssertEqual(header["scalar"]?["dtype"], .string("F32"))
        XCTAssertEqual(header["scalar"]?["shape"], .array([]))
        XCTAssertEqual(header["scalar"]?["data_offsets"], .array([.number("24"), .number("28")]))
        // Tensor bytes are little-endian float32.
        let first = UInt32(bytes[8 + n]) | UInt32(bytes[9 + n]) << 8 | UInt32(bytes[10 + n]) << 16 | UInt32(bytes[11 + n]) << 24
        XCTAssertEqual(Float(bitPattern: first), 1)

        let f = try SafetensorsFile.read(path)
        XCTAssertEqual(f.metadata, ["k": "v", "z": "line\nbreak"])
        XCTAssertEqual(f.tensors.map(\.0), ["w\"eird/näme", "scalar", "empty"])
        XCTAssertEqual(f.tensors[0].1.shape, [2, 3])
        XCTAssertEqual(f.tensors[0].1.scalars, [1, 2, 3, 4, 5, 6])
        XCTAssertEqual(f.tensors[1].1.shape, [])
        XCTAssertEqual(f.tensors[1].1.scalars, [-0.5])
        XCTAssertEqual(f.tensors[2].1.shape, [0, 4])
        let h = try SafetensorsFile.readHeader(path)
        XCTAssertEqual(h.metadata["k"], "v")
        XCTAssertEqual(h.tensors.map(\.1), [[2, 3], [], [0, 4]])
        XCTAssertEqual(files(), ["t.safetensors"], "no temporary file is left behind")
    }

    /// A file in the exact layout the safetensors library writes (hand-assembled bytes).
    func testReadsReferenceLayout() throws {
        let header = #"{"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#
        var bytes = [UInt8](repeating: 0, count: 8)
        let hb = Array(header.utf8)
        for k in 0..<8 { bytes[k] = UInt8((hb.count >> (8 * k)) & 0xFF) }
        bytes += hb
        for v: Float in [1.5, -2, 7] { withUnsafeBytes(of: v.bitPattern.littleEndian) { bytes += $0 } }
        let f = try SafetensorsFile.parse(bytes)
        XCTAssertEqual(f.tensors.map(\.0), ["a", "b"], "file order = data order")
        XCTAssertEqual(f.tensorsByName["a"]?.scalars, [1.5, -2])
        XCTAssertEqual(f.tensorsByName["b"]?.scalars, [7])
        XCTAssertEqual(f.metadata, [:])
    }

    func testCorruptAndTruncatedFilesRaiseClearErrors() throws {
        let path = dir + "/ok.safetensors"
        try SafetensorsFile(tensors: [("w", try Tensor([1, 2, 3, 4], shape: [4]))], metadata: ["m": "1"]).write(to: path)
        let good = try FileBytes.read(path)
        func check(_ bytes: [UInt8], _ expect: String, line: UInt = #line) {
            let m = ioMessage { _ = try SafetensorsFile.parse(bytes, name: "f") }
            XCTAssertNotNil(m, "accepted corrupt data", line: line)
            XCTAssertTrue(m?.contains(expect) ?? false, "message '\(m ?? "")' lacks '\(expect)'", line: line)
        }
        check([], "truncated")
        check(Array(good[0..<5]), "truncated")
        check(Array(good[0..<20]), "truncated")
        check(Array(good.dropLast(3)), "outside")
        check(good + [0, 0, 0, 0], "cover")
        var huge = good
        huge[7] = 0x7F
        check(huge, "out of range")
        var notJSON = good
        notJSON[8] = UInt8(ascii: "x")
        check(notJSON, "does not start with '{'")
        let n = Int(good[0]) | Int(good[1]) << 8
        var header = String(decoding: good[8..<(8 + n)], as: UTF8.self)
        header = header.replacingFirst("F32", "F16")
        check(Array(good[0..<8]) + Array(header.utf8) + Array(good[(8 + n)...]), "dtype F16")
        var broken = good
        broken[8 + 1] = UInt8(ascii: "}")
        check(broken, "corrupt safetensors header")
        // Whole-file reads name the file.
        writeBytes(dir + "/cut.safetensors", Array(good[0..<20]))
        XCTAssertTrue(ioMessage { _ = try SafetensorsFile.read(self.dir + "/cut.safetensors") }?.contains("cut.safetensors") ?? false)
        XCTAssertNotNil(ioMessage { _ = try SafetensorsFile.read(self.dir + "/missing.safetensors") })
        XCTAssertNotNil(ioMessage { _ = try SafetensorsFile.readHeader(self.dir + "/cut.safetensors") })
    }

    func testOverlappingOffsetsRejected() throws {
        let header = #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#
        var bytes = [UInt8](repeating: 0, count: 8)
        let hb = Array(header.utf8)
        bytes[0] = UInt8(hb.count)
        bytes += hb + [UInt8](repeating: 0, count: 12)
        XCTAssertTrue(ioMessage { _ = try SafetensorsFile.parse(bytes) }?.contains("non-contiguous") ?? false)
    }

    // MARK: atomic writes

    func testFailedWriteKeepsPreviousFile() throws {
        let path = dir + "/model.safetensors"
        try SafetensorsFile(tensors: [("w", try Tensor([1, 2], shape: [2]))]).write(to: path)
        let before = try FileBytes.read(path)
        struct Boom: Error {}
        XCTAssertThrowsError(try AtomicFile.write(path) { w in
            try w.write([UInt8](repeating: 7, count: 1000))
            throw Boom()
        })
        XCTAssertEqual(try FileBytes.read(path), before, "the previous file survives a failed save")
        XCTAssertEqual(files(), ["model.safetensors"], "the temporary file is removed")
        // Saving into a missing directory fails cleanly.
        XCTAssertNotNil(ioMessage { try SafetensorsFile(tensors: []).write(to: self.dir + "/nope/x.safetensors") })
        XCTAssertNotNil(ioMessage { try SafetensorsFile(tensors: []).write(to: self.dir) })
        // A successful save replaces the file.
        try SafetensorsFile(tensors: [("w", try Tensor([3], shape: [1]))]).write(to: path)
        XCTAssertEqual(try SafetensorsFile.read(path).tensorsByName["w"]?.scalars, [3])
    }

    // MARK: models

    func testLoadStateDictIsAllOrNothing() throws {
        let m = try ModelZoo.make("resnet20", numClasses: 3, inChannels: 1, seed: 1)
        let before = m.stateDict().map { $0.1.scalars }
        var state: [String: Tensor] = [:]
        for (k, v) in m.stateDict() { state[k] = try Tensor(repeating: 0.25, shape: v.shape) }
        // The last entry (in state-dict order) has a wrong shape: nothing may change.
        let lastName = m.stateDict().last!.0
        state[lastName] = try Tensor(zeros: [7])
        XCTAssertThrowsError(try m.loadStateDict(state))
        XCTAssertTrue(m.stateDict().map { $0.1.scalars } == before)
        state[lastName] = nil
        XCTAssertThrowsError(try m.loadStateDict(state))  // missing entry, strict
        XCTAssertTrue(m.stateDict().map { $0.1.scalars } == before)
        state["bogus"] = try Tensor(zeros: [1])
        XCTAssertThrowsError(try m.loadStateDict(state))  // unexpected entry, strict
        XCTAssertTrue(m.stateDict().map { $0.1.scalars } == before)
        try m.loadStateDict(state, strict: false)
        XCTAssertNotEqual(m.stateDict().map { $0.1.scalars }, before, "non-strict load without the bad entry applies")
    }

    func testModelSaveLoadRoundTrip() throws {
        let m = try ModelZoo.make("resnet20", numClasses: 5, inChannels: 3, seed: 4)
        // Non-trivial BN statistics.
        for (_, b) in m.namedBuffers() { for i in 0..<b.count { b.data[i] += Float(i % 7) * 0.125 } }
        let path = dir + "/m.safetensors"
        try Checkpoint.save(m, to: path)
        let meta = try Checkpoint.metadata(of: path)
        XCTAssertEqual(meta["architecture"], "resnet20")
        XCTAssertEqual(meta["num_classes"], "5")
        XCTAssertEqual(meta["in_channels"], "3")
        XCTAssertEqual(meta["format"], Checkpoint.modelFormat)
        let loaded = try Checkpoint.loadModel(from: path)
        XCTAssertEqual(loaded.stateDict().map(\.0), m.stateDict().map(\.0))
        for ((_, a), (_, b)) in zip(loaded.stateDict(), m.stateDict()) { XCTAssertTrue(a.scalars == b.scalars) }
        let other = try ModelZoo.make("resnet20", numClasses: 5, inChannels: 3, seed: 9)
        try Checkpoint.load(into: other, from: path)
        for ((_, a), (_, b)) in zip(other.stateDict(), m.stateDict()) { XCTAssertTrue(a.scalars == b.scalars) }
        // Another architecture or class count is refused and left unchanged.
        let wrong = try ModelZoo.make("resnet20", numClasses: 4, inChannels: 3, seed: 9)
        let before = wrong.stateDict().map { $0.1.scalars }
        XCTAssertThrowsError(try Checkpoint.load(into: wrong, from: path)) { e in
            XCTAssertTrue("\(e)".contains("num_classes"), "\(e)")
        }
        XCTAssertTrue(wrong.stateDict().map { $0.1.scalars } == before)
    }

    // MARK: trainers

    private func toyData(count: Int, seed: UInt64) throws -> (Tensor, [Int]) {
        var rng = SplitMix64(seed: seed)
        let x = try Tensor(zeros: [count, 1, 16, 16])
        var y: [Int] = []
        for i in 0..<count {
            let c = i % 3
            y.append(c)
            for p in 0..<256 { x.data[i * 256 + p] = Float(rng.normal()) * 0.3 + (p % 3 == c ? 1 : 0) }
        }
        return (x, y)
    }

    private func makeTrainer(_ mix: String, modelSeed: UInt64, optimizer: String = "sgd", lr: Float = 0.05) throws -> Trainer {
        let net = try ModelZoo.make("resnet20", numClasses: 3, inChannels: 1, seed: modelSeed)
        let obj = try ObjectiveRegistry.make(mix)
        let params = try Trainer.parameters(model: net, objective: obj)
        let opt: Optimizer = optimizer == "sgd"
            ? try SGD(params, lr: lr, momentum: 0.9, weightDecay: 5e-4, nesterov: true)
            : try AdamW(params, lr: 1e-3)
        return Trainer(model: net, objective: obj, optimizer: opt,
                       schedule: try LearningRateSchedule(.cosine(minLR: 0), baseLR: lr, warmupSteps: 2), seed: 11)
    }

    private func fullState(_ t: Trainer) throws -> [[Float]] {
        var out = t.model.stateDict().map { $0.1.scalars }
        out += try t.optimizer.stateDict().map { $0.1.scalars }
        for (_, m) in Checkpoint.objectiveModules(t.objective) { out += m.stateDict().map { $0.1.scalars } }
        return out
    }

    /// Two epochs straight == one epoch, save, load into a fresh trainer, one more epoch: identical
    /// weights, optimizer state, momentum networks and Mixer, bit for bit.
    func testResumeIsBitIdentical() throws {
        let (x, y) = try toyData(count: 12, seed: 3)
        for (mix, opt) in [("mixup", "sgd"), ("cutmix", "adamw"), ("automix", "sgd")] {
            let src = { try ArrayBatchSource(images: x, labels: y, batchSize: 4, seed: 5, augmentation: .cifar) }
            let straight = try makeTrainer(mix, modelSeed: 1, optimizer: opt)
            try straight.fit(try src(), epochs: 2)

            let first = try makeTrainer(mix, modelSeed: 1, optimizer: opt)
            _ = try first.trainEpoch(try src(), totalEpochs: 2)
            let path = dir + "/\(mix).safetensors"
            try Checkpoint.save(first, to: path, metadata: ["note": "hi"], extraTensors: [("norm", try Tensor([0.5], shape: [1]))])
            let resumed = try makeTrainer(mix, modelSeed: 99, optimizer: opt)  // different initial weights
            XCTAssertTrue(try fullState(resumed) != fullState(first))
            let extras = try Checkpoint.load(into: resumed, from: path)
            XCTAssertEqual(extras.metadata["note"], "hi")
            XCTAssertEqual(extras.tensors["norm"]?.scalars, [0.5])
            XCTAssertEqual(resumed.epochsDone, 1)
            XCTAssertEqual(resumed.stepsDone, 3)
            XCTAssertEqual(resumed.optimizer.learningRate.bitPattern, first.optimizer.learningRate.bitPattern)
            XCTAssertTrue(try fullState(resumed) == fullState(first), "\(mix): loaded state equals saved state")
            _ = try resumed.trainEpoch(try src(), totalEpochs: 2)
            XCTAssertEqual(resumed.stepsDone, straight.stepsDone)
            let a = try fullState(resumed), b = try fullState(straight)
            XCTAssertEqual(a.count, b.count)
            XCTAssertTrue(zip(a, b).allSatisfy { $0.map(\.bitPattern) == $1.map(\.bitPattern) }, "\(mix): resumed run differs")
            if mix == "automix" {
                let names = try SafetensorsFile.readHeader(path).tensors.map(\.0)
                XCTAssertTrue(names.contains { $0.hasPrefix("objective.mixer.") })
                XCTAssertTrue(names.contains { $0.hasPrefix("evaluation.momentum.") })
                XCTAssertTrue(names.contains { $0.hasPrefix("state.momentum_mix_head.") })
            }
        }
    }

    /// Resuming refuses a changed run: another learning rate or front-end setting at load, another
    /// batch size, data size or epoch count at the first epoch after it — unless explicitly allowed.
    func testResumeRefusesChangedRunSettings() throws {
        let (x, y) = try toyData(count: 12, seed: 3)
        let src = { (batch: Int, n: Int) in
            try ArrayBatchSource(images: try Tensor(borrowing: x.data, shape: [n, 1, 16, 16]), labels: Array(y[0..<n]), batchSize: batch, seed: 5)
        }
        let t = try makeTrainer("mixup", modelSeed: 1)
        t.runSettings = ["cli.dataset": "toy"]
        _ = try t.trainEpoch(try src(4, 12), totalEpochs: 3)
        let path = dir + "/run.safetensors"
        try Checkpoint.save(t, to: path)
        let meta = try SafetensorsFile.readHeader(path).metadata
        XCTAssertEqual(meta["run.lr"], "0.05")
        XCTAssertEqual(meta["run.cli.dataset"], "toy")
        XCTAssertEqual(meta["fit.batches_per_epoch"], "3")

        func message(_ body: () throws -> Void) -> String {
            do { try body(); return "accepted" } catch { return "\(error)" }
        }
        // Engine setting (learning rate) changed.
        let otherLR = try makeTrainer("mixup", modelSeed: 1, lr: 0.1)
        otherLR.runSettings = ["cli.dataset": "toy"]
        let before = try fullState(otherLR)
        XCTAssertTrue(message { try Checkpoint.load(into: otherLR, from: path) }.contains("lr = 0.05, this run has lr = 0.1"))
        XCTAssertTrue(try fullState(otherLR) == before, "a refused load changes nothing")
        try Checkpoint.load(into: otherLR, from: path, allowChangedSettings: true)
        XCTAssertEqual(otherLR.epochsDone, 1)
        _ = try otherLR.trainEpoch(try src(6, 12), totalEpochs: 3)  // allowed: nothing pending
        // Front-end setting changed.
        let otherData = try makeTrainer("mixup", modelSeed: 1)
        otherData.runSettings = ["cli.dataset": "other"]
        XCTAssertTrue(message { try Checkpoint.load(into: otherData, from: path) }.contains("cli.dataset = toy"))
        // Same settings: loads; the first epoch must use the same batch size, data and epochs.
        for (batch, n, epochs, key) in [(6, 12, 3, "batches_per_epoch"), (4, 8, 3, "batches_per_epoch"), (4, 12, 4, "epochs")] {
            let same = try makeTrainer("mixup", modelSeed: 1)
            same.runSettings = ["cli.dataset": "toy"]
            try Checkpoint.load(into: same, from: path)
            let m = message { _ = try same.trainEpoch(try src(batch, n), totalEpochs: epochs) }
            XCTAssertTrue(m.contains("with \(key) = "), m)
            XCTAssertEqual(same.stepsDone, 3, "a refused epoch trains nothing")
        }
        let same = try makeTrainer("mixup", modelSeed: 1)
        same.runSettings = ["cli.dataset": "toy"]
        try Checkpoint.load(into: same, from: path)
        _ = try same.trainEpoch(try src(4, 12), totalEpochs: 3)
        XCTAssertEqual(same.epochsDone, 2)
        // A file without stored run settings (older format) is refused unless allowed.
        var legacy = try SafetensorsFile.read(path)
        legacy.metadata = legacy.metadata.filter { !$0.key.hasPrefix("run.") && !$0.key.hasPrefix("fit.") }
        try legacy.write(to: dir + "/legacy.safetensors")
        let l = try makeTrainer("mixup", modelSeed: 1)
        XCTAssertTrue(message { try Checkpoint.load(into: l, from: dir + "/legacy.safetensors") }.contains("predates stored run settings"))
        try Checkpoint.load(into: l, from: dir + "/legacy.safetensors", allowChangedSettings: true)
    }

    func testTrainerLoadRejectsMismatchAndLeavesTrainerUnchanged() throws {
        let (x, y) = try toyData(count: 8, seed: 3)
        let t = try makeTrainer("mixup", modelSeed: 1)
        _ = try t.trainEpoch(try ArrayBatchSource(images: x, labels: y, batchSize: 4, seed: 5), totalEpochs: 2)
        let path = dir + "/t.safetensors"
        try Checkpoint.save(t, to: path)

        let other = try makeTrainer("cutmix", modelSeed: 2)
        let before = try fullState(other)
        XCTAssertThrowsError(try Checkpoint.load(into: other, from: path)) { e in XCTAssertTrue("\(e)".contains("objective"), "\(e)") }
        XCTAssertTrue(try fullState(other) == before)

        // Same configuration, but one optimizer tensor is corrupted in shape: all-or-nothing.
        var file = try SafetensorsFile.read(path)
        let k = try XCTUnwrap(file.tensors.lastIndex { $0.0.hasPrefix("optimizer.") })
        file.tensors[k].1 = try Tensor(zeros: [5])
        try file.write(to: dir + "/bad.safetensors")
        let fresh = try makeTrainer("mixup", modelSeed: 2)
        let freshBefore = try fullState(fresh)
        XCTAssertThrowsError(try Checkpoint.load(into: fresh, from: dir + "/bad.safetensors"))
        XCTAssertTrue(try fullState(fresh) == freshBefore, "a failed load changes nothing")
        XCTAssertEqual(fresh.epochsDone, 0)
        // A model file is not a trainer checkpoint; a trainer checkpoint can seed a model.
        try Checkpoint.save(t.model, to: dir + "/model.safetensors")
        XCTAssertThrowsError(try Checkpoint.load(into: fresh, from: dir + "/model.safetensors"))
        let m = try Checkpoint.loadModel(from: path)
        XCTAssertTrue(m.stateDict().map { $0.1.scalars } == t.model.stateDict().map { $0.1.scalars })
    }
}

private extension String {
    func replacingFirst(_ a: String, _ b: String) -> String {
        guard let r = range(of: a) else { return self }
        return replacingCharacters(in: r, with: b)
    }
}
