package xllm.server;

import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.Socket;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The server under load, on the real SmolLM2 text model: a client that disconnects stops its generation (the
 * cancellation metric counts it and fewer tokens are generated than asked), requests beyond batch + queue get 429
 * with Retry-After, and a request over the time limit gets 504.
 */
class LoadBehaviourTest {

    static XllmServer server;
    static URI base;

    @BeforeAll
    static void start() throws Exception {
        // one running request and none waiting: the second concurrent request is refused
        server = XllmServer.start("smollm2-135m-instruct", ServerOptions.local().withWork(1, 0, Duration.ofSeconds(60)));
        base = server.uri();
    }

    @AfterAll
    static void stop() {
        if (server != null) server.close();
    }

    static String longRequest(boolean stream) throws Exception {
        return Http.JSON.writeValueAsString(Map.of("messages", List.of(Map.of("role", "user",
                "content", "Write a very long story about a lighthouse keeper.")), "max_tokens", 2000, "stream", stream,
                "temperature", 0.8, "seed", 7));
    }

    /** Opens a stream on a raw socket and reads until its first content chunk; the caller closes the socket. */
    static Socket streamUntilFirstToken() throws Exception {
        Socket socket = new Socket(InetAddress.getLoopbackAddress(), server.port());
        byte[] body = longRequest(true).getBytes(StandardCharsets.UTF_8);
        OutputStream out = socket.getOutputStream();
        out.write(("POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                + "Content-Length: " + body.length + "\r\n\r\n").getBytes(StandardCharsets.US_ASCII));
        out.write(body);
        out.flush();
        BufferedReader in = new BufferedReader(new InputStreamReader(socket.getInputStream(), StandardCharsets.UTF_8));
        assertTrue(in.readLine().contains(" 200 "));
        String line;
        while ((line = in.readLine()) != null) {
            if (line.startsWith("data: ") && line.contains("\"content\":\"") && !line.contains("\"content\":\"\"")) break;
        }
        return socket;
    }

    static long metric(String name) throws Exception {
        for (String line : Http.get(base, "/metrics").body().split("\n")) {
            if (line.startsWith(name + " ")) return (long) Double.parseDouble(line.substring(name.length() + 1));
        }
        throw new AssertionError("no metric " + name);
    }

    @Test
    void aRequestBeyondTheBoundGets429AndADisconnectStopsItsGeneration() throws Exception {
        long cancelled = metric("xllm_cancelled_total"), tokens = metric("xllm_completion_tokens_total");
        Socket running = streamUntilFirstToken();
        try {
            Http.Reply refused = Http.post(base, "/v1/chat/completions", "application/json", longRequest(false));
            assertEquals(429, refused.status(), refused.body());
            assertEquals("rate_limit_error", refused.json().at("/error/type").asText());
            assertEquals("1", refused.headers().firstValue("Retry-After").orElse(""));
        } finally {
            running.close();
        }
        long deadline = System.nanoTime() + 30_000_000_000L;
        while (metric("xllm_cancelled_total") == cancelled && System.nanoTime() < deadline) Thread.sleep(100);
        assertEquals(cancelled + 1, metric("xllm_cancelled_total"), "the disconnect was counted");
        while (metric("xllm_running_requests") > 0 && System.nanoTime() < deadline) Thread.sleep(100);
        long generated = metric("xllm_completion_tokens_total") - tokens;
        assertTrue(generated < 1000, "generation stopped early: " + generated + " of 2000 tokens");
        // the place is free again
        JsonNode ok = Http.chat(base, Map.of("messages", List.of(Map.of("role", "user", "content", "Hi")),
                "max_tokens", 2)).json();
        assertEquals(2, ok.at("/usage/completion_tokens").asInt());
    }

    @Test
    void aRequestOverTheTimeLimitGets504() throws Exception {
        try (XllmServer quick = XllmServer.start("smollm2-135m-instruct",
                ServerOptions.local().withWork(1, 1, Duration.ofMillis(1500)))) {
            Http.Reply reply = Http.post(quick.uri(), "/v1/chat/completions", "application/json", longRequest(false));
            assertEquals(504, reply.status(), reply.body());
            assertTrue(reply.json().at("/error/message").asText().contains("limit of 1 s"), reply.body());
            CompletableFuture<Http.Reply> after = CompletableFuture.supplyAsync(() -> {
                try {
                    return Http.chat(quick.uri(), Map.of("messages", List.of(Map.of("role", "user", "content", "Hi")),
                            "max_tokens", 1));
                } catch (Exception e) {
                    throw new IllegalStateException(e);
                }
            });
            assertEquals(200, after.join().status(), "the timed-out generation gave its place back");
        }
    }
}
