'use strict';

const { describe, it } = require('node:test');
const assert = require('node:assert/strict');
const { PriorityQueue, topK } = require('./priority-queue');

describe('PriorityQueue', () => {
  it('pops numbers in ascending order by default', () => {
    const pq = new PriorityQueue();
    pq.push(5, 1, 4, 2, 3);
    const out = [];
    while (!pq.isEmpty()) out.push(pq.pop());
    assert.deepEqual(out, [1, 2, 3, 4, 5]);
  });

  it('returns undefined when popping an empty queue', () => {
    const pq = new PriorityQueue();
    assert.equal(pq.pop(), undefined);
    assert.equal(pq.peek(), undefined);
    assert.equal(pq.size, 0);
  });

  it('supports a custom comparator for max-heaps', () => {
    const pq = new PriorityQueue((a, b) => b - a);
    pq.push(3, 9, 1, 7);
    assert.equal(pq.peek(), 9);
    assert.deepEqual(pq.toSortedArray(), [9, 7, 3, 1]);
    // toSortedArray must not consume the queue
    assert.equal(pq.size, 4);
  });

  it('orders objects by a priority field', () => {
    const jobs = new PriorityQueue((a, b) => a.priority - b.priority);
    jobs.push({ name: 'email', priority: 3 });
    jobs.push({ name: 'backup', priority: 1 });
    jobs.push({ name: 'report', priority: 2 });
    assert.deepEqual(
      [...jobs.drain()].map((j) => j.name),
      ['backup', 'report', 'email']
    );
  });

  it('removes arbitrary items and keeps the heap valid', () => {
    const pq = PriorityQueue.from([8, 3, 10, 1, 6, 14, 4, 7, 13]);
    assert.equal(pq.remove((x) => x === 6), true);
    assert.equal(pq.remove((x) => x === 100), false);
    assert.deepEqual(pq.toSortedArray(), [1, 3, 4, 7, 8, 10, 13, 14]);
  });

  it('heapifies large random inputs correctly', () => {
    const values = Array.from({ length: 500 }, (_, i) => (i * 7919) % 1000);
    const pq = PriorityQueue.from(values);
    const sorted = [...values].sort((a, b) => a - b);
    assert.deepEqual(pq.toSortedArray(), sorted);
  });
});

describe('topK', () => {
  it('returns the k largest items, biggest first', () => {
    assert.deepEqual(topK([4, 1, 9, 3, 7, 8], 3), [9, 8, 7]);
  });

  it('accepts a scoring function', () => {
    const words = ['pear', 'fig', 'banana', 'kiwi', 'cherry'];
    const longest = topK(words, 2, (w) => w.length);
    assert.equal(longest.length, 2);
    assert.deepEqual([...longest].sort(), ['banana', 'cherry']);
    assert.deepEqual(topK(words, 1, (w) => -w.length), ['fig']);
  });

  it('handles k larger than the input and k <= 0', () => {
    assert.deepEqual(topK([2, 1], 5), [2, 1]);
    assert.deepEqual(topK([2, 1], 0), []);
  });
});
