#!/usr/bin/env python3
"""Sudoku solver using constraint propagation plus backtracking."""
import argparse
import sys
from typing import Dict, List, Optional, Set, Tuple

Cell = Tuple[int, int]
Grid = List[List[int]]


def parse_grid(text: str) -> Grid:
    digits = [c for c in text if c.isdigit() or c == "."]
    if len(digits) != 81:
        raise ValueError(f"expected 81 cells, got {len(digits)}")
    values = [0 if c in ".0" else int(c) for c in digits]
    return [values[r * 9:(r + 1) * 9] for r in range(9)]


def format_grid(grid: Grid) -> str:
    lines = []
    for r, row in enumerate(grid):
        if r and r % 3 == 0:
            lines.append("------+-------+------")
        chunks = [" ".join(str(v or ".") for v in row[c:c + 3]) for c in (0, 3, 6)]
        lines.append(" | ".join(chunks))
    return "\n".join(lines)


def peers(cell: Cell) -> Set[Cell]:
    r, c = cell
    br, bc = 3 * (r // 3), 3 * (c // 3)
    result = {(r, j) for j in range(9)} | {(i, c) for i in range(9)}
    result |= {(br + i, bc + j) for i in range(3) for j in range(3)}
    result.discard(cell)
    return result


PEERS: Dict[Cell, Set[Cell]] = {(r, c): peers((r, c)) for r in range(9) for c in range(9)}


def candidates(grid: Grid, cell: Cell) -> Set[int]:
    used = {grid[r][c] for r, c in PEERS[cell]}
    return set(range(1, 10)) - used


def is_valid(grid: Grid) -> bool:
    for (r, c), ps in PEERS.items():
        v = grid[r][c]
        if v and any(grid[pr][pc] == v for pr, pc in ps):
            return False
    return True


class Solver:
    def __init__(self, grid: Grid):
        self.grid = [row[:] for row in grid]
        self.guesses = 0

    def _propagate(self) -> Optional[List[Cell]]:
        """Fill cells that have a single candidate. Returns filled cells or None on contradiction."""
        filled: List[Cell] = []
        progress = True
        while progress:
            progress = False
            for r in range(9):
                for c in range(9):
                    if self.grid[r][c]:
                        continue
                    options = candidates(self.grid, (r, c))
                    if not options:
                        return self._undo(filled)
                    if len(options) == 1:
                        self.grid[r][c] = options.pop()
                        filled.append((r, c))
                        progress = True
        return filled

    def _undo(self, cells: List[Cell]) -> None:
        for r, c in cells:
            self.grid[r][c] = 0
        return None

    def solve(self) -> bool:
        filled = self._propagate()
        if filled is None:
            return False
        empty = [(r, c) for r in range(9) for c in range(9) if not self.grid[r][c]]
        if not empty:
            return True
        # choose the most constrained cell to branch on
        cell = min(empty, key=lambda rc: len(candidates(self.grid, rc)))
        for value in sorted(candidates(self.grid, cell)):
            self.guesses += 1
            self.grid[cell[0]][cell[1]] = value
            if self.solve():
                return True
            self.grid[cell[0]][cell[1]] = 0
        self._undo(filled)
        return False


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("puzzle", nargs="?", help="81 characters, '.' or '0' for blanks; stdin if omitted")
    args = ap.parse_args(argv)
    text = args.puzzle if args.puzzle else sys.stdin.read()
    try:
        grid = parse_grid(text)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not is_valid(grid):
        print("error: puzzle breaks sudoku rules", file=sys.stderr)
        return 2
    solver = Solver(grid)
    if not solver.solve():
        print("no solution", file=sys.stderr)
        return 1
    print(format_grid(solver.grid))
    print(f"\n({solver.guesses} guesses)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
