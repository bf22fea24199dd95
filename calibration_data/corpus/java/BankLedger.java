import java.math.BigDecimal;
import java.math.RoundingMode;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A simple double-entry ledger that keeps balances for a set of accounts.
 *
 * <p>Every transfer produces two journal entries: a debit on the source account
 * and a credit on the target account. The ledger never lets an account go below
 * its overdraft limit, and every operation is recorded so that balances can be
 * rebuilt from the journal alone.
 */
public class BankLedger {

    /** Direction of a single journal line. */
    public enum EntryType { DEBIT, CREDIT }

    /** Immutable journal line. */
    public record JournalEntry(long id, String accountId, EntryType type,
                               BigDecimal amount, String memo, Instant timestamp) {
        public JournalEntry {
            Objects.requireNonNull(accountId, "accountId");
            if (amount.signum() <= 0) {
                throw new IllegalArgumentException("amount must be positive: " + amount);
            }
        }

        BigDecimal signedAmount() {
            return type == EntryType.CREDIT ? amount : amount.negate();
        }
    }

    /** Thrown when a debit would push an account below its allowed limit. */
    public static class InsufficientFundsException extends RuntimeException {
        private final String accountId;
        private final BigDecimal shortfall;

        public InsufficientFundsException(String accountId, BigDecimal shortfall) {
            super("Account " + accountId + " is short by " + shortfall);
            this.accountId = accountId;
            this.shortfall = shortfall;
        }

        public String getAccountId() {
            return accountId;
        }

        public BigDecimal getShortfall() {
            return shortfall;
        }
    }

    private static final class Account {
        final String id;
        final String owner;
        final BigDecimal overdraftLimit;
        BigDecimal balance = BigDecimal.ZERO;

        Account(String id, String owner, BigDecimal overdraftLimit) {
            this.id = id;
            this.owner = owner;
            this.overdraftLimit = overdraftLimit;
        }
    }

    private final Map<String, Account> accounts = new HashMap<>();
    private final List<JournalEntry> journal = new ArrayList<>();
    private final AtomicLong nextEntryId = new AtomicLong(1);
    private final int scale;

    public BankLedger() {
        this(2);
    }

    public BankLedger(int scale) {
        this.scale = scale;
    }

    public synchronized void openAccount(String id, String owner) {
        openAccount(id, owner, BigDecimal.ZERO);
    }

    public synchronized void openAccount(String id, String owner, BigDecimal overdraftLimit) {
        if (accounts.containsKey(id)) {
            throw new IllegalStateException("Duplicate account id: " + id);
        }
        accounts.put(id, new Account(id, owner, normalize(overdraftLimit)));
    }

    public synchronized void deposit(String accountId, BigDecimal amount, String memo) {
        Account account = require(accountId);
        post(account, EntryType.CREDIT, normalize(amount), memo);
    }

    public synchronized void withdraw(String accountId, BigDecimal amount, String memo) {
        Account account = require(accountId);
        BigDecimal value = normalize(amount);
        checkFunds(account, value);
        post(account, EntryType.DEBIT, value, memo);
    }

    /**
     * Moves money between two accounts atomically. Either both journal lines
     * are written or neither is.
     */
    public synchronized void transfer(String fromId, String toId, BigDecimal amount, String memo) {
        if (fromId.equals(toId)) {
            throw new IllegalArgumentException("Cannot transfer to the same account");
        }
        Account from = require(fromId);
        Account to = require(toId);
        BigDecimal value = normalize(amount);
        checkFunds(from, value);
        post(from, EntryType.DEBIT, value, "transfer to " + toId + ": " + memo);
        post(to, EntryType.CREDIT, value, "transfer from " + fromId + ": " + memo);
    }

    public synchronized BigDecimal balanceOf(String accountId) {
        return require(accountId).balance;
    }

    public synchronized List<JournalEntry> statement(String accountId) {
        require(accountId);
        List<JournalEntry> result = new ArrayList<>();
        for (JournalEntry entry : journal) {
            if (entry.accountId().equals(accountId)) {
                result.add(entry);
            }
        }
        return Collections.unmodifiableList(result);
    }

    /**
     * Recomputes every balance from the journal and compares it with the cached
     * value. Returns the ids of accounts whose balances disagree.
     */
    public synchronized List<String> audit() {
        Map<String, BigDecimal> rebuilt = new HashMap<>();
        for (JournalEntry entry : journal) {
            rebuilt.merge(entry.accountId(), entry.signedAmount(), BigDecimal::add);
        }
        List<String> mismatches = new ArrayList<>();
        for (Account account : accounts.values()) {
            BigDecimal expected = rebuilt.getOrDefault(account.id, BigDecimal.ZERO);
            if (expected.compareTo(account.balance) != 0) {
                mismatches.add(account.id);
            }
        }
        Collections.sort(mismatches);
        return mismatches;
    }

    public synchronized BigDecimal totalHoldings() {
        return accounts.values().stream()
                .map(a -> a.balance)
                .reduce(BigDecimal.ZERO, BigDecimal::add);
    }

    private void checkFunds(Account account, BigDecimal amount) {
        BigDecimal available = account.balance.add(account.overdraftLimit);
        if (available.compareTo(amount) < 0) {
            throw new InsufficientFundsException(account.id, amount.subtract(available));
        }
    }

    private void post(Account account, EntryType type, BigDecimal amount, String memo) {
        JournalEntry entry = new JournalEntry(nextEntryId.getAndIncrement(), account.id,
                type, amount, memo == null ? "" : memo, Instant.now());
        journal.add(entry);
        account.balance = account.balance.add(entry.signedAmount());
    }

    private Account require(String accountId) {
        Account account = accounts.get(accountId);
        if (account == null) {
            throw new IllegalArgumentException("Unknown account: " + accountId);
        }
        return account;
    }

    private BigDecimal normalize(BigDecimal amount) {
        Objects.requireNonNull(amount, "amount");
        return amount.setScale(scale, RoundingMode.HALF_EVEN);
    }

    public static void main(String[] args) {
        BankLedger ledger = new BankLedger();
        ledger.openAccount("ACC-1", "Alice");
        ledger.openAccount("ACC-2", "Bob", new BigDecimal("50"));
        ledger.deposit("ACC-1", new BigDecimal("120.00"), "salary");
        ledger.transfer("ACC-1", "ACC-2", new BigDecimal("30.555"), "dinner");
        ledger.withdraw("ACC-2", new BigDecimal("70"), "groceries");

        for (JournalEntry e : ledger.statement("ACC-2")) {
            System.out.printf("%d %-6s %8s  %s%n", e.id(), e.type(), e.amount(), e.memo());
        }
        System.out.println("Alice: " + ledger.balanceOf("ACC-1"));
        System.out.println("Bob:   " + ledger.balanceOf("ACC-2"));
        System.out.println("Audit mismatches: " + ledger.audit());
    }
}
