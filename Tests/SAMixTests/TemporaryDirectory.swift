import Glibc
import XCTest

/// A fresh directory under /tmp for one test, removed (with its plain files) by `remove()`.
struct TemporaryDirectory {
    let path: String

    init(prefix: String) throws {
        var template = Array("/tmp/\(prefix)-XXXXXX".utf8CString)
        let p = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        path = String(cString: try XCTUnwrap(p))
    }

    /// Names of the entries, sorted (without "." and "..").
    func files() -> [String] {
        var out: [String] = []
        if let d = opendir(path) {
            while let e = readdir(d) {
                let name = withUnsafeBytes(of: e.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
                if name != "." && name != ".." { out.append(name) }
            }
            closedir(d)
        }
        return out.sorted()
    }

    func remove() {
        for name in files() { unlink(path + "/" + name) }
        rmdir(path)
    }
}
