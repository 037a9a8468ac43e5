package xllm.hub;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;

import java.io.IOException;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * A local imitation of the Hugging Face hub's routes, enough to exercise {@link HubClient}:
 * {@code /api/models/{repo}/revision/{rev}} (listing with sizes and checksums),
 * {@code /{repo}/resolve/{rev}/{path}} (small files served directly with their git blob id as ETag; LFS files
 * answered with a 302 to {@code http://localhost:PORT/cdn/{sha256}} plus X-Linked-Etag / X-Linked-Size, as the
 * real hub redirects to its CDN), and the CDN route with Range support. Knobs make it misbehave on purpose.
 */
final class FakeHub implements AutoCloseable {

    static final String COMMIT = "0123456789abcdef0123456789abcdef01234567";

    /** One request as the server saw it. */
    record Request(String path, String range, String authorization, int status, long bytesServed) { }

    private record RepoFile(byte[] content, boolean lfs) { }

    private final HttpServer server;
    private final Map<String, Map<String, RepoFile>> repos = new ConcurrentHashMap<>();
    private final Map<String, String> privateRepoTokens = new ConcurrentHashMap<>();
    private final Map<String, String> listedSha256 = new ConcurrentHashMap<>();   // path -> lie in the listing
    private final List<Request> requests = Collections.synchronizedList(new ArrayList<>());
    private int inFlight; // handlers running (guarded by requests)

    /** CDN: the next request writes this many bytes of the body (headers announce all of it), then drops. */
    volatile long dropNextCdnAfter = -1;
    /** CDN: answer 200 with the whole file even when a Range is asked for. */
    volatile boolean ignoreRange;

    FakeHub() throws IOException {
        server = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 0);
        server.createContext("/", this::handle);
        server.start();
    }

    URI endpoint() {
        return URI.create("http://127.0.0.1:" + server.getAddress().getPort());
    }

    void addFile(String repo, String path, byte[] content, boolean lfs) {
        repos.computeIfAbsent(repo, r -> new LinkedHashMap<>()).put(path, new RepoFile(content, lfs));
    }

    /** The repo answers 401 unless the request carries this bearer token. */
    void makePrivate(String repo, String token) {
        privateRepoTokens.put(repo, token);
    }

    /** The listing (and X-Linked-Etag) will claim this sha256 for {@code path}. */
    void lieAboutSha256(String path, String sha256) {
        listedSha256.put(path, sha256);
    }

    /**
     * Every request so far, once no handler is still running: a handler records its request after writing the body,
     * and the client may finish reading (and the test look) before that record lands.
     */
    List<Request> requests() {
        long deadline = System.nanoTime() + 5_000_000_000L;
        synchronized (requests) {
            while (inFlight > 0 && System.nanoTime() < deadline) {
                try {
                    requests.wait(50);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    break;
                }
            }
            return List.copyOf(requests);
        }
    }

    List<Request> cdnRequests() {
        return requests().stream().filter(r -> r.path().startsWith("/cdn/")).toList();
    }

    @Override
    public void close() {
        server.stop(0);
    }

    static String sha256(byte[] content) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(content));
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
    }

    static String gitBlobId(byte[] content) {
        try {
            MessageDigest sha1 = MessageDigest.getInstance("SHA-1");
            sha1.update(("blob " + content.length + "\0").getBytes(StandardCharsets.US_ASCII));
            return HexFormat.of().formatHex(sha1.digest(content));
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
    }

    // ------------------------------------------------------------------------------------------------ routes

    private void handle(HttpExchange exchange) throws IOException {
        synchronized (requests) {
            inFlight++;
        }
        try {
            route(exchange);
        } finally {
            synchronized (requests) {
                inFlight--;
                requests.notifyAll();
            }
        }
    }

    private void route(HttpExchange exchange) throws IOException {
        String path = exchange.getRequestURI().getRawPath();
        String range = exchange.getRequestHeaders().getFirst("Range");
        String authorization = exchange.getRequestHeaders().getFirst("Authorization");
        long[] served = {0};
        int status;
        try {
            if (path.startsWith("/api/models/")) {
                status = listing(exchange, path.substring("/api/models/".length()), authorization, served);
            } else if (path.startsWith("/cdn/")) {
                status = cdn(exchange, path.substring("/cdn/".length()), range, served);
            } else {
                status = resolve(exchange, path.substring(1), authorization, served);
            }
        } catch (DroppedOnPurpose e) {
            requests.add(new Request(path, range, authorization, -1, served[0]));
            throw e; // HttpServer closes the connection when a handler throws
        }
        requests.add(new Request(path, range, authorization, status, served[0]));
        exchange.close();
    }

    /** {repo}/revision/{rev} */
    private int listing(HttpExchange exchange, String rest, String authorization, long[] served) throws IOException {
        int at = rest.indexOf("/revision/");
        String repo = rest.substring(0, at);
        Integer denied = deny(exchange, repo, authorization, served);
        if (denied != null) return denied;
        StringBuilder json = new StringBuilder("{\"id\":\"" + repo + "\",\"sha\":\"" + COMMIT + "\",\"siblings\":[");
        boolean first = true;
        for (var e : repos.get(repo).entrySet()) {
            byte[] content = e.getValue().content();
            json.append(first ? "" : ",").append("{\"rfilename\":\"").append(e.getKey()).append("\"");
            if (e.getValue().lfs()) {
                String sha = listedSha256.getOrDefault(e.getKey(), sha256(content));
                json.append(",\"size\":").append(content.length)
                        .append(",\"blobId\":\"").append(gitBlobId(("version lfs pointer " + sha).getBytes()))
                        .append("\",\"lfs\":{\"sha256\":\"").append(sha).append("\",\"size\":").append(content.length)
                        .append(",\"pointerSize\":134}}");
            } else {
                json.append(",\"size\":").append(content.length)
                        .append(",\"blobId\":\"").append(gitBlobId(content)).append("\"}");
            }
            first = false;
        }
        json.append("]}");
        return send(exchange, 200, json.toString().getBytes(StandardCharsets.UTF_8), Map.of(), served);
    }

    /** {owner}/{name}/resolve/{rev}/{path} */
    private int resolve(HttpExchange exchange, String rest, String authorization, long[] served) throws IOException {
        int at = rest.indexOf("/resolve/");
        if (at < 0) return send(exchange, 404, "{\"error\":\"not found\"}".getBytes(), Map.of(), served);
        String repo = rest.substring(0, at);
        String afterRevision = rest.substring(at + "/resolve/".length());
        String filePath = afterRevision.substring(afterRevision.indexOf('/') + 1);
        Integer denied = deny(exchange, repo, authorization, served);
        if (denied != null) return denied;
        RepoFile file = repos.get(repo).get(filePath);
        if (file == null) {
            return send(exchange, 404, "{\"error\":\"Entry not found\"}".getBytes(),
                    Map.of("X-Error-Code", "EntryNotFound"), served);
        }
        if (!file.lfs()) {
            return send(exchange, 200, file.content(), Map.of("ETag", "\"" + gitBlobId(file.content()) + "\""), served);
        }
        String sha = listedSha256.getOrDefault(filePath, sha256(file.content()));
        exchange.getResponseHeaders().add("Location",
                "http://localhost:" + server.getAddress().getPort() + "/cdn/" + sha256(file.content()));
        exchange.getResponseHeaders().add("X-Linked-Etag", "\"" + sha + "\"");
        exchange.getResponseHeaders().add("X-Linked-Size", Long.toString(file.content().length));
        exchange.getResponseHeaders().add("X-Repo-Commit", COMMIT);
        exchange.sendResponseHeaders(302, -1);
        return 302;
    }

    /** The CDN: content by sha256, with Range. */
    private int cdn(HttpExchange exchange, String sha, String range, long[] served) throws IOException {
        byte[] content = repos.values().stream().flatMap(m -> m.values().stream())
                .filter(f -> sha256(f.content()).equals(sha)).findFirst().map(RepoFile::content).orElse(null);
        if (content == null) return send(exchange, 404, "NoSuchKey".getBytes(), Map.of(), served);
        int start = 0;
        int status = 200;
        if (range != null && !ignoreRange) {
            start = Integer.parseInt(range.replaceAll("bytes=(\\d+)-.*", "$1"));
            if (start >= content.length) {
                exchange.getResponseHeaders().add("Content-Range", "bytes */" + content.length);
                return send(exchange, 416, new byte[0], Map.of(), served);
            }
            status = 206;
            exchange.getResponseHeaders().add("Content-Range",
                    "bytes " + start + "-" + (content.length - 1) + "/" + content.length);
        }
        long drop = dropNextCdnAfter;
        dropNextCdnAfter = -1;
        exchange.sendResponseHeaders(status, content.length - start);
        OutputStream out = exchange.getResponseBody();
        if (drop >= 0) {
            out.write(content, start, (int) drop);
            out.flush();
            served[0] = drop;
            throw new DroppedOnPurpose();
        }
        out.write(content, start, content.length - start);
        served[0] = content.length - start;
        return status;
    }

    private Integer deny(HttpExchange exchange, String repo, String authorization, long[] served) throws IOException {
        if (!repos.containsKey(repo)) {
            return send(exchange, 404, "{\"error\":\"Repository not found\"}".getBytes(),
                    Map.of("X-Error-Code", "RepoNotFound"), served);
        }
        String token = privateRepoTokens.get(repo);
        if (token != null && !("Bearer " + token).equals(authorization)) {
            return send(exchange, 401, "{\"error\":\"Invalid username or password.\"}".getBytes(),
                    Map.of("X-Error-Code", "RepoNotFound"), served);
        }
        return null;
    }

    private static int send(HttpExchange exchange, int status, byte[] body, Map<String, String> headers,
                            long[] served) throws IOException {
        headers.forEach((k, v) -> exchange.getResponseHeaders().add(k, v));
        exchange.sendResponseHeaders(status, body.length == 0 ? -1 : body.length);
        if (body.length > 0) exchange.getResponseBody().write(body);
        served[0] = body.length;
        return status;
    }

    private static final class DroppedOnPurpose extends RuntimeException {
        DroppedOnPurpose() {
            super("fake hub drops the connection on purpose");
        }
    }

}
