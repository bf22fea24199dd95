import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * Prefix tree for autocomplete. Each word carries a weight (e.g. search
 * frequency) and suggestions are returned heaviest first.
 */
public class Trie {

    private static class Node {
        final Map<Character, Node> children = new TreeMap<>();
        int weight = -1; // -1 means "no word ends here"
    }

    private final Node root = new Node();
    private int size;

    public void insert(String word, int weight) {
        Node node = root;
        for (char c : word.toCharArray()) {
            node = node.children.computeIfAbsent(c, k -> new Node());
        }
        if (node.weight < 0) size++;
        node.weight = Math.max(node.weight, weight);
    }

    public boolean contains(String word) {
        Node n = find(word);
        return n != null && n.weight >= 0;
    }

    public int size() {
        return size;
    }

    public List<String> suggest(String prefix, int limit) {
        Node start = find(prefix);
        List<Map.Entry<String, Integer>> found = new ArrayList<>();
        if (start != null) {
            collect(start, new StringBuilder(prefix), found);
        }
        found.sort(Map.Entry.<String, Integer>comparingByValue().reversed());
        List<String> result = new ArrayList<>();
        for (int i = 0; i < Math.min(limit, found.size()); i++) {
            result.add(found.get(i).getKey());
        }
        return result;
    }

    private void collect(Node node, StringBuilder path, List<Map.Entry<String, Integer>> out) {
        if (node.weight >= 0) {
            out.add(Map.entry(path.toString(), node.weight));
        }
        for (var child : node.children.entrySet()) {
            path.append(child.getKey());
            collect(child.getValue(), path, out);
            path.deleteCharAt(path.length() - 1); // backtrack
        }
    }

    private Node find(String prefix) {
        Node node = root;
        for (int i = 0; i < prefix.length() && node != null; i++) {
            node = node.children.get(prefix.charAt(i));
        }
        return node;
    }

    public static void main(String[] args) {
        Trie trie = new Trie();
        String[] words = {"car", "card", "care", "careful", "cart", "cat", "catalog", "dog"};
        int[] weights = {50, 20, 35, 5, 12, 60, 8, 40};
        for (int i = 0; i < words.length; i++) {
            trie.insert(words[i], weights[i]);
        }
        System.out.println("size = " + trie.size());
        System.out.println("car*  -> " + trie.suggest("car", 3));
        System.out.println("ca*   -> " + trie.suggest("ca", 10));
        System.out.println("x*    -> " + trie.suggest("x", 3));
        System.out.println("contains 'ca'? " + trie.contains("ca"));
    }
}
