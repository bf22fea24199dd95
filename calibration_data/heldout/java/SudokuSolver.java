/**
 * Backtracking Sudoku solver that keeps bitmasks of the digits used in every
 * row, column and 3x3 box, and always branches on the most constrained cell.
 */
public class SudokuSolver {

    private final int[][] grid = new int[9][9];
    private final int[] rowMask = new int[9];
    private final int[] colMask = new int[9];
    private final int[] boxMask = new int[9];
    private long nodesVisited;

    public SudokuSolver(String puzzle) {
        String digits = puzzle.replaceAll("[^0-9.]", "");
        if (digits.length() != 81) {
            throw new IllegalArgumentException("expected 81 cells, got " + digits.length());
        }
        for (int i = 0; i < 81; i++) {
            char c = digits.charAt(i);
            if (c != '.' && c != '0') {
                int r = i / 9, col = i % 9, d = c - '0';
                if (!canPlace(r, col, d)) {
                    throw new IllegalArgumentException("conflicting clue at row " + r + ", col " + col);
                }
                place(r, col, d);
            }
        }
    }

    private static int box(int r, int c) {
        return (r / 3) * 3 + c / 3;
    }

    private boolean canPlace(int r, int c, int d) {
        int bit = 1 << d;
        return (rowMask[r] & bit) == 0 && (colMask[c] & bit) == 0 && (boxMask[box(r, c)] & bit) == 0;
    }

    private void place(int r, int c, int d) {
        int bit = 1 << d;
        grid[r][c] = d;
        rowMask[r] |= bit;
        colMask[c] |= bit;
        boxMask[box(r, c)] |= bit;
    }

    private void clear(int r, int c) {
        int bit = ~(1 << grid[r][c]);
        rowMask[r] &= bit;
        colMask[c] &= bit;
        boxMask[box(r, c)] &= bit;
        grid[r][c] = 0;
    }

    public boolean solve() {
        nodesVisited++;
        int bestR = -1, bestC = -1, bestCandidates = 0, bestCount = 10;
        for (int r = 0; r < 9; r++) {
            for (int c = 0; c < 9; c++) {
                if (grid[r][c] != 0) {
                    continue;
                }
                int used = rowMask[r] | colMask[c] | boxMask[box(r, c)];
                int candidates = ~used & 0x3FE; // bits 1..9
                int count = Integer.bitCount(candidates);
                if (count < bestCount) {
                    bestR = r;
                    bestC = c;
                    bestCandidates = candidates;
                    bestCount = count;
                    if (count <= 1) {
                        break; // cannot do better than a forced move (or a dead end)
                    }
                }
            }
        }
        if (bestR < 0) {
            return true; // no empty cells left
        }
        while (bestCandidates != 0) {
            int bit = Integer.lowestOneBit(bestCandidates);
            bestCandidates &= bestCandidates - 1;
            place(bestR, bestC, Integer.numberOfTrailingZeros(bit));
            if (solve()) {
                return true;
            }
            clear(bestR, bestC);
        }
        return false;
    }

    public long nodesVisited() {
        return nodesVisited;
    }

    @Override
    public String toString() {
        StringBuilder sb = new StringBuilder();
        for (int r = 0; r < 9; r++) {
            if (r > 0 && r % 3 == 0) {
                sb.append("------+-------+------\n");
            }
            for (int c = 0; c < 9; c++) {
                if (c > 0 && c % 3 == 0) {
                    sb.append("| ");
                }
                sb.append(grid[r][c] == 0 ? "." : String.valueOf(grid[r][c])).append(' ');
            }
            sb.setLength(sb.length() - 1);
            sb.append('\n');
        }
        return sb.toString();
    }

    public static void main(String[] args) {
        String puzzle =
                "53..7...." +
                "6..195..." +
                ".98....6." +
                "8...6...3" +
                "4..8.3..1" +
                "7...2...6" +
                ".6....28." +
                "...419..5" +
                "....8..79";
        SudokuSolver solver = new SudokuSolver(puzzle);
        long start = System.nanoTime();
        boolean solved = solver.solve();
        long micros = (System.nanoTime() - start) / 1000;
        System.out.println(solved ? "solved in " + micros + " us, " + solver.nodesVisited() + " nodes" : "no solution");
        System.out.print(solver);
    }
}
