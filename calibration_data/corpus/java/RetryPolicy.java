import java.time.Duration;
import java.util.Random;
import java.util.concurrent.Callable;
import java.util.function.Predicate;

/**
 * Retries a call with exponential backoff and full jitter.
 *
 * <pre>{@code
 * String body = RetryPolicy.builder()
 *         .maxAttempts(5)
 *         .baseDelay(Duration.ofMillis(100))
 *         .retryOn(e -> e instanceof java.io.IOException)
 *         .build()
 *         .call(() -> client.fetch(url));
 * }</pre>
 */
public final class RetryPolicy {

    private final int maxAttempts;
    private final Duration baseDelay;
    private final Duration maxDelay;
    private final Predicate<Exception> retryOn;
    private final Random random;

    private RetryPolicy(Builder b) {
        this.maxAttempts = b.maxAttempts;
        this.baseDelay = b.baseDelay;
        this.maxDelay = b.maxDelay;
        this.retryOn = b.retryOn;
        this.random = new Random(b.seed);
    }

    public static Builder builder() {
        return new Builder();
    }

    public <T> T call(Callable<T> task) throws Exception {
        Exception last = null;
        for (int attempt = 1; attempt <= maxAttempts; attempt++) {
            try {
                return task.call();
            } catch (Exception e) {
                last = e;
                if (!retryOn.test(e) || attempt == maxAttempts) {
                    break;
                }
                long sleep = delayFor(attempt);
                System.out.printf("attempt %d failed (%s), retrying in %d ms%n", attempt, e.getMessage(), sleep);
                Thread.sleep(sleep);
            }
        }
        throw last;
    }

    long delayFor(int attempt) {
        long cap = Math.min(maxDelay.toMillis(), baseDelay.toMillis() << Math.min(attempt - 1, 20));
        return cap == 0 ? 0 : (long) (random.nextDouble() * cap);
    }

    public static final class Builder {
        private int maxAttempts = 3;
        private Duration baseDelay = Duration.ofMillis(50);
        private Duration maxDelay = Duration.ofSeconds(5);
        private Predicate<Exception> retryOn = e -> true;
        private long seed = System.nanoTime();

        public Builder maxAttempts(int n) {
            if (n < 1) throw new IllegalArgumentException("maxAttempts < 1");
            this.maxAttempts = n;
            return this;
        }

        public Builder baseDelay(Duration d) {
            this.baseDelay = d;
            return this;
        }

        public Builder maxDelay(Duration d) {
            this.maxDelay = d;
            return this;
        }

        public Builder retryOn(Predicate<Exception> p) {
            this.retryOn = p;
            return this;
        }

        public Builder seed(long seed) {
            this.seed = seed;
            return this;
        }

        public RetryPolicy build() {
            return new RetryPolicy(this);
        }
    }

    public static void main(String[] args) throws Exception {
        int[] calls = {0};
        RetryPolicy policy = builder().maxAttempts(4).baseDelay(Duration.ofMillis(10)).seed(7)
                .retryOn(e -> e instanceof IllegalStateException).build();
        String result = policy.call(() -> {
            if (++calls[0] < 3) throw new IllegalStateException("service busy");
            return "ok after " + calls[0] + " calls";
        });
        System.out.println(result);
    }
}
