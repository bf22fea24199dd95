import java.util.concurrent.TimeUnit;
import java.util.function.LongSupplier;

/**
 * Token bucket rate limiter. Tokens refill continuously at {@code ratePerSecond}
 * up to {@code burst}; each call to {@link #tryAcquire(int)} spends tokens.
 */
public final class TokenBucketRateLimiter {

    private final double ratePerNano;
    private final double burst;
    private final LongSupplier nanoClock;
    private double tokens;
    private long lastRefill;

    public TokenBucketRateLimiter(double ratePerSecond, int burst) {
        this(ratePerSecond, burst, System::nanoTime);
    }

    // visible for testing: lets tests drive time explicitly
    TokenBucketRateLimiter(double ratePerSecond, int burst, LongSupplier nanoClock) {
        if (ratePerSecond <= 0 || burst <= 0) {
            throw new IllegalArgumentException("rate and burst must be positive");
        }
        this.ratePerNano = ratePerSecond / TimeUnit.SECONDS.toNanos(1);
        this.burst = burst;
        this.nanoClock = nanoClock;
        this.tokens = burst;
        this.lastRefill = nanoClock.getAsLong();
    }

    public synchronized boolean tryAcquire(int permits) {
        refill();
        if (tokens >= permits) {
            tokens -= permits;
            return true;
        }
        return false;
    }

    /** Nanoseconds until {@code permits} tokens will be available. */
    public synchronized long nanosUntilAvailable(int permits) {
        refill();
        double missing = permits - tokens;
        return missing <= 0 ? 0 : (long) Math.ceil(missing / ratePerNano);
    }

    private void refill() {
        long now = nanoClock.getAsLong();
        tokens = Math.min(burst, tokens + (now - lastRefill) * ratePerNano);
        lastRefill = now;
    }

    public static void main(String[] args) {
        long[] fakeNow = {0L};
        TokenBucketRateLimiter limiter = new TokenBucketRateLimiter(2.0, 3, () -> fakeNow[0]);
        for (int i = 0; i < 5; i++) {
            System.out.println("t=0 request " + i + ": " + limiter.tryAcquire(1));
        }
        System.out.println("wait ns: " + limiter.nanosUntilAvailable(1));
        fakeNow[0] = TimeUnit.MILLISECONDS.toNanos(500);
        System.out.println("t=500ms: " + limiter.tryAcquire(1) + ", " + limiter.tryAcquire(1));
    }
}
