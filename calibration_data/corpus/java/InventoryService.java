import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.stream.Collectors;

/**
 * Warehouse inventory with stock reservations.
 *
 * <p>Orders first reserve stock, then either commit (the goods ship) or release
 * the reservation (the order is cancelled). Available quantity is always
 * {@code onHand - reserved}.
 */
public class InventoryService {

    public static final class Sku {
        private final String code;
        private final String description;
        private final int reorderPoint;
        private int onHand;
        private int reserved;

        Sku(String code, String description, int reorderPoint) {
            this.code = code;
            this.description = description;
            this.reorderPoint = reorderPoint;
        }

        public String code() {
            return code;
        }

        public String description() {
            return description;
        }

        public int available() {
            return onHand - reserved;
        }

        public boolean needsReorder() {
            return available() <= reorderPoint;
        }

        @Override
        public String toString() {
            return String.format("%s[onHand=%d, reserved=%d]", code, onHand, reserved);
        }
    }

    public static class OutOfStockException extends Exception {
        public OutOfStockException(String code, int requested, int available) {
            super(String.format("SKU %s: requested %d, only %d available", code, requested, available));
        }
    }

    /** One reservation covers several lines of an order. */
    public record Reservation(String orderId, Map<String, Integer> lines) { }

    private final Map<String, Sku> skus = new ConcurrentHashMap<>();
    private final Map<String, Reservation> reservations = new HashMap<>();

    public Sku register(String code, String description, int reorderPoint) {
        return skus.computeIfAbsent(code, c -> new Sku(c, description, reorderPoint));
    }

    public synchronized void receive(String code, int quantity) {
        if (quantity <= 0) {
            throw new IllegalArgumentException("quantity must be positive");
        }
        sku(code).onHand += quantity;
    }

    /**
     * Reserves all lines of an order or none of them. If any line cannot be
     * satisfied the whole reservation fails and nothing is changed.
     */
    public synchronized Reservation reserve(String orderId, Map<String, Integer> lines)
            throws OutOfStockException {
        if (reservations.containsKey(orderId)) {
            throw new IllegalStateException("order " + orderId + " already reserved");
        }
        // validate first so that a failure leaves no partial reservation behind
        for (Map.Entry<String, Integer> line : lines.entrySet()) {
            Sku sku = sku(line.getKey());
            if (sku.available() < line.getValue()) {
                throw new OutOfStockException(sku.code, line.getValue(), sku.available());
            }
        }
        lines.forEach((code, qty) -> sku(code).reserved += qty);
        Reservation r = new Reservation(orderId, new LinkedHashMap<>(lines));
        reservations.put(orderId, r);
        return r;
    }

    public synchronized void commit(String orderId) {
        Reservation r = takeReservation(orderId);
        r.lines().forEach((code, qty) -> {
            Sku sku = sku(code);
            sku.reserved -= qty;
            sku.onHand -= qty;
        });
    }

    public synchronized void release(String orderId) {
        Reservation r = takeReservation(orderId);
        r.lines().forEach((code, qty) -> sku(code).reserved -= qty);
    }

    public synchronized Optional<Integer> available(String code) {
        return Optional.ofNullable(skus.get(code)).map(Sku::available);
    }

    public synchronized List<Sku> reorderReport() {
        return skus.values().stream()
                .filter(Sku::needsReorder)
                .sorted((a, b) -> Integer.compare(a.available(), b.available()))
                .collect(Collectors.toList());
    }

    public synchronized Map<String, Integer> snapshot() {
        return skus.values().stream()
                .collect(Collectors.toMap(Sku::code, Sku::available, (a, b) -> a, java.util.TreeMap::new));
    }

    private Reservation takeReservation(String orderId) {
        Reservation r = reservations.remove(orderId);
        if (r == null) {
            throw new IllegalStateException("no reservation for order " + orderId);
        }
        return r;
    }

    private Sku sku(String code) {
        Sku sku = skus.get(code);
        if (sku == null) {
            throw new IllegalArgumentException("unknown SKU " + code);
        }
        return sku;
    }

    public static void main(String[] args) {
        InventoryService inventory = new InventoryService();
        inventory.register("BOLT-M6", "Hex bolt M6x20", 100);
        inventory.register("NUT-M6", "Hex nut M6", 100);
        inventory.register("WASH-6", "Flat washer 6mm", 50);
        inventory.receive("BOLT-M6", 500);
        inventory.receive("NUT-M6", 450);
        inventory.receive("WASH-6", 120);

        try {
            inventory.reserve("SO-1001", Map.of("BOLT-M6", 200, "NUT-M6", 200));
            inventory.reserve("SO-1002", Map.of("WASH-6", 80));
            inventory.commit("SO-1001");
            inventory.reserve("SO-1003", Map.of("BOLT-M6", 250, "WASH-6", 50));
        } catch (OutOfStockException e) {
            System.out.println("rejected: " + e.getMessage());
        }
        inventory.release("SO-1002");

        System.out.println("snapshot: " + inventory.snapshot());
        System.out.println("reorder: " + inventory.reorderReport());
    }
}
