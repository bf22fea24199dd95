import java.util.HashMap;
import java.util.Map;
import java.util.Optional;
import java.util.function.Function;

/**
 * A fixed-capacity least-recently-used cache backed by a hash map and an
 * intrusive doubly linked list. Both {@code get} and {@code put} run in O(1).
 *
 * <p>This class is not thread safe; wrap calls in external synchronization if
 * the cache is shared between threads.
 *
 * @param <K> key type
 * @param <V> value type
 */
public class LruCache<K, V> {

    private static final class Node<K, V> {
        final K key;
        V value;
        Node<K, V> prev;
        Node<K, V> next;

        Node(K key, V value) {
            this.key = key;
            this.value = value;
        }
    }

    /** Callback invoked whenever an entry is pushed out of the cache. */
    @FunctionalInterface
    public interface EvictionListener<K, V> {
        void onEvict(K key, V value);
    }

    private final int capacity;
    private final Map<K, Node<K, V>> index;
    private final Node<K, V> head = new Node<>(null, null); // most recent side
    private final Node<K, V> tail = new Node<>(null, null); // least recent side
    private EvictionListener<K, V> listener = (k, v) -> { };

    private long hits;
    private long misses;

    public LruCache(int capacity) {
        if (capacity <= 0) {
            throw new IllegalArgumentException("capacity must be > 0");
        }
        this.capacity = capacity;
        this.index = new HashMap<>(capacity * 4 / 3 + 1);
        head.next = tail;
        tail.prev = head;
    }

    public LruCache<K, V> onEviction(EvictionListener<K, V> listener) {
        this.listener = listener;
        return this;
    }

    public Optional<V> get(K key) {
        Node<K, V> node = index.get(key);
        if (node == null) {
            misses++;
            return Optional.empty();
        }
        hits++;
        moveToFront(node);
        return Optional.ofNullable(node.value);
    }

    /**
     * Returns the cached value, computing and storing it on a miss.
     */
    public V computeIfAbsent(K key, Function<? super K, ? extends V> loader) {
        Node<K, V> node = index.get(key);
        if (node != null) {
            hits++;
            moveToFront(node);
            return node.value;
        }
        misses++;
        V value = loader.apply(key);
        put(key, value);
        return value;
    }

    public void put(K key, V value) {
        Node<K, V> existing = index.get(key);
        if (existing != null) {
            existing.value = value;
            moveToFront(existing);
            return;
        }
        if (index.size() == capacity) {
            evictLeastRecent();
        }
        Node<K, V> node = new Node<>(key, value);
        index.put(key, node);
        linkAfterHead(node);
    }

    public int size() {
        return index.size();
    }

    public double hitRate() {
        long total = hits + misses;
        return total == 0 ? 0.0 : (double) hits / total;
    }

    private void evictLeastRecent() {
        Node<K, V> victim = tail.prev;
        if (victim == head) {
            return;
        }
        unlink(victim);
        index.remove(victim.key);
        listener.onEvict(victim.key, victim.value);
    }

    private void moveToFront(Node<K, V> node) {
        unlink(node);
        linkAfterHead(node);
    }

    private void linkAfterHead(Node<K, V> node) {
        node.prev = head;
        node.next = head.next;
        head.next.prev = node;
        head.next = node;
    }

    private void unlink(Node<K, V> node) {
        node.prev.next = node.next;
        node.next.prev = node.prev;
        node.prev = null;
        node.next = null;
    }

    @Override
    public String toString() {
        StringBuilder sb = new StringBuilder("[");
        for (Node<K, V> n = head.next; n != tail; n = n.next) {
            if (sb.length() > 1) {
                sb.append(", ");
            }
            sb.append(n.key).append('=').append(n.value);
        }
        return sb.append(']').toString();
    }

    public static void main(String[] args) {
        LruCache<String, Integer> cache = new LruCache<String, Integer>(3)
                .onEviction((k, v) -> System.out.println("evicted " + k + " -> " + v));
        cache.put("a", 1);
        cache.put("b", 2);
        cache.put("c", 3);
        cache.get("a");          // a becomes most recent
        cache.put("d", 4);       // evicts b
        System.out.println(cache);
        int len = cache.computeIfAbsent("hello", String::length);
        System.out.println("hello -> " + len);
        System.out.printf("hit rate: %.2f%n", cache.hitRate());
    }
}
