import java.time.LocalDate;
import java.time.temporal.ChronoUnit;
import java.util.Comparator;
import java.util.EnumMap;
import java.util.HashMap;
import java.util.IntSummaryStatistics;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeMap;
import java.util.stream.Collectors;

/**
 * In-memory catalog for a small lending library. Demonstrates records and the
 * streams API for searching, grouping and reporting.
 */
public class LibraryCatalog {

    public enum Genre { FICTION, HISTORY, SCIENCE, CHILDREN, POETRY, REFERENCE }

    public record Book(String isbn, String title, String author, int year, Genre genre, Set<String> tags) {
        public Book {
            if (isbn == null || isbn.isBlank()) {
                throw new IllegalArgumentException("isbn is required");
            }
            tags = Set.copyOf(tags);
        }

        boolean matches(String query) {
            String q = query.toLowerCase(Locale.ROOT);
            return title.toLowerCase(Locale.ROOT).contains(q)
                    || author.toLowerCase(Locale.ROOT).contains(q)
                    || tags.stream().anyMatch(t -> t.equalsIgnoreCase(query));
        }
    }

    public record Loan(String isbn, String memberId, LocalDate borrowedOn, LocalDate dueOn) {
        long daysOverdue(LocalDate today) {
            return Math.max(0, ChronoUnit.DAYS.between(dueOn, today));
        }
    }

    private static final int LOAN_DAYS = 21;
    private static final double FINE_PER_DAY = 0.25;

    private final Map<String, Book> books = new TreeMap<>();
    private final Map<String, Loan> activeLoans = new HashMap<>();

    public void add(Book book) {
        if (books.putIfAbsent(book.isbn(), book) != null) {
            throw new IllegalArgumentException("duplicate isbn " + book.isbn());
        }
    }

    public Optional<Book> findByIsbn(String isbn) {
        return Optional.ofNullable(books.get(isbn));
    }

    public List<Book> search(String query) {
        return books.values().stream()
                .filter(b -> b.matches(query))
                .sorted(Comparator.comparing(Book::year).reversed().thenComparing(Book::title))
                .collect(Collectors.toList());
    }

    public Loan checkout(String isbn, String memberId, LocalDate today) {
        Book book = findByIsbn(isbn)
                .orElseThrow(() -> new IllegalArgumentException("no such book " + isbn));
        if (activeLoans.containsKey(isbn)) {
            throw new IllegalStateException(book.title() + " is already on loan");
        }
        long open = activeLoans.values().stream().filter(l -> l.memberId().equals(memberId)).count();
        if (open >= 5) {
            throw new IllegalStateException("member " + memberId + " has too many loans");
        }
        Loan loan = new Loan(isbn, memberId, today, today.plusDays(LOAN_DAYS));
        activeLoans.put(isbn, loan);
        return loan;
    }

    /** Returns a book and reports the fine owed, if any. */
    public double checkin(String isbn, LocalDate today) {
        Loan loan = activeLoans.remove(isbn);
        if (loan == null) {
            throw new IllegalStateException("book " + isbn + " is not on loan");
        }
        return loan.daysOverdue(today) * FINE_PER_DAY;
    }

    public boolean isAvailable(String isbn) {
        return books.containsKey(isbn) && !activeLoans.containsKey(isbn);
    }

    public Map<Genre, Long> countByGenre() {
        return books.values().stream()
                .collect(Collectors.groupingBy(Book::genre, () -> new EnumMap<>(Genre.class),
                        Collectors.counting()));
    }

    public Map<String, List<String>> titlesByAuthor() {
        return books.values().stream()
                .collect(Collectors.groupingBy(Book::author, TreeMap::new,
                        Collectors.mapping(Book::title, Collectors.toList())));
    }

    public IntSummaryStatistics publicationYears() {
        return books.values().stream().mapToInt(Book::year).summaryStatistics();
    }

    public List<Loan> overdue(LocalDate today) {
        return activeLoans.values().stream()
                .filter(l -> l.daysOverdue(today) > 0)
                .sorted(Comparator.comparingLong((Loan l) -> l.daysOverdue(today)).reversed())
                .toList();
    }

    public static void main(String[] args) {
        LibraryCatalog catalog = new LibraryCatalog();
        catalog.add(new Book("978-0001", "The Salt Road", "M. Okafor", 2011, Genre.FICTION, Set.of("travel", "desert")));
        catalog.add(new Book("978-0002", "Rivers of Iron", "L. Brandt", 1998, Genre.HISTORY, Set.of("industry")));
        catalog.add(new Book("978-0003", "Small Suns", "M. Okafor", 2019, Genre.SCIENCE, Set.of("fusion", "energy")));
        catalog.add(new Book("978-0004", "Moss and Me", "P. Lindqvist", 2020, Genre.CHILDREN, Set.of("nature")));
        catalog.add(new Book("978-0005", "Field Guide to Lichens", "P. Lindqvist", 2005, Genre.REFERENCE, Set.of("nature")));

        LocalDate day = LocalDate.of(2024, 3, 1);
        catalog.checkout("978-0001", "m-17", day);
        catalog.checkout("978-0004", "m-17", day.plusDays(3));
        catalog.checkout("978-0005", "m-02", day.plusDays(4));
        System.out.println("fine: " + catalog.checkin("978-0004", day.plusDays(30)));
        catalog.checkout("978-0004", "m-02", day.plusDays(31));

        System.out.println("search 'okafor': " + catalog.search("okafor").stream().map(Book::title).toList());
        System.out.println("search 'nature': " + catalog.search("nature").size() + " hits");
        System.out.println("by genre: " + catalog.countByGenre());
        System.out.println("by author: " + catalog.titlesByAuthor());
        System.out.println("years: " + catalog.publicationYears());
        System.out.println("overdue on day 40: " + catalog.overdue(day.plusDays(40)));
    }
}
