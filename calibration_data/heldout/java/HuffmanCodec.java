import java.nio.charset.StandardCharsets;
import java.util.BitSet;
import java.util.HashMap;
import java.util.Map;
import java.util.PriorityQueue;
import java.util.TreeMap;

/**
 * Huffman coding over bytes. The encoder builds a prefix-free code from byte
 * frequencies; the decoder walks the same tree bit by bit.
 */
public final class HuffmanCodec {

    private sealed interface Node permits Leaf, Branch {
        long weight();
    }

    private record Leaf(byte symbol, long weight) implements Node { }

    private record Branch(Node left, Node right, long weight) implements Node { }

    /** Result of encoding: the packed bits plus how many of them are meaningful. */
    public record Encoded(BitSet bits, int bitLength) {
        public int byteSize() {
            return (bitLength + 7) / 8;
        }
    }

    private final Node root;
    private final Map<Byte, String> codes = new HashMap<>();

    private HuffmanCodec(Node root) {
        this.root = root;
        if (root instanceof Leaf leaf) {
            codes.put(leaf.symbol(), "0"); // degenerate input with a single symbol
        } else {
            assignCodes(root, "");
        }
    }

    public static HuffmanCodec train(byte[] sample) {
        if (sample.length == 0) {
            throw new IllegalArgumentException("cannot train on empty input");
        }
        long[] freq = new long[256];
        for (byte b : sample) {
            freq[b & 0xFF]++;
        }
        // tie-break on weight only; insertion order makes the tree deterministic
        PriorityQueue<Node> heap = new PriorityQueue<>((a, b) -> Long.compare(a.weight(), b.weight()));
        for (int i = 0; i < 256; i++) {
            if (freq[i] > 0) {
                heap.add(new Leaf((byte) i, freq[i]));
            }
        }
        while (heap.size() > 1) {
            Node a = heap.poll();
            Node b = heap.poll();
            heap.add(new Branch(a, b, a.weight() + b.weight()));
        }
        return new HuffmanCodec(heap.poll());
    }

    private void assignCodes(Node node, String prefix) {
        if (node instanceof Leaf leaf) {
            codes.put(leaf.symbol(), prefix);
        } else if (node instanceof Branch br) {
            assignCodes(br.left(), prefix + '0');
            assignCodes(br.right(), prefix + '1');
        }
    }

    public Encoded encode(byte[] data) {
        BitSet bits = new BitSet();
        int pos = 0;
        for (byte b : data) {
            String code = codes.get(b);
            if (code == null) {
                throw new IllegalArgumentException("symbol " + (b & 0xFF) + " not in code table");
            }
            for (int i = 0; i < code.length(); i++) {
                if (code.charAt(i) == '1') {
                    bits.set(pos);
                }
                pos++;
            }
        }
        return new Encoded(bits, pos);
    }

    public byte[] decode(Encoded encoded) {
        java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream();
        Node node = root;
        for (int i = 0; i < encoded.bitLength(); i++) {
            if (node instanceof Branch br) {
                node = encoded.bits().get(i) ? br.right() : br.left();
            }
            if (node instanceof Leaf leaf) {
                out.write(leaf.symbol());
                node = root;
            }
        }
        return out.toByteArray();
    }

    public Map<Character, String> printableTable() {
        Map<Character, String> table = new TreeMap<>();
        codes.forEach((b, code) -> table.put((char) (b & 0xFF), code));
        return table;
    }

    public static void main(String[] args) {
        String text = "she sells sea shells by the sea shore";
        byte[] input = text.getBytes(StandardCharsets.US_ASCII);
        HuffmanCodec codec = train(input);
        Encoded enc = codec.encode(input);
        String roundTrip = new String(codec.decode(enc), StandardCharsets.US_ASCII);

        codec.printableTable().forEach((c, code) -> System.out.printf("'%c' %s%n", c, code));
        System.out.printf("%d bytes -> %d bits (%d bytes), ratio %.2f%n",
                input.length, enc.bitLength(), enc.byteSize(), (double) enc.byteSize() / input.length);
        System.out.println("round trip ok: " + roundTrip.equals(text));
    }
}
