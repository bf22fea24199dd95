import java.time.Duration;
import java.time.LocalDateTime;
import java.util.ArrayDeque;
import java.util.Deque;
import java.util.EnumMap;
import java.util.HashMap;
import java.util.Map;
import java.util.Optional;

/**
 * Multi-level parking garage that assigns the smallest free spot that fits a
 * vehicle and bills by the started hour with a daily cap.
 */
public class ParkingGarage {

    public enum SpotSize { MOTORCYCLE, COMPACT, LARGE }

    public enum VehicleType {
        MOTORBIKE(SpotSize.MOTORCYCLE, 1.00),
        CAR(SpotSize.COMPACT, 2.50),
        VAN(SpotSize.LARGE, 4.00);

        final SpotSize minimumSpot;
        final double hourlyRate;

        VehicleType(SpotSize minimumSpot, double hourlyRate) {
            this.minimumSpot = minimumSpot;
            this.hourlyRate = hourlyRate;
        }
    }

    public record Spot(int level, int number, SpotSize size) {
        String label() {
            return "L" + level + "-" + String.format("%03d", number);
        }
    }

    public record Ticket(String plate, VehicleType type, Spot spot, LocalDateTime entry) { }

    private static final double DAILY_CAP_HOURS = 10;

    private final Map<SpotSize, Deque<Spot>> freeSpots = new EnumMap<>(SpotSize.class);
    private final Map<String, Ticket> parked = new HashMap<>();
    private double revenue;

    public ParkingGarage(int levels, int motorcyclePerLevel, int compactPerLevel, int largePerLevel) {
        for (SpotSize size : SpotSize.values()) {
            freeSpots.put(size, new ArrayDeque<>());
        }
        for (int level = 1; level <= levels; level++) {
            int n = 1;
            for (int i = 0; i < motorcyclePerLevel; i++) {
                freeSpots.get(SpotSize.MOTORCYCLE).add(new Spot(level, n++, SpotSize.MOTORCYCLE));
            }
            for (int i = 0; i < compactPerLevel; i++) {
                freeSpots.get(SpotSize.COMPACT).add(new Spot(level, n++, SpotSize.COMPACT));
            }
            for (int i = 0; i < largePerLevel; i++) {
                freeSpots.get(SpotSize.LARGE).add(new Spot(level, n++, SpotSize.LARGE));
            }
        }
    }

    /** Parks a vehicle, or returns empty when no suitable spot is free. */
    public Optional<Ticket> enter(String plate, VehicleType type, LocalDateTime when) {
        if (parked.containsKey(plate)) {
            throw new IllegalStateException(plate + " is already inside");
        }
        for (SpotSize size : SpotSize.values()) {
            if (size.compareTo(type.minimumSpot) < 0) {
                continue; // too small for this vehicle
            }
            Spot spot = freeSpots.get(size).pollFirst();
            if (spot != null) {
                Ticket ticket = new Ticket(plate, type, spot, when);
                parked.put(plate, ticket);
                return Optional.of(ticket);
            }
        }
        return Optional.empty();
    }

    public double exit(String plate, LocalDateTime when) {
        Ticket ticket = parked.remove(plate);
        if (ticket == null) {
            throw new IllegalArgumentException("no vehicle with plate " + plate);
        }
        freeSpots.get(ticket.spot().size()).addFirst(ticket.spot());
        double fee = fee(ticket.type(), Duration.between(ticket.entry(), when));
        revenue += fee;
        return fee;
    }

    static double fee(VehicleType type, Duration stay) {
        if (stay.toMinutes() <= 15) {
            return 0.0; // grace period
        }
        long days = stay.toDays();
        long remainderMinutes = stay.minusDays(days).toMinutes();
        long startedHours = (remainderMinutes + 59) / 60;
        double perDay = DAILY_CAP_HOURS * type.hourlyRate;
        return days * perDay + Math.min(perDay, startedHours * type.hourlyRate);
    }

    public int freeCount(SpotSize size) {
        return freeSpots.get(size).size();
    }

    public double revenue() {
        return revenue;
    }

    public static void main(String[] args) {
        ParkingGarage garage = new ParkingGarage(2, 2, 3, 1);
        LocalDateTime t0 = LocalDateTime.of(2024, 5, 10, 8, 0);

        garage.enter("AB-123", VehicleType.CAR, t0).ifPresent(t -> System.out.println("AB-123 -> " + t.spot().label()));
        garage.enter("VAN-01", VehicleType.VAN, t0).ifPresent(t -> System.out.println("VAN-01 -> " + t.spot().label()));
        garage.enter("VAN-02", VehicleType.VAN, t0).ifPresent(t -> System.out.println("VAN-02 -> " + t.spot().label()));
        garage.enter("VAN-03", VehicleType.VAN, t0).ifPresentOrElse(
                t -> System.out.println("VAN-03 -> " + t.spot().label()),
                () -> System.out.println("VAN-03 turned away: garage full for vans"));
        garage.enter("MC-9", VehicleType.MOTORBIKE, t0.plusMinutes(5));

        System.out.printf("AB-123 pays %.2f%n", garage.exit("AB-123", t0.plusHours(3).plusMinutes(10)));
        System.out.printf("MC-9 pays %.2f%n", garage.exit("MC-9", t0.plusMinutes(12)));
        System.out.printf("VAN-01 pays %.2f%n", garage.exit("VAN-01", t0.plusDays(1).plusHours(2)));
        System.out.printf("revenue %.2f, free compact %d%n", garage.revenue(), garage.freeCount(SpotSize.COMPACT));
    }
}
