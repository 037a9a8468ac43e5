package xllm.server;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;

/** A small HTTP client for the server tests: JSON posts, SSE streams read to the end, and request bodies. */
final class Http {

    static final ObjectMapper JSON = new ObjectMapper();
    private static final HttpClient CLIENT = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();

    record Reply(int status, String body, java.net.http.HttpHeaders headers) {
        JsonNode json() throws IOException {
            return JSON.readTree(body);
        }

        /** The {@code data:} payloads of an SSE body, in order ({@code [DONE]} included). */
        List<String> events() {
            List<String> out = new ArrayList<>();
            for (String line : body.split("\n")) if (line.startsWith("data: ")) out.add(line.substring(6));
            return out;
        }
    }

    static Reply get(URI base, String path, String... headers) throws Exception {
        HttpRequest.Builder b = HttpRequest.newBuilder(base.resolve(path)).timeout(Duration.ofSeconds(120)).GET();
        if (headers.length > 0) b.headers(headers);
        return send(b.build());
    }

    static Reply post(URI base, String path, String contentType, String body, String... headers) throws Exception {
        HttpRequest.Builder b = HttpRequest.newBuilder(base.resolve(path)).timeout(Duration.ofSeconds(300))
                .header("Content-Type", contentType).POST(HttpRequest.BodyPublishers.ofString(body));
        if (headers.length > 0) b.headers(headers);
        return send(b.build());
    }

    static Reply chat(URI base, Object body, String... headers) throws Exception {
        return post(base, "/v1/chat/completions", "application/json", JSON.writeValueAsString(body), headers);
    }

    private static Reply send(HttpRequest request) throws Exception {
        HttpResponse<String> r = CLIENT.send(request, HttpResponse.BodyHandlers.ofString());
        return new Reply(r.statusCode(), r.body(), r.headers());
    }

    static String dataUrl(String mime, Path file) throws IOException {
        return "data:" + mime + ";base64," + Base64.getEncoder().encodeToString(Files.readAllBytes(file));
    }

    static String base64(Path file) throws IOException {
        return Base64.getEncoder().encodeToString(Files.readAllBytes(file));
    }
}
