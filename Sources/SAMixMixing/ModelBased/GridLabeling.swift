import SAMixCore
import SAMixOps
import SAMixNN
import SAMixData

/// A multi-label energy on a 4-connected rows×cols grid with integer costs, as PuzzleMix builds it:
///
///     E(l) = Σ_p D_p(l_p) + Σ_{(p,q) vertical} wV_pq·V(l_p, l_q) + Σ_{(p,q) horizontal} wH_pq·V(l_p, l_q)
///
/// with labels 0..<labels, `V(i, j) = (i − j)²` (PuzzleMix's label-smoothness cost
/// `(i − j)²/(n − 1)²`, with the common factor (n − 1)² moved into the unary and edge scaling by the
/// caller) and non-negative edge weights. `V` is a semi-metric but not a metric for n ≥ 3, so
/// α-expansion does not apply and PuzzleMix (gco, `algorithm='swap'`) uses α-β-swap moves.
struct GridEnergy {
    let rows: Int
    let cols: Int
    let labels: Int
    /// D_p(l) at `unary[p·labels + l]`, p = r·cols + c.
    let unary: [Int64]
    /// Weight of the edge (r, c)–(r + 1, c) at `vertical[r·cols + c]`, r < rows − 1.
    let vertical: [Int64]
    /// Weight of the edge (r, c)–(r, c + 1) at `horizontal[r·(cols − 1) + c]`, c < cols − 1.
    let horizontal: [Int64]

    init(rows: Int, cols: Int, labels: Int, unary: [Int64], vertical: [Int64], horizontal: [Int64]) throws {
        try require(rows >= 1 && cols >= 1 && labels >= 2, "grid energy needs a non-empty grid and ≥ 2 labels")
        try requireShape(unary.count == rows * cols * labels, "grid energy: \(unary.count) unary costs for \(rows)×\(cols)×\(labels)")
        try requireShape(vertical.count == (rows - 1) * cols, "grid energy: \(vertical.count) vertical weights for \(rows)×\(cols)")
        try requireShape(horizontal.count == rows * (cols - 1), "grid energy: \(horizontal.count) horizontal weights for \(rows)×\(cols)")
        try require(vertical.allSatisfy { $0 >= 0 } && horizontal.allSatisfy { $0 >= 0 }, "grid energy: edge weights must be ≥ 0")
        self.rows = rows; self.cols = cols; self.labels = labels
        self.unary = unary; self.vertical = vertical; self.horizontal = horizontal
    }

    var nodes: Int { rows * cols }

    @inline(__always) static func distance(_ a: Int, _ b: Int) -> Int64 { Int64((a - b) * (a - b)) }

    /// Neighbours of node p with the weight of the connecting edge.
    func neighbours(_ p: Int) -> [(Int, Int64)] {
        let r = p / cols, c = p % cols
        var out: [(Int, Int64)] = []
        out.reserveCapacity(4)
        if r > 0 { out.append((p - cols, vertical[(r - 1) * cols + c])) }
        if r < rows - 1 { out.append((p + cols, vertical[r * cols + c])) }
        if c > 0 { out.append((p - 1, horizontal[r * (cols - 1) + c - 1])) }
        if c < cols - 1 { out.append((p + 1, horizontal[r * (cols - 1) + c])) }
        return out
    }

    /// E(l) of a full labelling.
    func energy(_ l: [Int]) -> Int64 {
        var e: Int64 = 0
        for p in 0..<nodes { e += unary[p * labels + l[p]] }
        for r in 0..<rows {
            for c in 0..<cols {
                let p = r * cols + c
                if r < rows - 1 { e += vertical[r * cols + c] * GridEnergy.distance(l[p], l[p + cols]) }
                if c < cols - 1 { e += horizontal[r * (cols - 1) + c] * GridEnergy.distance(l[p], l[p + 1]) }
            }
        }
        return e
    }

    /// The optimal α-β-swap move from `l`: among all labellings that differ from `l` only by nodes
    /// labelled α or β switching between α and β, the one of least energy (an exact minimum cut).
    /// Returns the new labelling (equal to `l` when no swap lowers the energy).
    func bestSwap(_ l: [Int], _ a: Int, _ b: Int) -> [Int] {
        let members = (0..<nodes).filter { l[$0] == a || l[$0] == b }
        if members.isEmpty { return l }
        var index = [Int](repeating: -1, count: nodes)
        for (k, p) in members.enumerated() { index[p] = k }
        let s = members.count, t = members.count + 1
        var g = FlowNetwork(nodes: members.count + 2)
        let dab = GridEnergy.distance(a, b)
        // Source side = label a, sink side = label b. Cutting s→p costs E_p(b), p→t costs E_p(a).
        for (k, p) in members.enumerated() {
            var ea = unary[p * labels + a], eb = unary[p * labels + b]
            for (q, w) in neighbours(p) where index[q] < 0 {
                ea += w * GridEnergy.distance(a, l[q])
                eb += w * GridEnergy.distance(b, l[q])
            }
            let m = min(ea, eb)
            g.addEdge(s, k, eb - m)
            g.addEdge(k, t, ea - m)
            for (q, w) in neighbours(p) where index[q] > k {
                g.addEdge(k, index[q], w * dab, reverse: w * dab)
            }
        }
        _ = g.maxFlow(source: s, sink: t)
        let side = g.sourceSide(source: s)
        var out = l
        for (k, p) in members.enumerated() { out[p] = side[k] ? a : b }
        return out
    }

    /// α-β-swap (Boykov, Veksler & Zabih 2001) as gco runs it with `n_iter = -1`: start from `initial`
    /// (all 0 by default, gco's initial labelling), cycle over every label pair (α < β) applying the
    /// optimal swap move when it lowers the energy, until a whole cycle makes no progress. The result is
    /// a local minimum with respect to all swap moves (not necessarily the global minimum).
    func alphaBetaSwap(initial: [Int]? = nil, maxCycles: Int = 100) -> [Int] {
        var l = initial ?? [Int](repeating: 0, count: nodes)
        if l.count != nodes || l.contains(where: { $0 < 0 || $0 >= labels }) { l = [Int](repeating: 0, count: nodes) }
        var e = energy(l)
        for _ in 0..<max(maxCycles, 1) {
            var improved = false
            for a in 0..<labels {
                for b in (a + 1)..<labels {
                    let cand = bestSwap(l, a, b)
                    let ec = energy(cand)
                    if ec < e { l = cand; e = ec; improved = true }
                }
            }
            if !improved { break }
        }
        return l
    }

    /// The global minimum by one minimum cut (Ishikawa 2003, "Exact optimization for Markov random
    /// fields with convex priors"): V(i, j) = (i − j)² is a convex function of i − j, so the labelling
    /// problem is exactly representable. Each node p gets a chain s → v_{p,1} → … → v_{p,n−1} → t whose
    /// k-th arc costs D_p(k) (reverse arcs infinite, so exactly one arc per chain is cut and l_p = number
    /// of chain nodes on the source side); each grid edge gets arcs v_{p,i} → v_{q,j} (and q → p) for
    /// i ≥ j with capacity w·c(i − j), c(0) = 1, c(m ≥ 1) = 2, whose cut total is w·(l_p − l_q)².
    func exactMinimum() -> [Int] {
        let k = labels - 1, s = nodes * k, t = s + 1
        @inline(__always) func v(_ p: Int, _ i: Int) -> Int { p * k + i - 1 }      // i in 1...k
        var finite: Int64 = 1
        var shift = [Int64](repeating: 0, count: nodes)
        for p in 0..<nodes {
            var m = Int64.max
            for l in 0..<labels { m = min(m, unary[p * labels + l]) }
            shift[p] = m
            for l in 0..<labels { finite += unary[p * labels + l] - m }
        }
        for w in vertical { finite += w * Int64(2 * labels * labels) }
        for w in horizontal { finite += w * Int64(2 * labels * labels) }
        let inf = finite
        var g = FlowNetwork(nodes: nodes * k + 2)
        for p in 0..<nodes {
            for l in 0...k {
                let u = l == 0 ? s : v(p, l), w = l == k ? t : v(p, l + 1)
                g.addEdge(u, w, unary[p * labels + l] - shift[p], reverse: inf)
            }
        }
        func link(_ p: Int, _ q: Int, _ w: Int64) {
            if w == 0 { return }
            for i in 1...k {
                for j in 1...i {
                    let c = w * (i == j ? 1 : 2)
                    g.addEdge(v(p, i), v(q, j), c)
                    g.addEdge(v(q, i), v(p, j), c)
                }
            }
        }
        for r in 0..<rows {
            for c in 0..<cols {
                let p = r * cols + c
                if r < rows - 1 { link(p, p + cols, vertical[r * cols + c]) }
                if c < cols - 1 { link(p, p + 1, horizontal[r * (cols - 1) + c]) }
            }
        }
        _ = g.maxFlow(source: s, sink: t)
        let side = g.sourceSide(source: s)
        return (0..<nodes).map { p in (1...k).reduce(0) { $0 + (side[v(p, $1)] ? 1 : 0) } }
    }

    /// Global minimum by enumeration (labels^nodes labellings; for tests on tiny grids). Ties go to the
    /// first labelling in lexicographic order (node 0 most significant). Throws when the enumeration
    /// would exceed `limit` labellings.
    func bruteForce(limit: Int = 1 << 22) throws -> (labels: [Int], energy: Int64) {
        var total = 1
        for _ in 0..<nodes {
            total *= labels
            try require(total <= limit, "brute force over \(labels)^\(nodes) labellings exceeds \(limit)")
        }
        var l = [Int](repeating: 0, count: nodes)
        var best = l, bestE = energy(l)
        for _ in 1..<total {
            var p = nodes - 1
            while p >= 0 {
                l[p] += 1
                if l[p] < labels { break }
                l[p] = 0; p -= 1
            }
            let e = energy(l)
            if e < bestE { bestE = e; best = l }
        }
        return (best, bestE)
    }
}
