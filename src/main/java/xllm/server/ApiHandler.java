package xllm.server;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.StreamReadConstraints;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.eclipse.jetty.http.HttpHeader;
import org.eclipse.jetty.io.Content;
import org.eclipse.jetty.server.Handler;
import org.eclipse.jetty.server.Request;
import org.eclipse.jetty.server.Response;
import org.eclipse.jetty.util.Callback;
import xllm.llm.Generator;
import xllm.llm.Sampler;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.util.HexFormat;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;

/**
 * The HTTP surface: routes, the bearer key, CORS, the web page, and {@code POST /v1/chat/completions} with its
 * body limit, checks, admission, and the answer as one JSON body or as server-sent events. Errors are OpenAI's error
 * body with the right 4xx. By default only method, path, status, sizes and timings are logged.
 */
final class ApiHandler extends Handler.Abstract {

    /** How often a waiting stream sends an SSE comment: it keeps proxies open and shows a gone client quickly. */
    private static final long KEEP_ALIVE_MS = 1_000;

    private static final Map<String, String> WEB = Map.of("/", "index.html", "/index.html", "index.html",
            "/app.js", "app.js", "/style.css", "style.css");

    private final ServedModel model;
    private final Scheduler scheduler;
    private final ServerOptions options;
    private final MediaFetcher fetcher;
    private final ExecutorService encoder;
    private final Metrics metrics;
    private final ObjectMapper json;

    ApiHandler(ServedModel model, Scheduler scheduler, ServerOptions options, MediaFetcher fetcher,
               ExecutorService encoder, Metrics metrics) {
        this.model = model;
        this.scheduler = scheduler;
        this.options = options;
        this.fetcher = fetcher;
        this.encoder = encoder;
        this.metrics = metrics;
        this.json = new ObjectMapper();
        // a body may hold a base64 video of tens of MB in one string; the body limit bounds it
        json.getFactory().setStreamReadConstraints(StreamReadConstraints.builder()
                .maxStringLength((int) Math.min(Integer.MAX_VALUE, options.maxBodyBytes())).build());
    }

    /** What one request did, for the log line. */
    private static final class Outcome {
        int status = 200;
        long bytesIn;
        double ttft = Double.NaN;
        int tokens;
        String text;
    }

    @Override
    public boolean handle(Request request, Response response, Callback callback) {
        long start = System.nanoTime();
        String path = Request.getPathInContext(request);
        String method = request.getMethod();
        Outcome outcome = new Outcome();
        response.getHeaders().put("X-Content-Type-Options", "nosniff");
        if (options.corsOrigin() != null) {
            response.getHeaders().put("Access-Control-Allow-Origin", options.corsOrigin());
            response.getHeaders().put("Vary", "Origin");
        }
        try {
            if (method.equals("OPTIONS") && options.corsOrigin() != null) {
                response.getHeaders().put("Access-Control-Allow-Methods", "GET, POST, OPTIONS");
                response.getHeaders().put("Access-Control-Allow-Headers", "Authorization, Content-Type");
                response.getHeaders().put("Access-Control-Max-Age", "600");
                outcome.status = 204;
                response.setStatus(204);
                callback.succeeded();
            } else if (WEB.containsKey(path)) {
                requireMethod(method, "GET");
                page(WEB.get(path), response, callback);
            } else {
                switch (path) {
                    case "/health" -> {
                        requireMethod(method, "GET");
                        send(response, callback, 200, "application/json", "{\"status\":\"ok\"}");
                    }
                    case "/v1/models" -> {
                        requireMethod(method, "GET");
                        authorize(request);
                        send(response, callback, 200, "application/json", json.writeValueAsString(models()));
                    }
                    case "/metrics" -> {
                        requireMethod(method, "GET");
                        authorize(request);
                        send(response, callback, 200, "text/plain; version=0.0.4; charset=utf-8", metrics.render());
                    }
                    case "/v1/chat/completions" -> {
                        requireMethod(method, "POST");
                        authorize(request);
                        chat(request, response, callback, start, outcome);
                    }
                    default -> throw new ApiException(404, "not_found", null, "no such endpoint: " + path);
                }
            }
        } catch (ApiException e) {
            outcome.status = e.status;
            error(response, callback, e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            outcome.status = 503;
            error(response, callback, new ApiException(503, "shutting_down", null, "the server is stopping"));
        } catch (Exception e) {
            outcome.status = 500;
            error(response, callback, new ApiException(500, "internal_error", null, "internal error: " + e));
        }
        metrics.status(outcome.status);
        log(method, path, outcome, start);
        return true;
    }

    private void log(String method, String path, Outcome o, long start) {
        StringBuilder line = new StringBuilder(String.format(Locale.ROOT, "%s %s %d in=%,dB %.3fs", method, path,
                o.status, o.bytesIn, (System.nanoTime() - start) / 1e9));
        if (!Double.isNaN(o.ttft)) line.append(String.format(Locale.ROOT, " ttft=%.3fs tokens=%d", o.ttft, o.tokens));
        if (options.logRequests() && o.text != null) line.append(" text=").append(json.valueToTree(o.text));
        System.err.println(line);
    }

    private ObjectNode models() {
        ObjectNode out = json.createObjectNode().put("object", "list");
        ObjectNode entry = out.putArray("data").addObject().put("id", model.id()).put("object", "model")
                .put("created", model.created()).put("owned_by", "xllm");
        ArrayNode modalities = entry.putArray("modalities");
        model.modalities().forEach(modalities::add);
        return out;
    }

    private static void requireMethod(String method, String wanted) throws ApiException {
        if (!method.equals(wanted)) throw new ApiException(405, "method_not_allowed", null, method + " is not allowed here; use " + wanted);
    }

    private void authorize(Request request) throws ApiException {
        if (options.apiKey() == null) return;
        String header = request.getHeaders().get(HttpHeader.AUTHORIZATION);
        String given = header != null && header.regionMatches(true, 0, "Bearer ", 0, 7) ? header.substring(7).strip() : "";
        if (!MessageDigest.isEqual(given.getBytes(StandardCharsets.UTF_8), options.apiKey().getBytes(StandardCharsets.UTF_8))) {
            throw new ApiException(401, "invalid_api_key", null, header == null ? "missing API key: send "
                    + "'Authorization: Bearer <key>'" : "invalid API key");
        }
    }

    private void page(String name, Response response, Callback callback) throws Exception {
        try (InputStream in = ApiHandler.class.getResourceAsStream("/xllm/web/" + name)) {
            if (in == null) throw new ApiException(404, "not_found", null, "the web page is not in this build: " + name);
            String type = name.endsWith(".html") ? "text/html; charset=utf-8"
                    : name.endsWith(".js") ? "text/javascript; charset=utf-8" : "text/css; charset=utf-8";
            response.getHeaders().put("Cache-Control", "no-cache");
            response.getHeaders().put("Content-Security-Policy", "default-src 'self'; img-src 'self' data: blob:; "
                    + "media-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; script-src 'self'; "
                    + "connect-src 'self'; frame-ancestors 'none'");
            send(response, callback, 200, type, new String(in.readAllBytes(), StandardCharsets.UTF_8));
        }
    }

    private void chat(Request request, Response response, Callback callback, long start, Outcome outcome)
            throws Exception {
        String type = request.getHeaders().get(HttpHeader.CONTENT_TYPE);
        if (type == null || !type.toLowerCase(Locale.ROOT).startsWith("application/json")) {
            throw new ApiException(415, "unsupported_media_type", null, "Content-Type must be application/json, got "
                    + (type == null ? "none" : "'" + type + "'"));
        }
        byte[] body = readBody(request);
        outcome.bytesIn = body.length;
        JsonNode node;
        try {
            node = json.readTree(body);
        } catch (JsonProcessingException e) {
            throw ApiException.badRequest(null, "malformed JSON: " + e.getOriginalMessage());
        }
        ChatRequest chat = ChatRequest.parse(node, options.limits());
        if (chat.model() != null && !chat.model().equals(model.id())) {
            throw new ApiException(404, "model_not_found", "model", "the model '" + chat.model() + "' is not served "
                    + "here; GET /v1/models lists '" + model.id() + "'");
        }
        if (options.logRequests()) outcome.text = chat.messages().get(chat.messages().size() - 1).text();
        Scheduler.Job job = null;
        try (Scheduler.Place place = scheduler.admit()) {
            ServedModel.Prompt prompt = model.prepare(chat, fetcher, options.limits(), encoder);
            Sampler.Options sampling = chat.temperature() == 0f ? new Sampler.Options(0f, 0, 1f, 1f, chat.seed())
                    : new Sampler.Options(chat.temperature(), 0, chat.topP(), 1f, chat.seed());
            job = scheduler.submit(prompt, new Generator.Options(chat.maxTokens(), sampling, chat.stop()));
            Scheduler.Job submitted = job;
            request.addFailureListener(failure -> submitted.cancel()); // the connection broke
            long deadline = start + options.timeout().toNanos();
            if (chat.stream()) stream(chat, job, place, response, callback, start, deadline, outcome);
            else whole(job, place, response, callback, start, deadline, outcome);
        } finally {
            if (job != null) job.cancel();  // ends nothing that finished; stops what the client or clock gave up on
        }
    }

    /**
     * How much of an oversized body is read and thrown away before the 413 goes out: a client (HTTP/1.1, no
     * {@code Expect: 100-continue}) is still sending it, and a connection closed under it would lose the response.
     * Beyond this the connection is closed and the client may see a reset instead.
     */
    private static final long DRAIN_LIMIT = 256L << 20;

    /** The body, refused with 413 past the limit (by Content-Length before keeping any, or while reading). */
    private byte[] readBody(Request request) throws ApiException, IOException {
        long declared = request.getLength();
        try (InputStream in = Content.Source.asInputStream(request)) {
            if (declared > options.maxBodyBytes()) {
                drain(in, declared);
                throw ApiException.tooLarge(null, String.format("request body of %,d bytes exceeds the limit of %,d "
                        + "bytes", declared, options.maxBodyBytes()));
            }
            byte[] body = in.readNBytes((int) Math.min(Integer.MAX_VALUE - 8, options.maxBodyBytes() + 1));
            if (body.length > options.maxBodyBytes()) {
                drain(in, Long.MAX_VALUE);
                throw ApiException.tooLarge(null, String.format("request body exceeds the limit of %,d bytes",
                        options.maxBodyBytes()));
            }
            return body;
        }
    }

    /** Reads and discards what the client still sends, up to {@link #DRAIN_LIMIT} (or its declared length). */
    private static void drain(InputStream in, long declared) throws IOException {
        byte[] sink = new byte[64 << 10];
        long left = Math.min(declared, DRAIN_LIMIT);
        while (left > 0) {
            int n = in.read(sink, 0, (int) Math.min(sink.length, left));
            if (n < 0) return;
            left -= n;
        }
    }

    /** Waits for the whole answer, then sends one chat.completion. */
    private void whole(Scheduler.Job job, Scheduler.Place place, Response response, Callback callback, long start,
                       long deadline, Outcome outcome) throws Exception {
        while (true) {
            Scheduler.Event event = next(job, deadline);
            if (event == null) throw timeout();
            if (event instanceof Scheduler.Delta && Double.isNaN(outcome.ttft)) {
                outcome.ttft = (System.nanoTime() - start) / 1e9;
                metrics.timeToFirstToken(outcome.ttft);
            } else if (event instanceof Scheduler.Failed failed) {
                throw failure(failed.error());
            } else if (event instanceof Scheduler.Done done) {
                Generator.Completion c = done.completion();
                count(c, outcome);
                ObjectNode body = envelope("chat.completion");
                ObjectNode choice = body.putArray("choices").addObject().put("index", 0);
                choice.putObject("message").put("role", "assistant").put("content", c.text());
                choice.put("finish_reason", finishReason(c));
                body.set("usage", usage(c));
                place.close();
                send(response, callback, 200, "application/json", json.writeValueAsString(body));
                return;
            }
        }
    }

    /** Sends the answer as server-sent events while it is generated. */
    private void stream(ChatRequest chat, Scheduler.Job job, Scheduler.Place place, Response response,
                        Callback callback, long start, long deadline, Outcome outcome) throws Exception {
        response.setStatus(200);
        response.getHeaders().put(HttpHeader.CONTENT_TYPE, "text/event-stream; charset=utf-8");
        response.getHeaders().put(HttpHeader.CACHE_CONTROL, "no-cache");
        response.getHeaders().put("X-Accel-Buffering", "no");
        metrics.activeStreams.incrementAndGet();
        OutputStream out = Content.Sink.asOutputStream(response);
        ObjectNode base = envelope("chat.completion.chunk");
        try {
            ObjectNode first = chunk(base);
            ((ObjectNode) first.get("choices").get(0)).putObject("delta").put("role", "assistant").put("content", "");
            event(out, first);
            while (true) {
                Scheduler.Event event = next(job, Math.min(deadline, System.nanoTime() + KEEP_ALIVE_MS * 1_000_000));
                if (event == null) {
                    if (System.nanoTime() >= deadline) {
                        job.cancel();
                        outcome.status = 504;
                        event(out, errorBody(timeout()));
                        break;
                    }
                    write(out, ": keep-alive\n\n");
                } else if (event instanceof Scheduler.Delta delta) {
                    if (Double.isNaN(outcome.ttft)) {
                        outcome.ttft = (System.nanoTime() - start) / 1e9;
                        metrics.timeToFirstToken(outcome.ttft);
                    }
                    ObjectNode c = chunk(base);
                    ((ObjectNode) c.get("choices").get(0)).putObject("delta").put("content", delta.text());
                    event(out, c);
                } else if (event instanceof Scheduler.Failed failed) {
                    ApiException e = failure(failed.error());
                    outcome.status = e.status;
                    event(out, errorBody(e));
                    break;
                } else {
                    Generator.Completion c = ((Scheduler.Done) event).completion();
                    count(c, outcome);
                    ObjectNode last = chunk(base);
                    ((ObjectNode) last.get("choices").get(0)).put("finish_reason", finishReason(c)).putObject("delta");
                    event(out, last);
                    if (chat.usageInStream()) {
                        ObjectNode usage = base.deepCopy();
                        usage.putArray("choices");
                        usage.set("usage", usage(c));
                        event(out, usage);
                    }
                    break;
                }
            }
            place.close();
            write(out, "data: [DONE]\n\n");
            out.close();
            callback.succeeded();
        } catch (IOException gone) { // the client closed the connection: stop its generation
            job.cancel();
            metrics.cancelled.incrementAndGet();
            outcome.status = 499;
            callback.failed(gone);
        } finally {
            metrics.activeStreams.decrementAndGet();
        }
    }

    /** The next event, or null at {@code until} (System.nanoTime). */
    private static Scheduler.Event next(Scheduler.Job job, long until) throws InterruptedException {
        long wait = until - System.nanoTime();
        return wait <= 0 ? job.events.poll() : job.events.poll(wait, TimeUnit.NANOSECONDS);
    }

    private ApiException timeout() {
        metrics.timedOut.incrementAndGet();
        return new ApiException(504, "timeout", null, "the request took longer than the server's limit of "
                + options.timeout().toSeconds() + " s");
    }

    /** A decode failure as the client sees it: its own fault (a prompt over the context) is a 400. */
    private static ApiException failure(Exception e) {
        if (e instanceof IllegalArgumentException) return ApiException.badRequest("messages", e.getMessage());
        return new ApiException(500, "generation_failed", null, "generation failed: " + e);
    }

    private void count(Generator.Completion c, Outcome outcome) {
        outcome.tokens = c.tokenIds().length;
        metrics.promptTokens.addAndGet(c.promptTokens());
        metrics.completionTokens.addAndGet(c.tokenIds().length);
    }

    private static String finishReason(Generator.Completion c) {
        return c.finishReason() == Generator.FinishReason.STOP ? "stop" : "length";
    }

    private ObjectNode usage(Generator.Completion c) {
        return json.createObjectNode().put("prompt_tokens", c.promptTokens())
                .put("completion_tokens", c.tokenIds().length)
                .put("total_tokens", c.promptTokens() + c.tokenIds().length);
    }

    private ObjectNode envelope(String object) {
        byte[] id = new byte[12];
        ThreadLocalRandom.current().nextBytes(id);
        return json.createObjectNode().put("id", "chatcmpl-" + HexFormat.of().formatHex(id)).put("object", object)
                .put("created", System.currentTimeMillis() / 1000).put("model", model.id());
    }

    private static ObjectNode chunk(ObjectNode base) {
        ObjectNode c = base.deepCopy();
        c.putArray("choices").addObject().put("index", 0).putNull("finish_reason");
        return c;
    }

    private void event(OutputStream out, ObjectNode data) throws IOException {
        write(out, "data: " + json.writeValueAsString(data) + "\n\n");
    }

    private static void write(OutputStream out, String text) throws IOException {
        out.write(text.getBytes(StandardCharsets.UTF_8));
        out.flush();
    }

    ObjectNode errorBody(ApiException e) {
        ObjectNode body = json.createObjectNode();
        ObjectNode error = body.putObject("error").put("message", e.getMessage()).put("type", e.type);
        if (e.param == null) error.putNull("param");
        else error.put("param", e.param);
        error.put("code", e.code);
        return body;
    }

    private void error(Response response, Callback callback, ApiException e) {
        if (response.isCommitted()) { // a stream already under way cannot change its status
            callback.failed(e);
            return;
        }
        if (e.status == 429) response.getHeaders().put(HttpHeader.RETRY_AFTER, "1");
        if (e.status == 401) response.getHeaders().put(HttpHeader.WWW_AUTHENTICATE, "Bearer");
        try {
            send(response, callback, e.status, "application/json", json.writeValueAsString(errorBody(e)));
        } catch (JsonProcessingException impossible) {
            callback.failed(impossible);
        }
    }

    private static void send(Response response, Callback callback, int status, String type, String body) {
        response.setStatus(status);
        response.getHeaders().put(HttpHeader.CONTENT_TYPE, type);
        Content.Sink.write(response, true, body, callback);
    }
}
