import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import java.util.stream.Stream;

/**
 * Counts words across all text files under a directory, one task per file,
 * then merges the partial counts.
 */
public class ParallelWordCount {

    private static final Pattern WORD = Pattern.compile("[a-z']+");

    static Map<String, Integer> countFile(Path file) {
        Map<String, Integer> counts = new HashMap<>();
        try (Stream<String> lines = Files.lines(file, StandardCharsets.UTF_8)) {
            lines.map(String::toLowerCase)
                 .flatMap(line -> WORD.matcher(line).results().map(m -> m.group()))
                 .forEach(w -> counts.merge(w, 1, Integer::sum));
        } catch (IOException e) {
            throw new UncheckedIOException(file.toString(), e);
        }
        return counts;
    }

    public static Map<String, Integer> countAll(Path root, int threads) throws IOException {
        List<Path> files;
        try (Stream<Path> walk = Files.walk(root)) {
            files = walk.filter(Files::isRegularFile)
                        .filter(p -> p.toString().endsWith(".txt"))
                        .collect(Collectors.toList());
        }
        ExecutorService pool = Executors.newFixedThreadPool(threads);
        try {
            List<CompletableFuture<Map<String, Integer>>> futures = files.stream()
                    .map(f -> CompletableFuture.supplyAsync(() -> countFile(f), pool)
                            .exceptionally(ex -> {
                                System.err.println("skipping " + f + ": " + ex.getCause());
                                return Map.of();
                            }))
                    .collect(Collectors.toList());

            return CompletableFuture.allOf(futures.toArray(new CompletableFuture[0]))
                    .thenApply(v -> {
                        Map<String, Integer> total = new HashMap<>();
                        futures.forEach(f -> f.join().forEach((w, c) -> total.merge(w, c, Integer::sum)));
                        return total;
                    })
                    .join();
        } finally {
            pool.shutdown();
        }
    }

    public static void main(String[] args) throws IOException {
        Path dir = args.length > 0 ? Path.of(args[0]) : Files.createTempDirectory("wc");
        if (args.length == 0) {
            Files.writeString(dir.resolve("a.txt"), "The cat sat on the mat.\nThe mat was flat.");
            Files.writeString(dir.resolve("b.txt"), "A cat, a hat, and the bat's mat!");
        }
        Map<String, Integer> counts = countAll(dir, 4);
        counts.entrySet().stream()
              .sorted(Map.Entry.<String, Integer>comparingByValue().reversed().thenComparing(Map.Entry.comparingByKey()))
              .limit(5)
              .forEach(e -> System.out.printf("%-6s %d%n", e.getKey(), e.getValue()));
    }
}
