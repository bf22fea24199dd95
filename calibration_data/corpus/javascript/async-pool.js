/**
 * Promise utilities for batch jobs: bounded concurrency, retries with
 * exponential backoff, and timeouts.
 */

/**
 * Run `worker` over `items` with at most `limit` in flight. Results keep
 * the input order. The first rejection stops new work and rejects.
 * @template T, R
 * @param {T[]} items
 * @param {number} limit
 * @param {(item: T, index: number) => Promise<R>} worker
 * @returns {Promise<R[]>}
 */
export async function mapLimit(items, limit, worker) {
  const results = new Array(items.length);
  let next = 0;
  let failed = false;

  async function lane() {
    while (!failed && next < items.length) {
      const i = next++;
      try {
        results[i] = await worker(items[i], i);
      } catch (err) {
        failed = true;
        throw err;
      }
    }
  }

  const lanes = Array.from({ length: Math.min(limit, items.length) }, lane);
  await Promise.all(lanes);
  return results;
}

export function withTimeout(promise, ms, label = 'operation') {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${label} timed out after ${ms}ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * Retry `fn` until it succeeds. Delay doubles each attempt with full
 * jitter so many clients don't retry in lockstep.
 */
export async function retry(fn, { attempts = 5, baseMs = 100, maxMs = 5000, shouldRetry = () => true } = {}) {
  let lastError;
  for (let attempt = 1; attempt <= attempts; attempt++) {
    try {
      return await fn(attempt);
    } catch (err) {
      lastError = err;
      if (attempt === attempts || !shouldRetry(err)) break;
      const cap = Math.min(maxMs, baseMs * 2 ** (attempt - 1));
      await new Promise((r) => setTimeout(r, Math.random() * cap));
    }
  }
  throw lastError;
}

/** Settle all promises and split them into fulfilled values and errors. */
export async function partition(promises) {
  const settled = await Promise.allSettled(promises);
  return settled.reduce(
    (acc, s) => {
      if (s.status === 'fulfilled') acc.ok.push(s.value);
      else acc.errors.push(s.reason);
      return acc;
    },
    { ok: [], errors: [] }
  );
}

/** Example: fetch several URLs, three at a time, retrying 5xx responses. */
export async function fetchAll(urls, fetchImpl = globalThis.fetch) {
  return mapLimit(urls, 3, (url) =>
    retry(
      async () => {
        const res = await withTimeout(fetchImpl(url), 10_000, `GET ${url}`);
        if (res.status >= 500) throw Object.assign(new Error(`HTTP ${res.status}`), { retryable: true });
        return res.json();
      },
      { attempts: 3, shouldRetry: (err) => err.retryable === true }
    )
  );
}
