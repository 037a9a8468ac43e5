package xllm.server;

import com.sun.net.httpserver.HttpServer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import xllm.serve.TinyJointModel;

import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Hostile and broken input gets a 4xx with an OpenAI error body that says what is wrong, and the server stays up:
 * malformed JSON, wrong content types, oversized bodies, bad base64, corrupt media, refused URL schemes and hosts,
 * private addresses, redirects, 10,000 content parts, a missing key, and hundreds of slow-loris connections.
 */
class HostileInputTest {

    static XllmServer server;
    static URI base;
    static HttpServer media;          // a local web server for the URL cases
    @TempDir
    static Path dir;

    @BeforeAll
    static void start() throws Exception {
        Path checkpoint = TinyJointModel.checkpoint();
        ServerOptions options = ServerOptions.local().withMaxBody(1 << 20).withApiKey("secret")
                .withMediaSources(List.of("localhost"), dir.resolve("allowed"));
        Files.createDirectories(dir.resolve("allowed"));
        // the loopback web server below stands for a public host: only the redirect case needs to reach it
        server = XllmServer.start(checkpoint.toString(), options,
                new MediaFetcher(List.of("localhost", "127.0.0.1"), dir.resolve("allowed"), true));
        base = server.uri();
        media = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 0);
        media.createContext("/moved.png", exchange -> {
            exchange.getResponseHeaders().add("Location", "http://169.254.169.254/latest/meta-data");
            exchange.sendResponseHeaders(302, -1);
            exchange.close();
        });
        media.start();
    }

    @AfterAll
    static void stop() {
        if (server != null) server.close();
        if (media != null) media.stop(0);
    }

    static final String[] KEY = {"Authorization", "Bearer secret"};

    /** Posts a chat body; checks the status, the error shape and the message; the server must still answer. */
    static void refused(int status, String messagePart, String contentType, String body) throws Exception {
        Http.Reply reply = Http.post(base, "/v1/chat/completions", contentType, body, KEY);
        assertEquals(status, reply.status(), reply.body());
        String message = reply.json().at("/error/message").asText();
        assertTrue(message.contains(messagePart), "'" + messagePart + "' in: " + reply.body());
        assertFalse(reply.json().at("/error/type").asText().isEmpty());
        assertEquals(200, Http.get(base, "/health").status(), "the server is still up");
    }

    static String withImageUrl(String url) throws Exception {
        return Http.JSON.writeValueAsString(Map.of("messages", List.of(Map.of("role", "user", "content", List.of(
                Map.of("type", "text", "text", "What is it?"),
                Map.of("type", "image_url", "image_url", Map.of("url", url)))))));
    }

    static String withAudio(String base64) throws Exception {
        return Http.JSON.writeValueAsString(Map.of("messages", List.of(Map.of("role", "user", "content", List.of(
                Map.of("type", "input_audio", "input_audio", Map.of("data", base64, "format", "wav")))))));
    }

    @Test
    void malformedBodiesAndWrongTypes() throws Exception {
        refused(400, "malformed JSON", "application/json", "{\"messages\": [");
        refused(400, "JSON object", "application/json", "[1, 2]");
        refused(415, "Content-Type must be application/json", "text/plain", "{}");
        refused(400, "'messages' must be a non-empty array", "application/json", "{\"messages\": []}");
        refused(400, "unsupported content part type 'file'", "application/json",
                "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"file\"}]}]}");
        refused(400, "unsupported role 'tool'", "application/json",
                "{\"messages\":[{\"role\":\"tool\",\"content\":\"x\"}]}");
        refused(400, "'max_tokens' must be a positive integer", "application/json",
                "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_tokens\":-5}");
        assertEquals(405, Http.get(base, "/v1/chat/completions", KEY).status());
        assertEquals(404, Http.get(base, "/v1/nothing", KEY).status());
    }

    @Test
    void oversizedBodiesAndTooManyPartsAreRefused() throws Exception {
        refused(413, "exceeds the limit", "application/json", "{\"pad\":\"" + "x".repeat(2 << 20) + "\"}");
        StringBuilder parts = new StringBuilder("{\"messages\":[{\"role\":\"user\",\"content\":[");
        for (int i = 0; i < 10_000; i++) parts.append(i == 0 ? "" : ",").append("{\"type\":\"text\",\"text\":\"a\"}");
        refused(400, "too many content parts", "application/json", parts.append("]}]}").toString());
    }

    @Test
    void badBase64AndCorruptMediaNameThePart() throws Exception {
        refused(400, "invalid base64", "application/json", withImageUrl("data:image/png;base64,@@not base64@@"));
        refused(400, "invalid base64", "application/json", withAudio("%%%"));
        String garbage = Base64.getEncoder().encodeToString("this is not an image at all".getBytes(StandardCharsets.UTF_8));
        refused(400, "messages[0].content[1]", "application/json", withImageUrl("data:image/png;base64," + garbage));
        refused(400, "messages[0].content[0]", "application/json", withAudio(garbage));
        refused(400, "must be base64", "application/json", withImageUrl("data:image/png,plain"));
    }

    @Test
    void urlsOutsideThePolicyAreRefused() throws Exception {
        refused(400, "not a file under the allowed media directory", "application/json",
                withImageUrl("file:///etc/passwd"));
        Path escape = dir.resolve("allowed").resolve("escape.png");
        Files.deleteIfExists(escape);
        Files.createSymbolicLink(escape, Path.of("/etc/passwd"));
        refused(400, "not a file under the allowed media directory", "application/json",
                withImageUrl(escape.toUri().toString()));
        refused(400, "not a file under the allowed media directory", "application/json",
                withImageUrl(dir.resolve("allowed").toUri() + "../../../etc/passwd"));
        refused(400, "host 'example.org' are refused", "application/json", withImageUrl("http://example.org/cat.png"));
        refused(400, "unsupported URL scheme", "application/json", withImageUrl("ftp://localhost/cat.png"));
        refused(400, "redirects", "application/json",
                withImageUrl("http://127.0.0.1:" + media.getAddress().getPort() + "/moved.png"));
    }

    @Test
    void privateAddressesAreRefusedByTheDefaultFetcher() throws Exception {
        MediaFetcher strict = new MediaFetcher(List.of("localhost"), null);
        ApiException e = org.junit.jupiter.api.Assertions.assertThrows(ApiException.class,
                () -> strict.fetch("http://localhost:" + media.getAddress().getPort() + "/x.png", 1000, "p"));
        assertEquals(400, e.status);
        assertTrue(e.getMessage().contains("non-public address"), e.getMessage());
        ApiException file = org.junit.jupiter.api.Assertions.assertThrows(ApiException.class,
                () -> strict.fetch("file:///etc/passwd", 1000, "p"));
        assertTrue(file.getMessage().contains("--allowed-local-media-path"), file.getMessage());
        for (String address : List.of("10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "127.0.0.1",
                "100.64.0.1", "0.0.0.0", "::1", "fd00::1", "fe80::1")) {
            assertFalse(MediaFetcher.isPublic(InetAddress.getByName(address)), address);
        }
        assertTrue(MediaFetcher.isPublic(InetAddress.getByName("93.184.215.14")));
    }

    @Test
    void theKeyIsRequiredWhereItIsSet() throws Exception {
        Http.Reply none = Http.get(base, "/v1/models");
        assertEquals(401, none.status());
        assertEquals("authentication_error", none.json().at("/error/type").asText());
        assertEquals(401, Http.get(base, "/v1/models", "Authorization", "Bearer wrong").status());
        assertEquals(200, Http.get(base, "/v1/models", KEY).status());
        assertEquals(401, Http.get(base, "/metrics").status());
        assertTrue(Http.get(base, "/health").headers().firstValue("Access-Control-Allow-Origin").isEmpty(),
                "CORS is off unless configured");
    }

    @Test
    void slowLorisConnectionsDoNotStopTheServer() throws Exception {
        List<Socket> slow = new ArrayList<>();
        try {
            for (int i = 0; i < 300; i++) {
                Socket s = new Socket(InetAddress.getLoopbackAddress(), server.port());
                OutputStream out = s.getOutputStream();
                out.write("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nX-Slow: ".getBytes(StandardCharsets.US_ASCII));
                out.flush();
                slow.add(s);
            }
            long start = System.nanoTime();
            assertEquals(200, Http.get(base, "/health").status());
            assertTrue((System.nanoTime() - start) / 1e9 < 5, "answered beside 300 half-sent requests");
        } finally {
            for (Socket s : slow) s.close();
        }
    }
}
