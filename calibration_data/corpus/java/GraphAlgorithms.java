import java.util.*;

/** Shortest paths and topological ordering on a small weighted digraph. */
public class GraphAlgorithms {

    record Edge(String to, int weight) { }

    private final Map<String, List<Edge>> adj = new LinkedHashMap<>();

    public GraphAlgorithms addEdge(String from, String to, int weight) {
        if (weight < 0) throw new IllegalArgumentException("negative weight");
        adj.computeIfAbsent(from, k -> new ArrayList<>()).add(new Edge(to, weight));
        adj.computeIfAbsent(to, k -> new ArrayList<>());
        return this;
    }

    /** Dijkstra with a lazy-deletion priority queue. */
    public Map<String, Integer> shortestDistances(String source) {
        Map<String, Integer> dist = new HashMap<>();
        PriorityQueue<Map.Entry<String, Integer>> pq =
                new PriorityQueue<>(Map.Entry.comparingByValue());
        dist.put(source, 0);
        pq.add(Map.entry(source, 0));
        while (!pq.isEmpty()) {
            var cur = pq.poll();
            String u = cur.getKey();
            if (cur.getValue() > dist.get(u)) continue; // stale entry
            for (Edge e : adj.getOrDefault(u, List.of())) {
                int nd = cur.getValue() + e.weight();
                if (nd < dist.getOrDefault(e.to(), Integer.MAX_VALUE)) {
                    dist.put(e.to(), nd);
                    pq.add(Map.entry(e.to(), nd));
                }
            }
        }
        return dist;
    }

    public List<String> shortestPath(String source, String target) {
        Map<String, String> parent = new HashMap<>();
        Map<String, Integer> dist = new HashMap<>(Map.of(source, 0));
        Deque<String> frontier = new ArrayDeque<>(List.of(source));
        // Bellman-Ford style relaxation; fine for the small graphs we use here
        while (!frontier.isEmpty()) {
            String u = frontier.poll();
            for (Edge e : adj.getOrDefault(u, List.of())) {
                int nd = dist.get(u) + e.weight();
                if (nd < dist.getOrDefault(e.to(), Integer.MAX_VALUE)) {
                    dist.put(e.to(), nd);
                    parent.put(e.to(), u);
                    frontier.add(e.to());
                }
            }
        }
        if (!dist.containsKey(target)) return List.of();
        LinkedList<String> path = new LinkedList<>();
        for (String v = target; v != null; v = parent.get(v)) path.addFirst(v);
        return path;
    }

    /** Kahn's algorithm. Throws if the graph has a cycle. */
    public List<String> topologicalOrder() {
        Map<String, Integer> indegree = new HashMap<>();
        adj.keySet().forEach(v -> indegree.putIfAbsent(v, 0));
        adj.values().forEach(es -> es.forEach(e -> indegree.merge(e.to(), 1, Integer::sum)));

        Deque<String> ready = new ArrayDeque<>();
        indegree.forEach((v, d) -> { if (d == 0) ready.add(v); });
        List<String> order = new ArrayList<>();
        while (!ready.isEmpty()) {
            String v = ready.poll();
            order.add(v);
            for (Edge e : adj.get(v)) {
                if (indegree.merge(e.to(), -1, Integer::sum) == 0) ready.add(e.to());
            }
        }
        if (order.size() != adj.size()) {
            throw new IllegalStateException("graph contains a cycle");
        }
        return order;
    }

    public static void main(String[] args) {
        GraphAlgorithms g = new GraphAlgorithms()
                .addEdge("fetch", "compile", 4)
                .addEdge("fetch", "lint", 1)
                .addEdge("lint", "compile", 1)
                .addEdge("compile", "test", 6)
                .addEdge("compile", "package", 2)
                .addEdge("test", "deploy", 1)
                .addEdge("package", "deploy", 3);
        System.out.println("distances: " + new TreeMap<>(g.shortestDistances("fetch")));
        System.out.println("path: " + g.shortestPath("fetch", "deploy"));
        System.out.println("build order: " + g.topologicalOrder());
        g.addEdge("deploy", "fetch", 1);
        try {
            g.topologicalOrder();
        } catch (IllegalStateException e) {
            System.out.println("expected: " + e.getMessage());
        }
    }
}
