import Glibc

/// A fresh directory for one test (made and removed by `DataFixtures`), with a listing of its entries.
struct TemporaryDirectory {
    let path: String

    init(prefix: String) throws { path = try DataFixtures.tempDir(prefix) }

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

    func remove() { DataFixtures.remove(path) }
}
