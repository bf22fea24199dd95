/**
 * Temperature scales with conversions routed through Kelvin.
 */
public enum TemperatureUnit {
    CELSIUS("C") {
        double toKelvin(double v) { return v + 273.15; }
        double fromKelvin(double k) { return k - 273.15; }
    },
    FAHRENHEIT("F") {
        double toKelvin(double v) { return (v - 32) * 5.0 / 9.0 + 273.15; }
        double fromKelvin(double k) { return (k - 273.15) * 9.0 / 5.0 + 32; }
    },
    KELVIN("K") {
        double toKelvin(double v) { return v; }
        double fromKelvin(double k) { return k; }
    };

    private final String symbol;

    TemperatureUnit(String symbol) {
        this.symbol = symbol;
    }

    abstract double toKelvin(double value);

    abstract double fromKelvin(double kelvin);

    public double convert(double value, TemperatureUnit target) {
        double k = toKelvin(value);
        if (k < 0) {
            throw new IllegalArgumentException(value + symbol + " is below absolute zero");
        }
        return target.fromKelvin(k);
    }

    public static TemperatureUnit fromSymbol(String s) {
        for (TemperatureUnit u : values()) {
            if (u.symbol.equalsIgnoreCase(s)) return u;
        }
        throw new IllegalArgumentException("unknown unit: " + s);
    }

    public static void main(String[] args) {
        double[] samples = {-40, 0, 37, 100};
        for (double c : samples) {
            System.out.printf("%6.1f C = %6.1f F = %6.2f K%n", c,
                    CELSIUS.convert(c, FAHRENHEIT), CELSIUS.convert(c, KELVIN));
        }
        System.out.println(fromSymbol("f").convert(451, CELSIUS));
    }
}
