import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpHandler;
import com.sun.net.httpserver.HttpServer;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.Map;
import java.util.concurrent.ConcurrentSkipListMap;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.Collectors;

/**
 * Tiny REST-ish to-do service on top of the JDK's built-in HTTP server.
 *
 * <pre>
 *   GET    /todos        list all items
 *   GET    /todos/{id}   fetch one item
 *   POST   /todos        create (request body = title)
 *   DELETE /todos/{id}   remove
 * </pre>
 */
public class TodoHttpServer {

    record Todo(int id, String title, boolean done) {
        String toJson() {
            return String.format("{\"id\":%d,\"title\":\"%s\",\"done\":%b}",
                    id, title.replace("\"", "\\\""), done);
        }
    }

    static final class TodoHandler implements HttpHandler {
        private final Map<Integer, Todo> store = new ConcurrentSkipListMap<>();
        private final AtomicInteger ids = new AtomicInteger();

        @Override
        public void handle(HttpExchange ex) throws IOException {
            try {
                String path = ex.getRequestURI().getPath();
                String[] parts = path.split("/");
                Integer id = parts.length > 2 ? parseId(parts[2]) : null;
                switch (ex.getRequestMethod()) {
                    case "GET" -> {
                        if (id == null) {
                            String body = store.values().stream().map(Todo::toJson)
                                    .collect(Collectors.joining(",", "[", "]"));
                            send(ex, 200, body);
                        } else if (store.containsKey(id)) {
                            send(ex, 200, store.get(id).toJson());
                        } else {
                            send(ex, 404, "{\"error\":\"not found\"}");
                        }
                    }
                    case "POST" -> {
                        String title = readBody(ex.getRequestBody()).trim();
                        if (title.isEmpty()) {
                            send(ex, 400, "{\"error\":\"title required\"}");
                            return;
                        }
                        Todo todo = new Todo(ids.incrementAndGet(), title, false);
                        store.put(todo.id(), todo);
                        ex.getResponseHeaders().add("Location", "/todos/" + todo.id());
                        send(ex, 201, todo.toJson());
                    }
                    case "DELETE" -> {
                        boolean removed = id != null && store.remove(id) != null;
                        send(ex, removed ? 204 : 404, "");
                    }
                    default -> {
                        ex.getResponseHeaders().add("Allow", "GET, POST, DELETE");
                        send(ex, 405, "");
                    }
                }
            } catch (NumberFormatException e) {
                send(ex, 400, "{\"error\":\"bad id\"}");
            } finally {
                ex.close();
            }
        }

        private static Integer parseId(String raw) {
            return raw.isEmpty() ? null : Integer.valueOf(raw);
        }

        private static String readBody(InputStream in) throws IOException {
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        }

        private static void send(HttpExchange ex, int status, String body) throws IOException {
            byte[] bytes = body.getBytes(StandardCharsets.UTF_8);
            ex.getResponseHeaders().set("Content-Type", "application/json");
            // -1 tells the server there is no response body at all
            ex.sendResponseHeaders(status, bytes.length == 0 ? -1 : bytes.length);
            if (bytes.length > 0) {
                try (OutputStream os = ex.getResponseBody()) {
                    os.write(bytes);
                }
            }
        }
    }

    public static HttpServer start(int port) throws IOException {
        HttpServer server = HttpServer.create(new InetSocketAddress("127.0.0.1", port), 0);
        server.createContext("/todos", new TodoHandler());
        server.setExecutor(Executors.newFixedThreadPool(4));
        server.start();
        return server;
    }

    public static void main(String[] args) throws IOException {
        int port = args.length > 0 ? Integer.parseInt(args[0]) : 8080;
        HttpServer server = start(port);
        System.out.println("listening on http://127.0.0.1:" + server.getAddress().getPort() + "/todos");
        Runtime.getRuntime().addShutdownHook(new Thread(() -> server.stop(1)));
    }
}
