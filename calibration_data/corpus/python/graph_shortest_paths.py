"""Weighted graph utilities: Dijkstra, Bellman-Ford, topological sort."""
import heapq
from collections import defaultdict, deque
from typing import Dict, Hashable, Iterable, List, Optional, Tuple

Node = Hashable
INF = float("inf")


class Graph:
    def __init__(self, directed: bool = True):
        self.directed = directed
        self.adj: Dict[Node, List[Tuple[Node, float]]] = defaultdict(list)
        self._nodes = set()

    def add_edge(self, u: Node, v: Node, weight: float = 1.0) -> None:
        self.adj[u].append((v, weight))
        self._nodes.update((u, v))
        if not self.directed:
            self.adj[v].append((u, weight))

    @classmethod
    def from_edges(cls, edges: Iterable[Tuple[Node, Node, float]], directed=True):
        g = cls(directed=directed)
        for u, v, w in edges:
            g.add_edge(u, v, w)
        return g

    @property
    def nodes(self):
        return set(self._nodes)

    def edges(self):
        for u, neighbours in self.adj.items():
            for v, w in neighbours:
                yield u, v, w


def dijkstra(graph: Graph, source: Node) -> Tuple[Dict[Node, float], Dict[Node, Node]]:
    dist: Dict[Node, float] = {n: INF for n in graph.nodes}
    prev: Dict[Node, Node] = {}
    dist[source] = 0.0
    heap = [(0.0, 0, source)]
    counter = 1  # tie breaker so nodes never get compared directly
    visited = set()
    while heap:
        d, _, u = heapq.heappop(heap)
        if u in visited:
            continue
        visited.add(u)
        for v, w in graph.adj.get(u, ()):
            if w < 0:
                raise ValueError("dijkstra does not support negative weights")
            nd = d + w
            if nd < dist[v]:
                dist[v] = nd
                prev[v] = u
                heapq.heappush(heap, (nd, counter, v))
                counter += 1
    return dist, prev


def bellman_ford(graph: Graph, source: Node) -> Dict[Node, float]:
    dist = {n: INF for n in graph.nodes}
    dist[source] = 0.0
    edges = list(graph.edges())
    for _ in range(len(dist) - 1):
        changed = False
        for u, v, w in edges:
            if dist[u] + w < dist[v]:
                dist[v] = dist[u] + w
                changed = True
        if not changed:
            break
    for u, v, w in edges:
        if dist[u] + w < dist[v]:
            raise ValueError("graph contains a negative cycle")
    return dist


def reconstruct_path(prev: Dict[Node, Node], source: Node, target: Node) -> Optional[List[Node]]:
    if source == target:
        return [source]
    if target not in prev:
        return None
    path = [target]
    while path[-1] != source:
        path.append(prev[path[-1]])
    path.reverse()
    return path


def topological_order(graph: Graph) -> List[Node]:
    """Kahn's algorithm. Raises ValueError if the graph has a cycle."""
    indegree = {n: 0 for n in graph.nodes}
    for _, v, _ in graph.edges():
        indegree[v] += 1
    queue = deque(sorted((n for n, d in indegree.items() if d == 0), key=str))
    order = []
    while queue:
        u = queue.popleft()
        order.append(u)
        for v, _ in graph.adj.get(u, ()):
            indegree[v] -= 1
            if indegree[v] == 0:
                queue.append(v)
    if len(order) != len(indegree):
        raise ValueError("graph has at least one cycle")
    return order


def connected_components(graph: Graph) -> List[set]:
    seen = set()
    undirected = defaultdict(set)
    for u, v, _ in graph.edges():
        undirected[u].add(v)
        undirected[v].add(u)
    components = []
    for start in graph.nodes:
        if start in seen:
            continue
        comp = set()
        stack = [start]
        while stack:
            n = stack.pop()
            if n in comp:
                continue
            comp.add(n)
            stack.extend(undirected[n] - comp)
        seen |= comp
        components.append(comp)
    return components


if __name__ == "__main__":
    roads = Graph.from_edges(
        [
            ("A", "B", 4), ("A", "C", 2), ("C", "B", 1),
            ("B", "D", 5), ("C", "D", 8), ("D", "E", 3),
        ],
        directed=False,
    )
    dist, prev = dijkstra(roads, "A")
    for node in sorted(dist):
        print(node, dist[node], reconstruct_path(prev, "A", node))

    tasks = Graph.from_edges([("fetch", "build", 1), ("build", "test", 1),
                              ("build", "docs", 1), ("test", "release", 1)])
    print(" -> ".join(topological_order(tasks)))
