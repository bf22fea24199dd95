'use strict';

/**
 * Rate limiting strategies for an HTTP API.
 *
 *  - TokenBucket: smooth average rate with bursts up to `capacity`
 *  - SlidingWindowLog: exact count of requests in the last `windowMs`
 *  - KeyedLimiter: one limiter per client key with idle eviction
 */

class TokenBucket {
  /**
   * @param {{ capacity: number, refillPerSecond: number, now?: () => number }} opts
   */
  constructor({ capacity, refillPerSecond, now = Date.now }) {
    if (capacity <= 0 || refillPerSecond <= 0) {
      throw new RangeError('capacity and refillPerSecond must be positive');
    }
    this.capacity = capacity;
    this.refillPerMs = refillPerSecond / 1000;
    this.now = now;
    this.tokens = capacity;
    this.updatedAt = now();
  }

  _refill() {
    const t = this.now();
    const elapsed = t - this.updatedAt;
    if (elapsed > 0) {
      this.tokens = Math.min(this.capacity, this.tokens + elapsed * this.refillPerMs);
      this.updatedAt = t;
    }
  }

  /**
   * Try to take `cost` tokens.
   * @returns {{ allowed: boolean, remaining: number, retryAfterMs: number }}
   */
  take(cost = 1) {
    this._refill();
    if (this.tokens >= cost) {
      this.tokens -= cost;
      return { allowed: true, remaining: Math.floor(this.tokens), retryAfterMs: 0 };
    }
    const missing = cost - this.tokens;
    return {
      allowed: false,
      remaining: Math.floor(this.tokens),
      retryAfterMs: Math.ceil(missing / this.refillPerMs),
    };
  }
}

class SlidingWindowLog {
  constructor({ limit, windowMs, now = Date.now }) {
    this.limit = limit;
    this.windowMs = windowMs;
    this.now = now;
    this.hits = [];
  }

  take() {
    const t = this.now();
    const cutoff = t - this.windowMs;
    // hits are appended in time order, so drop from the front
    let drop = 0;
    while (drop < this.hits.length && this.hits[drop] <= cutoff) drop++;
    if (drop) this.hits.splice(0, drop);

    if (this.hits.length < this.limit) {
      this.hits.push(t);
      return { allowed: true, remaining: this.limit - this.hits.length, retryAfterMs: 0 };
    }
    return {
      allowed: false,
      remaining: 0,
      retryAfterMs: this.hits[0] + this.windowMs - t,
    };
  }
}

class KeyedLimiter {
  /**
   * @param {() => { take: Function }} factory creates a limiter for a new key
   * @param {{ idleMs?: number, now?: () => number }} [opts]
   */
  constructor(factory, { idleMs = 10 * 60 * 1000, now = Date.now } = {}) {
    this.factory = factory;
    this.idleMs = idleMs;
    this.now = now;
    this.entries = new Map();
    this.lastSweep = now();
  }

  take(key, cost) {
    const t = this.now();
    let entry = this.entries.get(key);
    if (!entry) {
      entry = { limiter: this.factory(key), lastSeen: t };
      this.entries.set(key, entry);
    }
    entry.lastSeen = t;
    if (t - this.lastSweep > this.idleMs) this.sweep();
    return entry.limiter.take(cost);
  }

  sweep() {
    const t = this.now();
    for (const [key, entry] of this.entries) {
      if (t - entry.lastSeen > this.idleMs) this.entries.delete(key);
    }
    this.lastSweep = t;
  }

  get size() {
    return this.entries.size;
  }
}

/**
 * Express/Connect-style middleware. Clients are identified by API key
 * header when present, otherwise by remote address.
 */
function rateLimitMiddleware({ capacity = 60, refillPerSecond = 1, keyFn } = {}) {
  const limiter = new KeyedLimiter(() => new TokenBucket({ capacity, refillPerSecond }));
  const getKey =
    keyFn || ((req) => req.headers['x-api-key'] || (req.socket && req.socket.remoteAddress) || 'anon');

  return function rateLimit(req, res, next) {
    const result = limiter.take(getKey(req));
    res.setHeader('X-RateLimit-Limit', String(capacity));
    res.setHeader('X-RateLimit-Remaining', String(result.remaining));
    if (result.allowed) return next();

    res.statusCode = 429;
    res.setHeader('Retry-After', String(Math.ceil(result.retryAfterMs / 1000)));
    res.setHeader('Content-Type', 'application/json');
    res.end(JSON.stringify({ error: 'Too Many Requests', retryAfterMs: result.retryAfterMs }));
  };
}

module.exports = { TokenBucket, SlidingWindowLog, KeyedLimiter, rateLimitMiddleware };
