import java.nio.charset.StandardCharsets;
import java.util.BitSet;

/**
 * Space-efficient probabilistic set. {@code mightContain} never returns a false
 * negative, but may return a false positive with roughly the configured rate.
 */
public class BloomFilter {

    private final BitSet bits;
    private final int numBits;
    private final int numHashes;

    public BloomFilter(int expectedItems, double falsePositiveRate) {
        // m = -n ln p / (ln 2)^2,  k = m/n ln 2
        this.numBits = (int) Math.ceil(-expectedItems * Math.log(falsePositiveRate) / (Math.log(2) * Math.log(2)));
        this.numHashes = Math.max(1, (int) Math.round((double) numBits / expectedItems * Math.log(2)));
        this.bits = new BitSet(numBits);
    }

    public void add(String item) {
        long h = hash64(item);
        int h1 = (int) h;
        int h2 = (int) (h >>> 32);
        for (int i = 0; i < numHashes; i++) {
            bits.set(Math.floorMod(h1 + i * h2, numBits));
        }
    }

    public boolean mightContain(String item) {
        long h = hash64(item);
        int h1 = (int) h;
        int h2 = (int) (h >>> 32);
        for (int i = 0; i < numHashes; i++) {
            if (!bits.get(Math.floorMod(h1 + i * h2, numBits))) {
                return false;
            }
        }
        return true;
    }

    /** FNV-1a, 64-bit variant. */
    private static long hash64(String s) {
        long hash = 0xcbf29ce484222325L;
        for (byte b : s.getBytes(StandardCharsets.UTF_8)) {
            hash ^= (b & 0xff);
            hash *= 0x100000001b3L;
        }
        return hash;
    }

    @Override
    public String toString() {
        return "BloomFilter[bits=" + numBits + ", hashes=" + numHashes + ", set=" + bits.cardinality() + "]";
    }

    public static void main(String[] args) {
        BloomFilter filter = new BloomFilter(1000, 0.01);
        for (int i = 0; i < 1000; i++) {
            filter.add("user-" + i);
        }
        int falsePositives = 0;
        for (int i = 1000; i < 11000; i++) {
            if (filter.mightContain("user-" + i)) falsePositives++;
        }
        System.out.println(filter);
        System.out.println("contains user-42: " + filter.mightContain("user-42"));
        System.out.printf("observed false positive rate: %.4f%n", falsePositives / 10000.0);
    }
}
