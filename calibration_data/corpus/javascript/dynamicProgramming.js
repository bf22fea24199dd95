// Classic dynamic programming problems, each with a short note on the
// recurrence. Tables are rolled into 1-D arrays where that keeps it readable.

/**
 * Longest common subsequence, returning the subsequence itself.
 * dp[i][j] = LCS length of a[0..i) and b[0..j)
 */
export function lcs(a, b) {
  const m = a.length;
  const n = b.length;
  const dp = Array.from({ length: m + 1 }, () => new Uint16Array(n + 1));
  for (let i = 1; i <= m; i++) {
    for (let j = 1; j <= n; j++) {
      dp[i][j] = a[i - 1] === b[j - 1] ? dp[i - 1][j - 1] + 1 : Math.max(dp[i - 1][j], dp[i][j - 1]);
    }
  }
  // walk back from the corner to recover one optimal answer
  const out = [];
  let i = m;
  let j = n;
  while (i > 0 && j > 0) {
    if (a[i - 1] === b[j - 1]) {
      out.push(a[i - 1]);
      i--;
      j--;
    } else if (dp[i - 1][j] >= dp[i][j - 1]) {
      i--;
    } else {
      j--;
    }
  }
  return out.reverse().join('');
}

/**
 * Levenshtein distance using two rows.
 */
export function editDistance(a, b) {
  if (a === b) return 0;
  if (a.length < b.length) [a, b] = [b, a];
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  let curr = new Array(b.length + 1);
  for (let i = 1; i <= a.length; i++) {
    curr[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      curr[j] = Math.min(prev[j] + 1, curr[j - 1] + 1, prev[j - 1] + cost);
    }
    [prev, curr] = [curr, prev];
  }
  return prev[b.length];
}

/**
 * 0/1 knapsack. Returns the best value and which items were chosen.
 * @param {{ weight: number, value: number, name?: string }[]} items
 * @param {number} capacity
 */
export function knapsack(items, capacity) {
  const n = items.length;
  const dp = Array.from({ length: n + 1 }, () => new Array(capacity + 1).fill(0));
  for (let i = 1; i <= n; i++) {
    const { weight, value } = items[i - 1];
    for (let c = 0; c <= capacity; c++) {
      dp[i][c] = dp[i - 1][c];
      if (weight <= c && dp[i - 1][c - weight] + value > dp[i][c]) {
        dp[i][c] = dp[i - 1][c - weight] + value;
      }
    }
  }
  const chosen = [];
  for (let i = n, c = capacity; i > 0; i--) {
    if (dp[i][c] !== dp[i - 1][c]) {
      chosen.push(items[i - 1]);
      c -= items[i - 1].weight;
    }
  }
  return { value: dp[n][capacity], items: chosen.reverse() };
}

/**
 * Fewest coins summing to `amount`, or -1 if impossible.
 * best[x] = 1 + min(best[x - coin])
 */
export function coinChange(coins, amount) {
  const best = new Array(amount + 1).fill(Infinity);
  const via = new Array(amount + 1).fill(-1);
  best[0] = 0;
  for (let x = 1; x <= amount; x++) {
    for (const coin of coins) {
      if (coin <= x && best[x - coin] + 1 < best[x]) {
        best[x] = best[x - coin] + 1;
        via[x] = coin;
      }
    }
  }
  if (best[amount] === Infinity) return { count: -1, coins: [] };
  const used = [];
  for (let x = amount; x > 0; x -= via[x]) used.push(via[x]);
  return { count: best[amount], coins: used };
}

/** Longest strictly increasing subsequence in O(n log n). */
export function longestIncreasing(nums) {
  const tails = []; // tails[k] = index of smallest tail of an LIS of length k+1
  const parent = new Array(nums.length).fill(-1);
  for (let i = 0; i < nums.length; i++) {
    let lo = 0;
    let hi = tails.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (nums[tails[mid]] < nums[i]) lo = mid + 1;
      else hi = mid;
    }
    if (lo > 0) parent[i] = tails[lo - 1];
    tails[lo] = i;
  }
  const seq = [];
  for (let k = tails.length ? tails[tails.length - 1] : -1; k !== -1; k = parent[k]) seq.push(nums[k]);
  return seq.reverse();
}

/**
 * Word break: can `s` be segmented into dictionary words? Returns one
 * segmentation or null.
 */
export function wordBreak(s, dictionary) {
  const words = new Set(dictionary);
  const maxLen = Math.max(0, ...[...words].map((w) => w.length));
  const from = new Array(s.length + 1).fill(-1);
  from[0] = 0;
  for (let end = 1; end <= s.length; end++) {
    for (let start = Math.max(0, end - maxLen); start < end; start++) {
      if (from[start] !== -1 && words.has(s.slice(start, end))) {
        from[end] = start;
        break;
      }
    }
  }
  if (from[s.length] === -1) return null;
  const parts = [];
  for (let end = s.length; end > 0; end = from[end]) parts.unshift(s.slice(from[end], end));
  return parts;
}
