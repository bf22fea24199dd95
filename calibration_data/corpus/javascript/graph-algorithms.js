'use strict';

const { PriorityQueue } = require('./priority-queue');

/**
 * Directed/undirected weighted graph stored as an adjacency map:
 *   node -> Map(neighbor -> weight)
 */
class Graph {
  constructor({ directed = false } = {}) {
    this.directed = directed;
    this.adj = new Map();
  }

  addNode(n) {
    if (!this.adj.has(n)) this.adj.set(n, new Map());
    return this;
  }

  addEdge(a, b, weight = 1) {
    this.addNode(a).addNode(b);
    this.adj.get(a).set(b, weight);
    if (!this.directed) this.adj.get(b).set(a, weight);
    return this;
  }

  neighbors(n) {
    return this.adj.has(n) ? [...this.adj.get(n).keys()] : [];
  }

  get nodes() {
    return [...this.adj.keys()];
  }

  static fromEdges(edges, opts) {
    const g = new Graph(opts);
    for (const [a, b, w] of edges) g.addEdge(a, b, w);
    return g;
  }
}

/** Breadth-first search; returns the unweighted shortest path or null. */
function bfsPath(graph, start, goal) {
  const prev = new Map([[start, null]]);
  const queue = [start];
  for (let head = 0; head < queue.length; head++) {
    const node = queue[head];
    if (node === goal) break;
    for (const next of graph.neighbors(node)) {
      if (!prev.has(next)) {
        prev.set(next, node);
        queue.push(next);
      }
    }
  }
  if (!prev.has(goal)) return null;
  const path = [];
  for (let n = goal; n !== null; n = prev.get(n)) path.push(n);
  return path.reverse();
}

/**
 * Dijkstra's algorithm with a binary heap. Weights must be non-negative.
 * @returns {{ dist: Map<any, number>, prev: Map<any, any> }}
 */
function dijkstra(graph, source) {
  const dist = new Map(graph.nodes.map((n) => [n, Infinity]));
  const prev = new Map();
  dist.set(source, 0);
  const pq = new PriorityQueue((a, b) => a[0] - b[0]);
  pq.push([0, source]);

  while (!pq.isEmpty()) {
    const [d, node] = pq.pop();
    if (d > dist.get(node)) continue; // stale entry
    for (const [next, w] of graph.adj.get(node)) {
      if (w < 0) throw new Error('dijkstra does not support negative weights');
      const alt = d + w;
      if (alt < dist.get(next)) {
        dist.set(next, alt);
        prev.set(next, node);
        pq.push([alt, next]);
      }
    }
  }
  return { dist, prev };
}

function shortestPath(graph, source, target) {
  const { dist, prev } = dijkstra(graph, source);
  if (dist.get(target) === Infinity) return null;
  const path = [target];
  while (path[0] !== source) path.unshift(prev.get(path[0]));
  return { path, cost: dist.get(target) };
}

/**
 * Kahn's algorithm. Throws with the remaining nodes if there is a cycle,
 * which is the useful error for build/dependency tools.
 */
function topologicalSort(graph) {
  const indegree = new Map(graph.nodes.map((n) => [n, 0]));
  for (const n of graph.nodes) {
    for (const m of graph.neighbors(n)) indegree.set(m, indegree.get(m) + 1);
  }
  const ready = graph.nodes.filter((n) => indegree.get(n) === 0);
  const order = [];
  while (ready.length) {
    const n = ready.shift();
    order.push(n);
    for (const m of graph.neighbors(n)) {
      indegree.set(m, indegree.get(m) - 1);
      if (indegree.get(m) === 0) ready.push(m);
    }
  }
  if (order.length !== graph.nodes.length) {
    const stuck = graph.nodes.filter((n) => indegree.get(n) > 0);
    throw new Error(`cycle detected among: ${stuck.join(', ')}`);
  }
  return order;
}

/** Tarjan's strongly connected components for directed graphs. */
function stronglyConnected(graph) {
  let index = 0;
  const idx = new Map();
  const low = new Map();
  const onStack = new Set();
  const stack = [];
  const result = [];

  function visit(v) {
    idx.set(v, index);
    low.set(v, index);
    index++;
    stack.push(v);
    onStack.add(v);

    for (const w of graph.neighbors(v)) {
      if (!idx.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v), low.get(w)));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v), idx.get(w)));
      }
    }

    if (low.get(v) === idx.get(v)) {
      const component = [];
      let w;
      do {
        w = stack.pop();
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      result.push(component);
    }
  }

  for (const v of graph.nodes) if (!idx.has(v)) visit(v);
  return result;
}

module.exports = {
  Graph,
  bfsPath,
  dijkstra,
  shortestPath,
  topologicalSort,
  stronglyConnected,
};
