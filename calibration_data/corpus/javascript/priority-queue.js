'use strict';

/**
 * Binary heap priority queue. By default the smallest item comes out first;
 * pass a comparator for anything else.
 *
 *   const pq = new PriorityQueue((a, b) => a.priority - b.priority);
 */
class PriorityQueue {
  /**
   * @param {(a: any, b: any) => number} [compare]
   */
  constructor(compare = (a, b) => (a < b ? -1 : a > b ? 1 : 0)) {
    this._heap = [];
    this._compare = compare;
  }

  get size() {
    return this._heap.length;
  }

  isEmpty() {
    return this._heap.length === 0;
  }

  peek() {
    return this._heap[0];
  }

  push(...items) {
    for (const item of items) {
      this._heap.push(item);
      this._siftUp(this._heap.length - 1);
    }
    return this.size;
  }

  pop() {
    const heap = this._heap;
    if (heap.length === 0) return undefined;
    const top = heap[0];
    const last = heap.pop();
    if (heap.length > 0) {
      heap[0] = last;
      this._siftDown(0);
    }
    return top;
  }

  /**
   * Push then pop in one step; faster than doing both separately when the
   * queue is used as a bounded "top k" buffer.
   */
  pushPop(item) {
    const heap = this._heap;
    if (heap.length && this._compare(heap[0], item) < 0) {
      [item, heap[0]] = [heap[0], item];
      this._siftDown(0);
    }
    return item;
  }

  /** Remove the first item matching `predicate`. Returns true if found. */
  remove(predicate) {
    const idx = this._heap.findIndex(predicate);
    if (idx === -1) return false;
    const last = this._heap.pop();
    if (idx < this._heap.length) {
      this._heap[idx] = last;
      this._siftUp(idx);
      this._siftDown(idx);
    }
    return true;
  }

  toSortedArray() {
    const copy = new PriorityQueue(this._compare);
    copy._heap = this._heap.slice();
    const out = [];
    while (!copy.isEmpty()) out.push(copy.pop());
    return out;
  }

  *drain() {
    while (!this.isEmpty()) yield this.pop();
  }

  _siftUp(i) {
    const heap = this._heap;
    const item = heap[i];
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (this._compare(item, heap[parent]) >= 0) break;
      heap[i] = heap[parent];
      i = parent;
    }
    heap[i] = item;
  }

  _siftDown(i) {
    const heap = this._heap;
    const n = heap.length;
    const item = heap[i];
    for (;;) {
      const left = 2 * i + 1;
      if (left >= n) break;
      const right = left + 1;
      let child = left;
      if (right < n && this._compare(heap[right], heap[left]) < 0) child = right;
      if (this._compare(heap[child], item) >= 0) break;
      heap[i] = heap[child];
      i = child;
    }
    heap[i] = item;
  }

  static from(iterable, compare) {
    const pq = new PriorityQueue(compare);
    pq._heap = Array.from(iterable);
    // heapify bottom-up in O(n)
    for (let i = (pq._heap.length >> 1) - 1; i >= 0; i--) pq._siftDown(i);
    return pq;
  }
}

/**
 * Return the k largest values of `items` according to `score`.
 */
function topK(items, k, score = (x) => x) {
  if (k <= 0) return [];
  const pq = new PriorityQueue((a, b) => a.s - b.s);
  for (const value of items) {
    const entry = { s: score(value), value };
    if (pq.size < k) pq.push(entry);
    else pq.pushPop(entry);
  }
  return pq.toSortedArray().reverse().map((e) => e.value);
}

module.exports = { PriorityQueue, topK };
