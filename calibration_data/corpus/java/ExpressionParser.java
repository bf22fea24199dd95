import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.function.DoubleBinaryOperator;
import java.util.function.DoubleUnaryOperator;

/**
 * Recursive-descent parser and evaluator for arithmetic expressions.
 *
 * <pre>
 * expr    := term (('+' | '-') term)*
 * term    := factor (('*' | '/' | '%') factor)*
 * factor  := unary ('^' factor)?
 * unary   := '-' unary | primary
 * primary := NUMBER | IDENT | IDENT '(' expr ')' | '(' expr ')'
 * </pre>
 *
 * Exponentiation is right associative, so {@code 2^3^2} evaluates to 512.
 */
public final class ExpressionParser {

    enum Kind { NUMBER, IDENT, OP, LPAREN, RPAREN, END }

    record Token(Kind kind, String text, int position) {
        @Override
        public String toString() {
            return kind + "('" + text + "')@" + position;
        }
    }

    /** Error raised for malformed input; carries the offending column. */
    public static class ParseException extends RuntimeException {
        final int column;

        ParseException(String message, int column) {
            super(message + " at column " + column);
            this.column = column;
        }
    }

    private static final Map<String, DoubleUnaryOperator> FUNCTIONS = new HashMap<>();
    private static final Map<Character, DoubleBinaryOperator> BINARY = new HashMap<>();

    static {
        FUNCTIONS.put("sqrt", Math::sqrt);
        FUNCTIONS.put("abs", Math::abs);
        FUNCTIONS.put("sin", Math::sin);
        FUNCTIONS.put("cos", Math::cos);
        FUNCTIONS.put("ln", Math::log);
        BINARY.put('+', (a, b) -> a + b);
        BINARY.put('-', (a, b) -> a - b);
        BINARY.put('*', (a, b) -> a * b);
        BINARY.put('/', (a, b) -> {
            if (b == 0.0) {
                throw new ArithmeticException("division by zero");
            }
            return a / b;
        });
        BINARY.put('%', (a, b) -> a % b);
        BINARY.put('^', Math::pow);
    }

    private final List<Token> tokens;
    private final Map<String, Double> variables;
    private int pos;

    private ExpressionParser(String source, Map<String, Double> variables) {
        this.tokens = tokenize(source);
        this.variables = variables;
    }

    public static double evaluate(String source) {
        return evaluate(source, Map.of());
    }

    public static double evaluate(String source, Map<String, Double> variables) {
        ExpressionParser parser = new ExpressionParser(source, variables);
        double value = parser.expr();
        parser.expect(Kind.END);
        return value;
    }

    // ---------------------------------------------------------------- lexer

    static List<Token> tokenize(String src) {
        List<Token> out = new ArrayList<>();
        int i = 0;
        while (i < src.length()) {
            char c = src.charAt(i);
            if (Character.isWhitespace(c)) {
                i++;
            } else if (Character.isDigit(c) || c == '.') {
                int start = i;
                boolean seenDot = false;
                while (i < src.length() && (Character.isDigit(src.charAt(i)) || src.charAt(i) == '.')) {
                    if (src.charAt(i) == '.') {
                        if (seenDot) {
                            throw new ParseException("second decimal point", i);
                        }
                        seenDot = true;
                    }
                    i++;
                }
                out.add(new Token(Kind.NUMBER, src.substring(start, i), start));
            } else if (Character.isLetter(c)) {
                int start = i;
                while (i < src.length() && Character.isLetterOrDigit(src.charAt(i))) {
                    i++;
                }
                out.add(new Token(Kind.IDENT, src.substring(start, i), start));
            } else if (c == '(') {
                out.add(new Token(Kind.LPAREN, "(", i++));
            } else if (c == ')') {
                out.add(new Token(Kind.RPAREN, ")", i++));
            } else if ("+-*/%^".indexOf(c) >= 0) {
                out.add(new Token(Kind.OP, String.valueOf(c), i++));
            } else {
                throw new ParseException("unexpected character '" + c + "'", i);
            }
        }
        out.add(new Token(Kind.END, "", src.length()));
        return out;
    }

    // --------------------------------------------------------------- parser

    private double expr() {
        double left = term();
        while (peekOp('+') || peekOp('-')) {
            char op = next().text().charAt(0);
            left = BINARY.get(op).applyAsDouble(left, term());
        }
        return left;
    }

    private double term() {
        double left = factor();
        while (peekOp('*') || peekOp('/') || peekOp('%')) {
            char op = next().text().charAt(0);
            left = BINARY.get(op).applyAsDouble(left, factor());
        }
        return left;
    }

    private double factor() {
        double base = unary();
        if (peekOp('^')) {
            next();
            return Math.pow(base, factor()); // right associative
        }
        return base;
    }

    private double unary() {
        if (peekOp('-')) {
            next();
            return -unary();
        }
        return primary();
    }

    private double primary() {
        Token t = next();
        switch (t.kind()) {
            case NUMBER:
                return Double.parseDouble(t.text());
            case IDENT:
                if (peek().kind() == Kind.LPAREN) {
                    next();
                    double arg = expr();
                    expect(Kind.RPAREN);
                    DoubleUnaryOperator fn = FUNCTIONS.get(t.text());
                    if (fn == null) {
                        throw new ParseException("unknown function " + t.text(), t.position());
                    }
                    return fn.applyAsDouble(arg);
                }
                Double value = variables.get(t.text());
                if (value == null) {
                    throw new ParseException("undefined variable " + t.text(), t.position());
                }
                return value;
            case LPAREN:
                double inner = expr();
                expect(Kind.RPAREN);
                return inner;
            default:
                throw new ParseException("unexpected token " + t, t.position());
        }
    }

    private boolean peekOp(char op) {
        Token t = peek();
        return t.kind() == Kind.OP && t.text().charAt(0) == op;
    }

    private Token peek() {
        return tokens.get(pos);
    }

    private Token next() {
        return tokens.get(pos++);
    }

    private void expect(Kind kind) {
        Token t = next();
        if (t.kind() != kind) {
            throw new ParseException("expected " + kind + " but found " + t, t.position());
        }
    }

    public static void main(String[] args) {
        String[] samples = {
            "1 + 2 * 3",
            "(1 + 2) * 3",
            "2 ^ 3 ^ 2",
            "-4 + sqrt(16) * x",
            "10 % 4 - abs(-2.5)",
            "3 + * 4",
        };
        Map<String, Double> vars = Map.of("x", 1.5);
        for (String s : samples) {
            try {
                System.out.printf("%-22s = %s%n", s, evaluate(s, vars));
            } catch (ParseException e) {
                System.out.printf("%-22s ! %s%n", s, e.getMessage());
            }
        }
    }
}
