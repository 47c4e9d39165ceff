import SAMixCore
import SAMixOps
import SAMixNN
import SAMixData

/// Maximum flow / minimum s-t cut on a small directed graph with integer capacities (Dinic's
/// algorithm: BFS level graph + blocking flow by DFS with current-arc pointers, O(V²E)).
///
/// Used by PuzzleMix's α-β-swap moves, whose graphs have at most one node per mask block (≤ 256 on a
/// 16×16 grid) plus source and sink, so the simple, exact integer algorithm is plenty. Capacities are
/// `Int64`; callers keep sums far from overflow (PuzzleMix bounds every cost by 10¹²).
struct FlowNetwork {
    let nodeCount: Int
    private var head: [Int]
    private var to: [Int] = []
    private var next: [Int] = []
    private var cap: [Int64] = []

    init(nodes: Int) {
        nodeCount = max(nodes, 0)
        head = [Int](repeating: -1, count: nodeCount)
    }

    /// Adds the arc u→v with capacity `c` and the arc v→u with capacity `reverse` (both ≥ 0; negative
    /// values are treated as 0). Out-of-range nodes are ignored (callers build graphs from valid indices).
    mutating func addEdge(_ u: Int, _ v: Int, _ c: Int64, reverse: Int64 = 0) {
        guard u >= 0, u < nodeCount, v >= 0, v < nodeCount, u != v else { return }
        to.append(v); cap.append(max(c, 0)); next.append(head[u]); head[u] = to.count - 1
        to.append(u); cap.append(max(reverse, 0)); next.append(head[v]); head[v] = to.count - 1
    }

    /// Pushes the maximum flow from `s` to `t` (mutating the residual capacities) and returns its value.
    mutating func maxFlow(source s: Int, sink t: Int) -> Int64 {
        guard s >= 0, s < nodeCount, t >= 0, t < nodeCount, s != t else { return 0 }
        var total: Int64 = 0
        var level = [Int](repeating: -1, count: nodeCount)
        var it = [Int](repeating: -1, count: nodeCount)
        var queue = [Int](repeating: 0, count: nodeCount)
        while true {
            // BFS levels in the residual graph.
            for i in 0..<nodeCount { level[i] = -1 }
            level[s] = 0
            var qh = 0, qt = 0
            queue[qt] = s; qt += 1
            while qh < qt {
                let u = queue[qh]; qh += 1
                var e = head[u]
                while e >= 0 {
                    let v = to[e]
                    if cap[e] > 0 && level[v] < 0 { level[v] = level[u] + 1; queue[qt] = v; qt += 1 }
                    e = next[e]
                }
            }
            if level[t] < 0 { return total }
            for i in 0..<nodeCount { it[i] = head[i] }
            // Blocking flow: iterative DFS along level-increasing arcs.
            while true {
                let f = augment(s, t, &level, &it)
                if f == 0 { break }
                total += f
            }
        }
    }

    /// One augmenting path in the level graph (iterative DFS with current-arc pointers); returns its
    /// bottleneck (0 when none is left).
    private mutating func augment(_ s: Int, _ t: Int, _ level: inout [Int], _ it: inout [Int]) -> Int64 {
        var pathEdges: [Int] = []
        var u = s
        while true {
            if u == t {
                var f = Int64.max
                for e in pathEdges { f = min(f, cap[e]) }
                for e in pathEdges { cap[e] -= f; cap[e ^ 1] += f }
                return f
            }
            var advanced = false
            while it[u] >= 0 {
                let e = it[u], v = to[e]
                if cap[e] > 0 && level[v] == level[u] + 1 {
                    pathEdges.append(e)
                    u = v
                    advanced = true
                    break
                }
                it[u] = next[e]
            }
            if advanced { continue }
            // Dead end: remove u from the level graph and retreat.
            level[u] = -1
            guard let e = pathEdges.popLast() else { return 0 }
            u = to[e ^ 1]
            it[u] = next[it[u]]
        }
    }

    /// After `maxFlow`: whether each node is reachable from `s` in the residual graph (the source side
    /// of a minimum cut).
    func sourceSide(source s: Int) -> [Bool] {
        var seen = [Bool](repeating: false, count: nodeCount)
        guard s >= 0, s < nodeCount else { return seen }
        var stack = [s]
        seen[s] = true
        while let u = stack.popLast() {
            var e = head[u]
            while e >= 0 {
                let v = to[e]
                if cap[e] > 0 && !seen[v] { seen[v] = true; stack.append(v) }
                e = next[e]
            }
        }
        return seen
    }
}
