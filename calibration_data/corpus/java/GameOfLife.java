import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;

/**
 * Conway's Game of Life on a toroidal (wrap-around) grid.
 */
public class GameOfLife {

    private final int width;
    private final int height;
    private boolean[][] cells;
    private int generation;

    public GameOfLife(int width, int height) {
        this.width = width;
        this.height = height;
        this.cells = new boolean[height][width];
    }

    /**
     * Builds a board from a picture where '#' or 'O' is a live cell and any
     * other character is dead. Rows shorter than the widest row are padded.
     */
    public static GameOfLife fromPattern(String... rows) {
        int w = Arrays.stream(rows).mapToInt(String::length).max().orElse(0);
        GameOfLife game = new GameOfLife(w, rows.length);
        for (int y = 0; y < rows.length; y++) {
            for (int x = 0; x < rows[y].length(); x++) {
                char c = rows[y].charAt(x);
                game.cells[y][x] = c == '#' || c == 'O';
            }
        }
        return game;
    }

    public void set(int x, int y, boolean alive) {
        cells[Math.floorMod(y, height)][Math.floorMod(x, width)] = alive;
    }

    public boolean isAlive(int x, int y) {
        return cells[Math.floorMod(y, height)][Math.floorMod(x, width)];
    }

    public int generation() {
        return generation;
    }

    public int population() {
        int count = 0;
        for (boolean[] row : cells) {
            for (boolean c : row) {
                if (c) {
                    count++;
                }
            }
        }
        return count;
    }

    int liveNeighbours(int x, int y) {
        int n = 0;
        for (int dy = -1; dy <= 1; dy++) {
            for (int dx = -1; dx <= 1; dx++) {
                if ((dx != 0 || dy != 0) && isAlive(x + dx, y + dy)) {
                    n++;
                }
            }
        }
        return n;
    }

    /** Advances one generation using the standard B3/S23 rule. */
    public void step() {
        boolean[][] next = new boolean[height][width];
        for (int y = 0; y < height; y++) {
            for (int x = 0; x < width; x++) {
                int n = liveNeighbours(x, y);
                next[y][x] = cells[y][x] ? (n == 2 || n == 3) : n == 3;
            }
        }
        cells = next;
        generation++;
    }

    /**
     * Runs until the board repeats a previous state or the limit is reached.
     *
     * @return the period of the detected cycle, or -1 if none was found
     */
    public int runUntilCycle(int maxGenerations) {
        Map<String, Integer> firstSeenAt = new HashMap<>();
        for (int i = 0; i < maxGenerations; i++) {
            String key = render();
            Integer previous = firstSeenAt.putIfAbsent(key, generation);
            if (previous != null) {
                return generation - previous;
            }
            step();
        }
        return -1;
    }

    public String render() {
        StringBuilder sb = new StringBuilder(height * (width + 1));
        for (boolean[] row : cells) {
            for (boolean c : row) {
                sb.append(c ? '#' : '.');
            }
            sb.append('\n');
        }
        return sb.toString();
    }

    public static void main(String[] args) throws InterruptedException {
        GameOfLife glider = fromPattern(
                ".#......",
                "..#.....",
                "###.....",
                "........",
                "........",
                "........");
        for (int i = 0; i < 3; i++) {
            System.out.println("generation " + glider.generation() + ", population " + glider.population());
            System.out.print(glider.render());
            System.out.println();
            glider.step();
        }

        GameOfLife blinker = fromPattern(".....", "..#..", "..#..", "..#..", ".....");
        System.out.println("blinker period: " + blinker.runUntilCycle(10));

        GameOfLife block = fromPattern("....", ".##.", ".##.", "....");
        System.out.println("block period: " + block.runUntilCycle(10));
    }
}
