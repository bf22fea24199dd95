import java.math.BigDecimal;
import java.util.ArrayList;
import java.util.List;

/**
 * Hand-rolled tests for {@link BankLedger}. Runs without any test framework:
 * each public method whose name starts with "test" is invoked from main.
 */
public class BankLedgerTest {

    private static int passed;
    private static final List<String> failures = new ArrayList<>();

    // --- tiny assertion helpers -------------------------------------------

    static void assertEquals(Object expected, Object actual, String message) {
        boolean same = expected == null ? actual == null : expected.equals(actual);
        if (!same) {
            throw new AssertionError(message + ": expected <" + expected + "> but was <" + actual + ">");
        }
    }

    static void assertAmount(String expected, BigDecimal actual) {
        if (new BigDecimal(expected).compareTo(actual) != 0) {
            throw new AssertionError("expected amount " + expected + " but was " + actual);
        }
    }

    static void assertTrue(boolean condition, String message) {
        if (!condition) {
            throw new AssertionError(message);
        }
    }

    static <T extends Throwable> T assertThrows(Class<T> type, Runnable action) {
        try {
            action.run();
        } catch (Throwable t) {
            if (type.isInstance(t)) {
                return type.cast(t);
            }
            throw new AssertionError("expected " + type.getSimpleName() + " but got " + t, t);
        }
        throw new AssertionError("expected " + type.getSimpleName() + " to be thrown");
    }

    // --- fixtures ---------------------------------------------------------

    private BankLedger newLedger() {
        BankLedger ledger = new BankLedger();
        ledger.openAccount("A", "Alice");
        ledger.openAccount("B", "Bob", new BigDecimal("25"));
        return ledger;
    }

    // --- tests ------------------------------------------------------------

    public void testDepositIncreasesBalance() {
        BankLedger ledger = newLedger();
        ledger.deposit("A", new BigDecimal("10.25"), "cash");
        ledger.deposit("A", new BigDecimal("4.75"), "cash");
        assertAmount("15.00", ledger.balanceOf("A"));
    }

    public void testAmountsAreRoundedHalfEven() {
        BankLedger ledger = newLedger();
        ledger.deposit("A", new BigDecimal("1.005"), "rounding");
        assertAmount("1.00", ledger.balanceOf("A"));
        ledger.deposit("A", new BigDecimal("1.015"), "rounding");
        assertAmount("2.02", ledger.balanceOf("A"));
    }

    public void testTransferMovesMoney() {
        BankLedger ledger = newLedger();
        ledger.deposit("A", new BigDecimal("100"), "seed");
        ledger.transfer("A", "B", new BigDecimal("40"), "rent share");
        assertAmount("60", ledger.balanceOf("A"));
        assertAmount("40", ledger.balanceOf("B"));
        assertAmount("100", ledger.totalHoldings());
    }

    public void testOverdraftLimitIsRespected() {
        BankLedger ledger = newLedger();
        ledger.withdraw("B", new BigDecimal("25"), "within limit");
        assertAmount("-25", ledger.balanceOf("B"));

        BankLedger.InsufficientFundsException ex = assertThrows(
                BankLedger.InsufficientFundsException.class,
                () -> ledger.withdraw("B", new BigDecimal("0.01"), "over limit"));
        assertEquals("B", ex.getAccountId(), "account id");
        assertAmount("0.01", ex.getShortfall());
    }

    public void testFailedTransferLeavesNoTrace() {
        BankLedger ledger = newLedger();
        assertThrows(BankLedger.InsufficientFundsException.class,
                () -> ledger.transfer("A", "B", new BigDecimal("5"), "nope"));
        assertEquals(0, ledger.statement("A").size(), "journal lines for A");
        assertEquals(0, ledger.statement("B").size(), "journal lines for B");
    }

    public void testUnknownAccountIsRejected() {
        BankLedger ledger = newLedger();
        assertThrows(IllegalArgumentException.class,
                () -> ledger.deposit("Z", BigDecimal.ONE, "ghost"));
        assertThrows(IllegalStateException.class,
                () -> ledger.openAccount("A", "Again"));
    }

    public void testAuditIsCleanAfterManyOperations() {
        BankLedger ledger = newLedger();
        for (int i = 1; i <= 50; i++) {
            ledger.deposit("A", BigDecimal.valueOf(i), "d" + i);
            if (i % 3 == 0) {
                ledger.transfer("A", "B", BigDecimal.valueOf(i / 3), "t" + i);
            }
        }
        assertTrue(ledger.audit().isEmpty(), "audit should find no mismatches");
        assertAmount("1275", ledger.totalHoldings());
    }

    // --- runner -----------------------------------------------------------

    public static void main(String[] args) throws Exception {
        BankLedgerTest suite = new BankLedgerTest();
        for (var method : BankLedgerTest.class.getDeclaredMethods()) {
            if (!method.getName().startsWith("test")) {
                continue;
            }
            try {
                method.invoke(suite);
                passed++;
                System.out.println("PASS " + method.getName());
            } catch (java.lang.reflect.InvocationTargetException e) {
                failures.add(method.getName() + ": " + e.getCause().getMessage());
                System.out.println("FAIL " + method.getName());
            }
        }
        System.out.printf("%d passed, %d failed%n", passed, failures.size());
        failures.forEach(f -> System.out.println("  " + f));
        if (!failures.isEmpty()) {
            System.exit(1);
        }
    }
}
