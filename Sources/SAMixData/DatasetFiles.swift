import Glibc
import SAMixCore
import SAMixOps
import SAMixNN

/// Small file-system helpers for locating dataset files.
enum DatasetFiles {
    static func join(_ a: String, _ b: String) -> String {
        if a.isEmpty { return b }
        return a.hasSuffix("/") ? a + b : a + "/" + b
    }

    static func isFile(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG
    }

    static func isDirectory(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }

    /// The first of `names` that exists as a regular file in `dir`, as a full path.
    static func firstExisting(in dir: String, names: [String]) -> String? {
        for n in names {
            let p = join(dir, n)
            if isFile(p) { return p }
        }
        return nil
    }

    /// Non-empty, whitespace-trimmed lines of a small text file (nil if unreadable).
    static func lines(_ path: String) -> [String]? {
        guard let bytes = try? FileBytes.read(path), bytes.count <= 1 << 20 else { return nil }
        let text = String(decoding: bytes, as: UTF8.self)
        return text.split(whereSeparator: { $0 == "\n" || $0 == "\r" })
            .map { trimmed($0) }
            .filter { !$0.isEmpty }
    }
}

/// `s` without leading and trailing spaces and tabs.
private func trimmed(_ s: Substring) -> String {
    var t = s
    while let f = t.first, f == " " || f == "\t" { t = t.dropFirst() }
    while let l = t.last, l == " " || l == "\t" { t = t.dropLast() }
    return String(t)
}
