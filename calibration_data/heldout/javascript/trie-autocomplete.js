/**
 * Prefix trie for search-box autocompletion. Each word carries a weight
 * (e.g. how often it was searched) and suggestions come back best first.
 */

class TrieNode {
  constructor() {
    this.children = new Map();
    this.terminal = false;
    this.weight = 0;
    // best weight anywhere below this node, used to prune the search
    this.maxBelow = 0;
  }
}

export class Autocomplete {
  constructor({ caseSensitive = false } = {}) {
    this.root = new TrieNode();
    this.caseSensitive = caseSensitive;
    this.count = 0;
  }

  _norm(word) {
    return this.caseSensitive ? word : word.toLowerCase();
  }

  /**
   * Insert a word or increase its weight if it already exists.
   * @param {string} word
   * @param {number} [weight=1]
   */
  insert(word, weight = 1) {
    const key = this._norm(word);
    let node = this.root;
    const path = [node];
    for (const ch of key) {
      if (!node.children.has(ch)) node.children.set(ch, new TrieNode());
      node = node.children.get(ch);
      path.push(node);
    }
    if (!node.terminal) this.count++;
    node.terminal = true;
    node.weight += weight;
    node.display = word;
    for (const n of path) n.maxBelow = Math.max(n.maxBelow, node.weight);
    return this;
  }

  _find(prefix) {
    let node = this.root;
    for (const ch of this._norm(prefix)) {
      node = node.children.get(ch);
      if (!node) return null;
    }
    return node;
  }

  has(word) {
    const node = this._find(word);
    return Boolean(node && node.terminal);
  }

  /**
   * Return up to `limit` completions for `prefix`, heaviest first.
   * Subtrees whose best weight can't beat the current k-th result are skipped.
   */
  suggest(prefix, limit = 5) {
    const start = this._find(prefix);
    if (!start) return [];
    const results = [];
    const worst = () => (results.length < limit ? -Infinity : results[results.length - 1].weight);

    const visit = (node) => {
      if (node.maxBelow < worst()) return;
      if (node.terminal && node.weight >= worst()) {
        results.push({ word: node.display, weight: node.weight });
        results.sort((a, b) => b.weight - a.weight || a.word.localeCompare(b.word));
        if (results.length > limit) results.pop();
      }
      const kids = [...node.children.values()].sort((a, b) => b.maxBelow - a.maxBelow);
      for (const child of kids) visit(child);
    };

    visit(start);
    return results;
  }

  /**
   * Delete a word. Empty branches are pruned and maxBelow is recomputed
   * along the path so future pruning stays correct.
   */
  remove(word) {
    const chars = [...this._norm(word)];
    const path = [this.root];
    for (const ch of chars) {
      const next = path[path.length - 1].children.get(ch);
      if (!next) return false;
      path.push(next);
    }
    const leaf = path[path.length - 1];
    if (!leaf.terminal) return false;
    leaf.terminal = false;
    leaf.weight = 0;
    this.count--;

    for (let i = path.length - 1; i >= 0; i--) {
      const node = path[i];
      let best = node.terminal ? node.weight : 0;
      for (const child of node.children.values()) best = Math.max(best, child.maxBelow);
      node.maxBelow = best;
      if (i > 0 && !node.terminal && node.children.size === 0) {
        path[i - 1].children.delete(chars[i - 1]);
      }
    }
    return true;
  }
}

export function buildFromHistory(queries) {
  const counts = queries.reduce((acc, q) => {
    const clean = q.trim();
    if (clean) acc.set(clean, (acc.get(clean) || 0) + 1);
    return acc;
  }, new Map());
  const ac = new Autocomplete();
  for (const [word, n] of counts) ac.insert(word, n);
  return ac;
}
