import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A small JSON reader that builds plain Java objects (Map, List, String,
 * Double/Long, Boolean, null) and writes them back out with indentation.
 *
 * <p>It is intentionally strict: trailing commas, comments and single quotes
 * are rejected.
 */
public final class JsonPrettyPrinter {

    private final String text;
    private int pos;

    private JsonPrettyPrinter(String text) {
        this.text = text;
    }

    public static Object parse(String json) {
        JsonPrettyPrinter p = new JsonPrettyPrinter(json);
        p.skipWhitespace();
        Object value = p.readValue();
        p.skipWhitespace();
        if (p.pos != json.length()) {
            throw p.error("trailing characters");
        }
        return value;
    }

    public static String pretty(String json, int indent) {
        StringBuilder out = new StringBuilder();
        write(parse(json), out, 0, indent);
        return out.toString();
    }

    // ------------------------------------------------------------ reading

    private Object readValue() {
        if (pos >= text.length()) {
            throw error("unexpected end of input");
        }
        char c = text.charAt(pos);
        switch (c) {
            case '{': return readObject();
            case '[': return readArray();
            case '"': return readString();
            case 't': return readLiteral("true", Boolean.TRUE);
            case 'f': return readLiteral("false", Boolean.FALSE);
            case 'n': return readLiteral("null", null);
            default:
                if (c == '-' || Character.isDigit(c)) {
                    return readNumber();
                }
                throw error("unexpected character '" + c + "'");
        }
    }

    private Map<String, Object> readObject() {
        Map<String, Object> map = new LinkedHashMap<>();
        pos++; // '{'
        skipWhitespace();
        if (peek() == '}') {
            pos++;
            return map;
        }
        while (true) {
            skipWhitespace();
            if (peek() != '"') {
                throw error("expected string key");
            }
            String key = readString();
            skipWhitespace();
            expect(':');
            skipWhitespace();
            map.put(key, readValue());
            skipWhitespace();
            if (peek() == ',') {
                pos++;
            } else {
                expect('}');
                return map;
            }
        }
    }

    private List<Object> readArray() {
        List<Object> list = new ArrayList<>();
        pos++; // '['
        skipWhitespace();
        if (peek() == ']') {
            pos++;
            return list;
        }
        while (true) {
            skipWhitespace();
            list.add(readValue());
            skipWhitespace();
            if (peek() == ',') {
                pos++;
            } else {
                expect(']');
                return list;
            }
        }
    }

    private String readString() {
        expect('"');
        StringBuilder sb = new StringBuilder();
        while (true) {
            if (pos >= text.length()) {
                throw error("unterminated string");
            }
            char c = text.charAt(pos++);
            if (c == '"') {
                return sb.toString();
            }
            if (c != '\\') {
                sb.append(c);
                continue;
            }
            char esc = text.charAt(pos++);
            switch (esc) {
                case 'n' -> sb.append('\n');
                case 't' -> sb.append('\t');
                case 'r' -> sb.append('\r');
                case 'b' -> sb.append('\b');
                case 'f' -> sb.append('\f');
                case 'u' -> {
                    sb.append((char) Integer.parseInt(text.substring(pos, pos + 4), 16));
                    pos += 4;
                }
                case '"', '\\', '/' -> sb.append(esc);
                default -> throw error("bad escape \\" + esc);
            }
        }
    }

    private Number readNumber() {
        int start = pos;
        if (peek() == '-') {
            pos++;
        }
        boolean fractional = false;
        while (pos < text.length()) {
            char c = text.charAt(pos);
            if (Character.isDigit(c)) {
                pos++;
            } else if (c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-') {
                fractional = true;
                pos++;
            } else {
                break;
            }
        }
        String literal = text.substring(start, pos);
        try {
            return fractional ? (Number) Double.parseDouble(literal) : (Number) Long.parseLong(literal);
        } catch (NumberFormatException e) {
            throw error("bad number " + literal);
        }
    }

    private Object readLiteral(String word, Object value) {
        if (!text.startsWith(word, pos)) {
            throw error("expected " + word);
        }
        pos += word.length();
        return value;
    }

    private void skipWhitespace() {
        while (pos < text.length() && " \t\r\n".indexOf(text.charAt(pos)) >= 0) {
            pos++;
        }
    }

    private char peek() {
        return pos < text.length() ? text.charAt(pos) : '\0';
    }

    private void expect(char c) {
        if (peek() != c) {
            throw error("expected '" + c + "'");
        }
        pos++;
    }

    private IllegalArgumentException error(String message) {
        return new IllegalArgumentException(message + " at offset " + pos);
    }

    // ------------------------------------------------------------ writing

    @SuppressWarnings("unchecked")
    private static void write(Object value, StringBuilder out, int depth, int indent) {
        if (value instanceof Map<?, ?> map) {
            if (map.isEmpty()) {
                out.append("{}");
                return;
            }
            out.append("{\n");
            int i = 0;
            for (Map.Entry<String, Object> e : ((Map<String, Object>) map).entrySet()) {
                pad(out, depth + 1, indent);
                quote(e.getKey(), out);
                out.append(": ");
                write(e.getValue(), out, depth + 1, indent);
                out.append(++i < map.size() ? ",\n" : "\n");
            }
            pad(out, depth, indent);
            out.append('}');
        } else if (value instanceof List<?> list) {
            if (list.isEmpty()) {
                out.append("[]");
                return;
            }
            boolean scalarsOnly = list.stream().noneMatch(v -> v instanceof Map || v instanceof List);
            if (scalarsOnly && list.size() <= 8) {
                // short arrays of scalars stay on one line
                out.append('[');
                for (int i = 0; i < list.size(); i++) {
                    if (i > 0) {
                        out.append(", ");
                    }
                    write(list.get(i), out, depth, indent);
                }
                out.append(']');
                return;
            }
            out.append("[\n");
            for (int i = 0; i < list.size(); i++) {
                pad(out, depth + 1, indent);
                write(list.get(i), out, depth + 1, indent);
                out.append(i + 1 < list.size() ? ",\n" : "\n");
            }
            pad(out, depth, indent);
            out.append(']');
        } else if (value instanceof String s) {
            quote(s, out);
        } else {
            out.append(value); // numbers, booleans and null
        }
    }

    private static void quote(String s, StringBuilder out) {
        out.append('"');
        for (char c : s.toCharArray()) {
            switch (c) {
                case '"' -> out.append("\\\"");
                case '\\' -> out.append("\\\\");
                case '\n' -> out.append("\\n");
                case '\t' -> out.append("\\t");
                default -> {
                    if (c < 0x20 || c > 0x7e) {
                        out.append(String.format("\\u%04x", (int) c));
                    } else {
                        out.append(c);
                    }
                }
            }
        }
        out.append('"');
    }

    private static void pad(StringBuilder out, int depth, int indent) {
        out.append(" ".repeat(depth * indent));
    }

    public static void main(String[] args) {
        String json = "{\"name\":\"sensor-7\",\"active\":true,\"tags\":[\"roof\",\"north\"],"
                + "\"location\":{\"lat\":59.33,\"lon\":18.06},\"readings\":[{\"t\":1,\"v\":-2.5},"
                + "{\"t\":2,\"v\":-1.75}],\"note\":\"line1\\nline2\",\"owner\":null,\"extra\":{}}";
        System.out.println(pretty(json, 2));
        try {
            parse("[1, 2, ]");
        } catch (IllegalArgumentException e) {
            System.out.println("error: " + e.getMessage());
        }
    }
}
