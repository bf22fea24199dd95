/**
 * Classic dynamic-programming string metrics.
 */
public final class EditDistance {

    private EditDistance() { }

    /** Levenshtein distance using two rolling rows: O(n*m) time, O(m) space. */
    public static int levenshtein(String a, String b) {
        int[] prev = new int[b.length() + 1];
        int[] curr = new int[b.length() + 1];
        for (int j = 0; j <= b.length(); j++) prev[j] = j;

        for (int i = 1; i <= a.length(); i++) {
            curr[0] = i;
            for (int j = 1; j <= b.length(); j++) {
                int cost = a.charAt(i - 1) == b.charAt(j - 1) ? 0 : 1;
                curr[j] = Math.min(Math.min(curr[j - 1] + 1, prev[j] + 1), prev[j - 1] + cost);
            }
            int[] tmp = prev;
            prev = curr;
            curr = tmp;
        }
        return prev[b.length()];
    }

    /** Longest common subsequence, reconstructed from the full table. */
    public static String lcs(String a, String b) {
        int n = a.length(), m = b.length();
        int[][] dp = new int[n + 1][m + 1];
        for (int i = n - 1; i >= 0; i--) {
            for (int j = m - 1; j >= 0; j--) {
                dp[i][j] = a.charAt(i) == b.charAt(j)
                        ? dp[i + 1][j + 1] + 1
                        : Math.max(dp[i + 1][j], dp[i][j + 1]);
            }
        }
        StringBuilder sb = new StringBuilder();
        int i = 0, j = 0;
        while (i < n && j < m) {
            if (a.charAt(i) == b.charAt(j)) {
                sb.append(a.charAt(i));
                i++;
                j++;
            } else if (dp[i + 1][j] >= dp[i][j + 1]) {
                i++;
            } else {
                j++;
            }
        }
        return sb.toString();
    }

    /** 0/1 knapsack: maximum value that fits into the given capacity. */
    public static int knapsack(int[] weights, int[] values, int capacity) {
        int[] best = new int[capacity + 1];
        for (int item = 0; item < weights.length; item++) {
            // iterate capacity downwards so each item is used at most once
            for (int c = capacity; c >= weights[item]; c--) {
                best[c] = Math.max(best[c], best[c - weights[item]] + values[item]);
            }
        }
        return best[capacity];
    }

    public static void main(String[] args) {
        String[][] pairs = { {"kitten", "sitting"}, {"flaw", "lawn"}, {"", "abc"}, {"gumbo", "gambol"} };
        for (String[] p : pairs) {
            System.out.printf("%-8s %-8s lev=%d lcs='%s'%n", p[0], p[1], levenshtein(p[0], p[1]), lcs(p[0], p[1]));
        }
        System.out.println("knapsack = " + knapsack(new int[] {1, 3, 4, 5}, new int[] {1, 4, 5, 7}, 7));
    }
}
