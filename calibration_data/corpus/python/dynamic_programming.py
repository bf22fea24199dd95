"""A handful of classic dynamic programming problems with reconstruction."""
from functools import lru_cache
from typing import List, Sequence, Tuple


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance using two rolling rows."""
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        current = [i]
        for j, cb in enumerate(b, start=1):
            cost = 0 if ca == cb else 1
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost))
        previous = current
    return previous[-1]


def longest_common_subsequence(a: Sequence, b: Sequence) -> List:
    n, m = len(a), len(b)
    table = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n - 1, -1, -1):
        for j in range(m - 1, -1, -1):
            if a[i] == b[j]:
                table[i][j] = table[i + 1][j + 1] + 1
            else:
                table[i][j] = max(table[i + 1][j], table[i][j + 1])
    out = []
    i = j = 0
    while i < n and j < m:
        if a[i] == b[j]:
            out.append(a[i])
            i += 1
            j += 1
        elif table[i + 1][j] >= table[i][j + 1]:
            i += 1
        else:
            j += 1
    return out


def knapsack(items: Sequence[Tuple[str, int, int]], capacity: int) -> Tuple[int, List[str]]:
    """0/1 knapsack. ``items`` is a list of (name, weight, value)."""
    n = len(items)
    best = [[0] * (capacity + 1) for _ in range(n + 1)]
    for i, (_, weight, value) in enumerate(items, start=1):
        for c in range(capacity + 1):
            best[i][c] = best[i - 1][c]
            if weight <= c:
                best[i][c] = max(best[i][c], best[i - 1][c - weight] + value)
    chosen = []
    c = capacity
    for i in range(n, 0, -1):
        if best[i][c] != best[i - 1][c]:
            name, weight, _ = items[i - 1]
            chosen.append(name)
            c -= weight
    return best[n][capacity], chosen[::-1]


def coin_change(coins: Sequence[int], amount: int) -> List[int]:
    """Fewest coins summing to ``amount``; empty list if impossible (and amount > 0)."""
    INF = amount + 1
    dp = [0] + [INF] * amount
    last = [-1] * (amount + 1)
    for value in range(1, amount + 1):
        for coin in coins:
            if coin <= value and dp[value - coin] + 1 < dp[value]:
                dp[value] = dp[value - coin] + 1
                last[value] = coin
    if amount and dp[amount] >= INF:
        return []
    result = []
    while amount > 0:
        result.append(last[amount])
        amount -= last[amount]
    return sorted(result, reverse=True)


def longest_increasing_subsequence(nums: Sequence[int]) -> List[int]:
    """O(n log n) patience-sorting approach that also recovers the sequence."""
    import bisect

    tails: List[int] = []
    tails_idx: List[int] = []
    parent = [-1] * len(nums)
    for i, x in enumerate(nums):
        pos = bisect.bisect_left(tails, x)
        if pos == len(tails):
            tails.append(x)
            tails_idx.append(i)
        else:
            tails[pos] = x
            tails_idx[pos] = i
        parent[i] = tails_idx[pos - 1] if pos > 0 else -1
    seq = []
    k = tails_idx[-1] if tails_idx else -1
    while k != -1:
        seq.append(nums[k])
        k = parent[k]
    return seq[::-1]


def count_paths_with_obstacles(grid: List[List[int]]) -> int:
    """Number of right/down paths from top-left to bottom-right; 1 cells are walls."""
    if not grid or grid[0][0] == 1:
        return 0
    cols = len(grid[0])
    row = [0] * cols
    row[0] = 1
    for r in grid:
        for j in range(cols):
            if r[j] == 1:
                row[j] = 0
            elif j > 0:
                row[j] += row[j - 1]
    return row[-1]


def word_break(text: str, words: Sequence[str]) -> List[str]:
    vocab = set(words)
    max_len = max(map(len, vocab), default=0)

    @lru_cache(maxsize=None)
    def solve(start: int):
        if start == len(text):
            return ()
        for end in range(min(len(text), start + max_len), start, -1):
            piece = text[start:end]
            if piece in vocab:
                rest = solve(end)
                if rest is not None:
                    return (piece,) + rest
        return None

    result = solve(0)
    return list(result) if result is not None else []


if __name__ == "__main__":
    print(edit_distance("kitten", "sitting"))
    print("".join(longest_common_subsequence("AGGTAB", "GXTXAYB")))
    print(knapsack([("map", 9, 150), ("compass", 13, 35), ("water", 153, 200),
                    ("sandwich", 50, 160), ("glucose", 15, 60), ("tin", 68, 45)], 200))
    print(coin_change([1, 5, 10, 25], 63))
    print(longest_increasing_subsequence([3, 10, 2, 1, 20, 4, 6, 7]))
    print(count_paths_with_obstacles([[0, 0, 0], [0, 1, 0], [0, 0, 0]]))
    print(word_break("applepenapple", ["apple", "pen", "pine"]))
