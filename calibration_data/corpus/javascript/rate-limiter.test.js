const test = require('node:test');
const assert = require('node:assert');
const { TokenBucket, SlidingWindowLog, KeyedLimiter } = require('./rate-limiter.js');

// A controllable clock so tests don't depend on real time.
function fakeClock(start = 0) {
  let t = start;
  const now = () => t;
  now.advance = (ms) => {
    t += ms;
  };
  return now;
}

test('token bucket allows a burst up to capacity', () => {
  const now = fakeClock();
  const bucket = new TokenBucket({ capacity: 3, refillPerSecond: 1, now });
  assert.strictEqual(bucket.take().allowed, true);
  assert.strictEqual(bucket.take().allowed, true);
  assert.strictEqual(bucket.take().allowed, true);
  const denied = bucket.take();
  assert.strictEqual(denied.allowed, false);
  assert.strictEqual(denied.retryAfterMs, 1000);
});

test('token bucket refills over time but never above capacity', () => {
  const now = fakeClock();
  const bucket = new TokenBucket({ capacity: 2, refillPerSecond: 2, now });
  bucket.take(2);
  now.advance(500);
  assert.strictEqual(bucket.take().allowed, true);
  assert.strictEqual(bucket.take().allowed, false);
  now.advance(60_000);
  assert.strictEqual(bucket.take().remaining, 1);
});

test('token bucket rejects invalid configuration', () => {
  assert.throws(() => new TokenBucket({ capacity: 0, refillPerSecond: 1 }), RangeError);
});

test('sliding window counts requests inside the window only', () => {
  const now = fakeClock(1000);
  const log = new SlidingWindowLog({ limit: 2, windowMs: 1000, now });
  assert.ok(log.take().allowed);
  now.advance(400);
  assert.ok(log.take().allowed);
  now.advance(100);
  const denied = log.take();
  assert.strictEqual(denied.allowed, false);
  assert.strictEqual(denied.retryAfterMs, 500);
  now.advance(500);
  assert.ok(log.take().allowed, 'first hit has expired');
});

test('keyed limiter isolates clients and evicts idle ones', () => {
  const now = fakeClock();
  const keyed = new KeyedLimiter(() => new SlidingWindowLog({ limit: 1, windowMs: 1000, now }), {
    idleMs: 5000,
    now,
  });
  assert.ok(keyed.take('alice').allowed);
  assert.ok(keyed.take('bob').allowed);
  assert.strictEqual(keyed.take('alice').allowed, false);
  assert.strictEqual(keyed.size, 2);

  now.advance(6000);
  keyed.take('carol'); // triggers a sweep
  assert.strictEqual(keyed.size, 1);
});
