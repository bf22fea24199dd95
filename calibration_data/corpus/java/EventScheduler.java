import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.PriorityQueue;
import java.util.UUID;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;

/**
 * Single dispatcher thread that fires scheduled events at (or shortly after)
 * their due time. Work is handed off to a worker pool so a slow handler never
 * delays the next event.
 */
public class EventScheduler implements AutoCloseable {

    /** A handle that callers can use to cancel a pending event. */
    public interface Cancellable {
        boolean cancel();
    }

    private final class ScheduledEvent implements Comparable<ScheduledEvent>, Cancellable {
        final String id = UUID.randomUUID().toString();
        final String name;
        final Runnable action;
        final Duration period; // null for one-shot events
        Instant dueAt;
        volatile boolean cancelled;

        ScheduledEvent(String name, Runnable action, Instant dueAt, Duration period) {
            this.name = name;
            this.action = action;
            this.dueAt = dueAt;
            this.period = period;
        }

        @Override
        public int compareTo(ScheduledEvent other) {
            return dueAt.compareTo(other.dueAt);
        }

        @Override
        public boolean cancel() {
            lock.lock();
            try {
                cancelled = true;
                return queue.remove(this);
            } finally {
                lock.unlock();
            }
        }

        @Override
        public String toString() {
            return name + "@" + dueAt + (period != null ? " every " + period : "");
        }
    }

    private final PriorityQueue<ScheduledEvent> queue = new PriorityQueue<>();
    private final ReentrantLock lock = new ReentrantLock();
    private final Condition changed = lock.newCondition();
    private final ExecutorService workers;
    private final Clock clock;
    private final Thread dispatcher;
    private volatile boolean running = true;

    public EventScheduler(int workerThreads) {
        this(workerThreads, Clock.systemUTC());
    }

    public EventScheduler(int workerThreads, Clock clock) {
        this.clock = clock;
        this.workers = Executors.newFixedThreadPool(workerThreads, r -> {
            Thread t = new Thread(r, "event-worker");
            t.setDaemon(true);
            return t;
        });
        this.dispatcher = new Thread(this::dispatchLoop, "event-dispatcher");
        this.dispatcher.setDaemon(true);
        this.dispatcher.start();
    }

    public Cancellable scheduleOnce(String name, Duration delay, Runnable action) {
        return enqueue(new ScheduledEvent(name, action, clock.instant().plus(delay), null));
    }

    public Cancellable scheduleAtFixedRate(String name, Duration initialDelay, Duration period,
                                           Runnable action) {
        if (period.isZero() || period.isNegative()) {
            throw new IllegalArgumentException("period must be positive");
        }
        return enqueue(new ScheduledEvent(name, action, clock.instant().plus(initialDelay), period));
    }

    private Cancellable enqueue(ScheduledEvent event) {
        lock.lock();
        try {
            if (!running) {
                throw new IllegalStateException("scheduler is closed");
            }
            queue.add(event);
            changed.signal(); // the new event might be earlier than the current head
        } finally {
            lock.unlock();
        }
        return event;
    }

    private void dispatchLoop() {
        while (running) {
            ScheduledEvent due;
            lock.lock();
            try {
                due = awaitNextDue();
                if (due == null) {
                    continue;
                }
                if (due.period != null && !due.cancelled) {
                    due.dueAt = due.dueAt.plus(due.period);
                    queue.add(due);
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return;
            } finally {
                lock.unlock();
            }
            ScheduledEvent fired = due;
            workers.submit(() -> {
                try {
                    fired.action.run();
                } catch (RuntimeException ex) {
                    System.err.println("event " + fired.name + " failed: " + ex);
                }
            });
        }
    }

    /** Must be called with the lock held. Returns null on spurious wake-up. */
    private ScheduledEvent awaitNextDue() throws InterruptedException {
        ScheduledEvent head = queue.peek();
        if (head == null) {
            changed.await();
            return null;
        }
        long waitMillis = Duration.between(clock.instant(), head.dueAt).toMillis();
        if (waitMillis > 0) {
            changed.await(waitMillis, TimeUnit.MILLISECONDS);
            return null; // re-check: the head may have changed while waiting
        }
        return queue.poll();
    }

    @Override
    public void close() throws InterruptedException {
        lock.lock();
        try {
            running = false;
            queue.clear();
            changed.signalAll();
        } finally {
            lock.unlock();
        }
        dispatcher.join(1000);
        workers.shutdown();
        workers.awaitTermination(2, TimeUnit.SECONDS);
    }

    public static void main(String[] args) throws Exception {
        try (EventScheduler scheduler = new EventScheduler(2)) {
            long start = System.nanoTime();
            Runnable log = () -> System.out.printf("tick at %d ms%n", (System.nanoTime() - start) / 1_000_000);
            Cancellable ticker = scheduler.scheduleAtFixedRate("ticker", Duration.ofMillis(50),
                    Duration.ofMillis(100), log);
            scheduler.scheduleOnce("hello", Duration.ofMillis(120), () -> System.out.println("hello once"));
            scheduler.scheduleOnce("stop", Duration.ofMillis(420), () -> {
                System.out.println("cancelling ticker: " + ticker.cancel());
            });
            Thread.sleep(600);
        }
    }
}
