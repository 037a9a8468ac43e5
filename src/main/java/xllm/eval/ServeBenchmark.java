package xllm.eval;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import xllm.data.ProgressBar;

import javax.imageio.ImageIO;
import java.awt.image.BufferedImage;
import java.io.BufferedReader;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.lang.management.ManagementFactory;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Base64;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

/**
 * {@code ./xllm bench serve}: the HTTP server under concurrent streaming clients, beside llama.cpp's server
 * (llama-cpp-python's {@code llama_cpp.server}) on the same GGUF. Every server runs in a process of its own, so that
 * its peak RSS (VmHWM) is its own, and both use the same threads.
 * <ol>
 *   <li>Text: C clients start together and each asks R streamed questions in turn (greedy, the same prompts and
 *       token budget on both servers). A 429 is retried after its Retry-After; the first wave is checked against the
 *       admission bound: exactly {@code C - (maxBatch + queue)} refusals when no answer ends before the wave is in.</li>
 *   <li>Image + spoken question (given an X-LLM checkpoint): one client alone (time to first token with the encoders
 *       run, then with the media cached), then C clients at once. Every request carries its own variant of the image
 *       and the WAV (one pixel, one sample changed), so the encoders run for every request.</li>
 *   <li>Cancellation: a stream whose client closes the socket after its first token must raise
 *       {@code xllm_cancelled_total}.</li>
 * </ol>
 */
public final class ServeBenchmark {

    /**
     * @param llm              the text LLM xllm serves for the text phase (a model name or path)
     * @param gguf             the GGUF file of that LLM, which llama.cpp serves
     * @param xllmModel        an X-LLM checkpoint for the image + speech phase, or null to skip it
     * @param image            the image of the image + speech phase
     * @param wav              the spoken question (16 kHz WAV) of the image + speech phase
     * @param clients          concurrent clients
     * @param requestsPerClient questions each client asks in turn
     * @param maxTokens        answer budget of every request
     * @param logDir           where the servers' logs go
     */
    public record Config(String llm, Path gguf, String xllmModel, Path image, Path wav, int clients,
                         int requestsPerClient, int maxTokens, int maxBatch, int queue, int threads, boolean peer,
                         Path logDir) {}

    static final List<String> PROMPTS = List.of(
            "Write a short poem about the sea.",
            "Explain what a rainbow is to a child.",
            "Give three tips for learning to cook.",
            "Describe a busy train station in the morning.",
            "What makes a good friend?",
            "Tell a short story about a lost key.",
            "Why do leaves change colour in autumn?",
            "List some things to pack for a picnic.");

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final int ALONE_REPEATS = 5;

    private ServeBenchmark() {}

    public static BenchmarkReport run(Config config) throws Exception {
        BenchmarkReport report = new BenchmarkReport("serve")
                .config("llm", config.llm()).config("gguf", config.gguf().toString())
                .config("xllm_model", config.xllmModel()).config("clients", config.clients())
                .config("requests_per_client", config.requestsPerClient()).config("max_tokens", config.maxTokens())
                .config("max_batch", config.maxBatch()).config("queue", config.queue())
                .config("threads", config.threads());
        Files.createDirectories(config.logDir());
        HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1)
                .connectTimeout(Duration.ofSeconds(10)).build();
        int bound = config.maxBatch() + config.queue();

        try (Server xllm = Server.start("xllm", xllmCommand(config.llm(), config), config.logDir().resolve("xllm-text.log"))) {
            Phase text = Phase.run("text on xllm", http, xllm, config.clients(), config.requestsPerClient(),
                    k -> textRequest(xllm.modelId, k, config.maxTokens()));
            text.report(report, "xllm", "text");
            report.add("xllm", "text first-wave 429s", text.firstWaveRefusals(), "count");
            report.add("xllm", "text expected first wave", Math.max(0, config.clients() - bound), "count");
            report.add("xllm", "text server peak RSS", xllm.peakRssMb(), "MB");
            cancellation(xllm, config, report);
        }

        if (config.peer()) {
            try (Server peer = Server.start("llama.cpp", peerCommand(config), config.logDir().resolve("llama-cpp.log"))) {
                Phase text = Phase.run("text on llama.cpp", http, peer, config.clients(), config.requestsPerClient(),
                        k -> textRequest(peer.modelId, k, config.maxTokens()));
                text.report(report, "llama.cpp", "text");
                report.add("llama.cpp", "text server peak RSS", peer.peakRssMb(), "MB");
            } catch (IOException e) {
                for (String metric : List.of("text TTFT p50", "text TTFT p95", "text tokens/s")) {
                    report.failed("llama.cpp", metric, "", e.getMessage());
                }
            }
            report.ratio("text tokens/s", "xllm", "llama.cpp", true);
            report.ratio("text TTFT p50", "xllm", "llama.cpp", false);
            report.ratio("text TTFT p95", "xllm", "llama.cpp", false);
        } else {
            report.failed("llama.cpp", "text tokens/s", "", "not run (--no-peer)");
        }

        if (config.xllmModel() != null) {
            Media media = new Media(config.image(), config.wav());
            try (Server xllm = Server.start("xllm", xllmCommand(config.xllmModel(), config),
                    config.logDir().resolve("xllm-multimodal.log"))) {
                List<Answer> alone = new ArrayList<>();
                for (int k = 0; k < ALONE_REPEATS; k++) {
                    alone.add(ask(http, xllm.base, mediaRequest(xllm.modelId, media, k, config.maxTokens())));
                }
                Answer cached = ask(http, xllm.base, mediaRequest(xllm.modelId, media, ALONE_REPEATS - 1,
                        config.maxTokens()));
                report.add("xllm", "image+speech TTFT alone p50", percentile(ttfts(alone, false), 50), "s");
                report.add("xllm", "image+speech TTFT alone max", percentile(ttfts(alone, false), 100), "s");
                report.add("xllm", "image+speech TTFT cached", cached.ttft(), "s");
                Phase load = Phase.run("image + speech on xllm", http, xllm, config.clients(),
                        config.requestsPerClient(), k -> mediaRequest(xllm.modelId, media, ALONE_REPEATS + k,
                                config.maxTokens()));
                load.report(report, "xllm", "image+speech");
                report.add("xllm", "X-LLM server peak RSS", xllm.peakRssMb(), "MB");
            }
        }
        return report;
    }

    // ---- the servers ---------------------------------------------------------------------------------------------

    /** xllm's server in a new JVM of this JVM's kind: the same java, flags and class path. */
    static List<String> xllmCommand(String model, Config config) {
        List<String> command = new ArrayList<>();
        command.add(ProcessHandle.current().info().command().orElse("java"));
        command.addAll(ManagementFactory.getRuntimeMXBean().getInputArguments());
        command.addAll(List.of("-cp", System.getProperty("java.class.path"), "xllm.serve.Main", "serve",
                "--model", model, "--port", "{port}", "--max-batch", String.valueOf(config.maxBatch()),
                "--queue", String.valueOf(config.queue())));
        return command;
    }

    /** llama-cpp-python's OpenAI server on the GGUF, one request at a time in arrival order (its only mode). */
    static List<String> peerCommand(Config config) throws IOException {
        return List.of(PeerProcess.python().toString(), "-m", "llama_cpp.server", "--model", config.gguf().toString(),
                "--host", "127.0.0.1", "--port", "{port}", "--n_threads", String.valueOf(config.threads()),
                "--n_threads_batch", String.valueOf(config.threads()), "--n_ctx", "2048",
                "--interrupt_requests", "False");
    }

    /** A server process on a free local port, ready once {@code GET /v1/models} answers. */
    static final class Server implements AutoCloseable {
        final String name;
        final Process process;
        final URI base;
        final String modelId;

        private Server(String name, Process process, URI base, String modelId) {
            this.name = name;
            this.process = process;
            this.base = base;
            this.modelId = modelId;
        }

        static Server start(String name, List<String> command, Path log) throws IOException, InterruptedException {
            int port;
            try (ServerSocket probe = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
                port = probe.getLocalPort();
            }
            List<String> withPort = command.stream().map(a -> a.equals("{port}") ? String.valueOf(port) : a).toList();
            System.err.printf("bench serve: starting %s (log: %s)%n", name, log);
            ProcessBuilder builder = new ProcessBuilder(withPort).redirectErrorStream(true).redirectOutput(log.toFile());
            if (name.equals("xllm")) { // as ./xllm serve runs
                builder.environment().putIfAbsent("MALLOC_ARENA_MAX", "2");
                builder.environment().putIfAbsent("OMP_WAIT_POLICY", "PASSIVE");
            }
            Process process = builder.start();
            URI base = URI.create("http://127.0.0.1:" + port);
            HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(2)).build();
            long until = System.nanoTime() + Duration.ofMinutes(5).toNanos();
            while (true) {
                if (!process.isAlive()) {
                    throw new IOException(name + " exited with code " + process.exitValue() + " before it was ready; "
                            + "the end of " + log + ":\n" + tail(log));
                }
                try {
                    HttpResponse<String> r = http.send(HttpRequest.newBuilder(base.resolve("/v1/models"))
                            .timeout(Duration.ofSeconds(5)).build(), HttpResponse.BodyHandlers.ofString());
                    if (r.statusCode() == 200) {
                        return new Server(name, process, base, JSON.readTree(r.body()).at("/data/0/id").asText());
                    }
                } catch (IOException notYet) {
                    // not listening yet
                }
                if (System.nanoTime() > until) {
                    process.destroyForcibly();
                    throw new IOException(name + " was not ready within 5 minutes; the end of " + log + ":\n" + tail(log));
                }
                Thread.sleep(250);
            }
        }

        /** Peak resident memory of the server process (VmHWM), in MB. */
        double peakRssMb() throws IOException {
            for (String line : Files.readAllLines(Path.of("/proc", String.valueOf(process.pid()), "status"))) {
                if (line.startsWith("VmHWM:")) return Long.parseLong(line.replaceAll("\\D", "")) / 1024.0;
            }
            throw new IOException("no VmHWM for " + name + " (pid " + process.pid() + ")");
        }

        @Override
        public void close() throws InterruptedException {
            process.destroy();
            if (!process.waitFor(20, java.util.concurrent.TimeUnit.SECONDS)) process.destroyForcibly().waitFor();
        }

        private static String tail(Path log) throws IOException {
            List<String> lines = Files.readAllLines(log, StandardCharsets.UTF_8);
            return String.join("\n", lines.subList(Math.max(0, lines.size() - PeerProcess.TAIL_LINES), lines.size()));
        }
    }

    // ---- the clients ---------------------------------------------------------------------------------------------

    /**
     * One streamed answer: time to its first content token (from the attempt that was admitted, and from the first
     * attempt, so with any 429 waits), its length, and how often it was refused first.
     */
    record Answer(double ttft, double ttftSinceFirstAttempt, double seconds, int tokens, int refusals, String error) {}

    static Answer ask(HttpClient http, URI base, String body) throws InterruptedException {
        long first = System.nanoTime();
        int refusals = 0;
        while (true) {
            HttpRequest request = HttpRequest.newBuilder(base.resolve("/v1/chat/completions"))
                    .timeout(Duration.ofMinutes(10)).header("Content-Type", "application/json")
                    .POST(HttpRequest.BodyPublishers.ofString(body)).build();
            long sent = System.nanoTime();
            try {
                HttpResponse<InputStream> response = http.send(request, HttpResponse.BodyHandlers.ofInputStream());
                try (InputStream in = response.body()) {
                    if (response.statusCode() == 429) {
                        in.readAllBytes();
                        refusals++;
                        if (refusals > 1_000) return failed(refusals, "refused 1000 times");
                        Thread.sleep(1000 * response.headers().firstValueAsLong("Retry-After").orElse(1));
                        continue;
                    }
                    if (response.statusCode() != 200) {
                        return failed(refusals, "HTTP " + response.statusCode() + ": "
                                + new String(in.readAllBytes(), StandardCharsets.UTF_8));
                    }
                    return read(in, first, sent, refusals);
                }
            } catch (IOException e) {
                return failed(refusals, e.toString());
            }
        }
    }

    private static Answer failed(int refusals, String error) {
        return new Answer(Double.NaN, Double.NaN, Double.NaN, 0, refusals, error);
    }

    private static Answer read(InputStream in, long first, long sent, int refusals) throws IOException {
        BufferedReader lines = new BufferedReader(new InputStreamReader(in, StandardCharsets.UTF_8));
        long firstToken = -1;
        int chunks = 0;
        int usageTokens = -1;
        boolean done = false;
        for (String line; (line = lines.readLine()) != null; ) {
            if (!line.startsWith("data:")) continue;
            String data = line.substring(5).strip();
            if (data.equals("[DONE]")) {
                done = true;
                continue;
            }
            JsonNode chunk = JSON.readTree(data);
            if (chunk.has("error")) return failed(refusals, "error event: " + chunk.get("error"));
            if (chunk.hasNonNull("usage")) usageTokens = chunk.at("/usage/completion_tokens").asInt();
            String piece = chunk.at("/choices/0/delta/content").asText("");
            if (!piece.isEmpty()) {
                if (firstToken < 0) firstToken = System.nanoTime();
                chunks++;
            }
        }
        long end = System.nanoTime();
        if (!done) return failed(refusals, "the stream ended without [DONE]");
        if (firstToken < 0) firstToken = end; // an empty answer: its first token is its end
        return new Answer((firstToken - sent) / 1e9, (firstToken - first) / 1e9, (end - sent) / 1e9,
                usageTokens >= 0 ? usageTokens : chunks, refusals, null);
    }

    /** The body of request number k. */
    interface Body {
        String of(int k) throws IOException;
    }

    /** C clients started together, each asking its questions in turn; request k of client c is number c·R + k. */
    record Phase(String name, List<List<Answer>> perClient, double wallSeconds) {

        static Phase run(String name, HttpClient http, Server server, int clients, int perClient,
                         Body request) throws Exception {
            List<String> bodies = new ArrayList<>();
            for (int k = 0; k < clients * perClient; k++) bodies.add(request.of(k));
            ProgressBar progress = ProgressBar.stderr(bodies.size(), "answer");
            progress.message(name + ": " + clients + " clients × " + perClient + " streamed questions");
            ExecutorService pool = Executors.newFixedThreadPool(clients);
            CountDownLatch go = new CountDownLatch(1);
            int[] answered = {0};
            List<Future<List<Answer>>> futures = new ArrayList<>();
            for (int c = 0; c < clients; c++) {
                int client = c;
                futures.add(pool.submit(() -> {
                    go.await();
                    List<Answer> answers = new ArrayList<>();
                    for (int k = 0; k < perClient; k++) {
                        answers.add(ask(http, server.base, bodies.get(client * perClient + k)));
                        synchronized (progress) {
                            progress.update(++answered[0], Double.NaN, Double.NaN, 1);
                        }
                    }
                    return answers;
                }));
            }
            long start = System.nanoTime();
            progress.start(0);
            go.countDown();
            List<List<Answer>> all = new ArrayList<>();
            try {
                for (Future<List<Answer>> f : futures) all.add(f.get());
            } finally {
                pool.shutdownNow();
            }
            progress.finish();
            return new Phase(name, all, (System.nanoTime() - start) / 1e9);
        }

        List<Answer> answers() {
            return perClient.stream().flatMap(List::stream).toList();
        }

        /** Refusals of the first question of every client, which all arrive at once. */
        long firstWaveRefusals() {
            return perClient.stream().filter(a -> a.get(0).refusals() > 0).count();
        }

        void report(BenchmarkReport report, String system, String prefix) {
            List<Answer> ok = answers().stream().filter(a -> a.error() == null).toList();
            List<Answer> errors = answers().stream().filter(a -> a.error() != null).toList();
            report.add(system, prefix + " TTFT p50", percentile(ttfts(ok, false), 50), "s");
            report.add(system, prefix + " TTFT p95", percentile(ttfts(ok, false), 95), "s");
            report.add(system, prefix + " TTFT p95 with 429 waits", percentile(ttfts(ok, true), 95), "s");
            report.add(system, prefix + " tokens/s", ok.stream().mapToInt(Answer::tokens).sum() / wallSeconds, "tok/s");
            report.add(system, prefix + " answers", ok.size(), "count");
            report.add(system, prefix + " errors", errors.size(), "count");
            report.add(system, prefix + " 429 responses", answers().stream().mapToInt(Answer::refusals).sum(), "count");
            if (!errors.isEmpty()) {
                System.err.printf("bench serve: %s: %d errors, the first: %s%n", name, errors.size(), errors.get(0).error());
            }
        }
    }

    static double[] ttfts(List<Answer> answers, boolean sinceFirstAttempt) {
        return answers.stream().filter(a -> a.error() == null)
                .mapToDouble(a -> sinceFirstAttempt ? a.ttftSinceFirstAttempt() : a.ttft()).toArray();
    }

    /** Nearest-rank percentile; NaN for no values. */
    static double percentile(double[] values, double p) {
        if (values.length == 0) return Double.NaN;
        double[] sorted = values.clone();
        Arrays.sort(sorted);
        int rank = (int) Math.ceil(p / 100 * sorted.length);
        return sorted[Math.max(0, Math.min(sorted.length - 1, rank - 1))];
    }

    // ---- requests ------------------------------------------------------------------------------------------------

    static String textRequest(String model, int k, int maxTokens) {
        ObjectNode body = base(model, maxTokens);
        body.putArray("messages").addObject().put("role", "user").put("content", PROMPTS.get(k % PROMPTS.size()));
        return body.toString();
    }

    static String mediaRequest(String model, Media media, int k, int maxTokens) throws IOException {
        ObjectNode body = base(model, maxTokens);
        ArrayNode content = body.putArray("messages").addObject().put("role", "user").putArray("content");
        content.addObject().put("type", "image_url").putObject("image_url").put("url", "data:image/png;base64,"
                + Base64.getEncoder().encodeToString(media.png(k)));
        content.addObject().put("type", "input_audio").putObject("input_audio")
                .put("data", Base64.getEncoder().encodeToString(media.wav(k))).put("format", "wav");
        return body.toString();
    }

    private static ObjectNode base(String model, int maxTokens) {
        ObjectNode body = JSON.createObjectNode().put("model", model).put("stream", true).put("max_tokens", maxTokens)
                .put("temperature", 0);
        body.putObject("stream_options").put("include_usage", true);
        return body;
    }

    /** Variant k of the image (one pixel changed) and of the WAV (one sample changed): distinct bytes per request. */
    static final class Media {
        private final BufferedImage image;
        private final byte[] wav;
        private final int dataStart;
        private final int samples;

        Media(Path image, Path wav) throws IOException {
            this.image = ImageIO.read(image.toFile());
            if (this.image == null) throw new IOException(image + ": not an image ImageIO reads");
            this.wav = Files.readAllBytes(wav);
            int[] data = dataChunk(this.wav, wav);
            this.dataStart = data[0];
            this.samples = data[1] / 2;
        }

        byte[] png(int k) throws IOException {
            BufferedImage copy = new BufferedImage(image.getWidth(), image.getHeight(), BufferedImage.TYPE_INT_RGB);
            copy.getGraphics().drawImage(image, 0, 0, null);
            int x = k % copy.getWidth(), y = (k / copy.getWidth()) % copy.getHeight();
            copy.setRGB(x, y, copy.getRGB(x, y) ^ 1);
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            ImageIO.write(copy, "png", out);
            return out.toByteArray();
        }

        byte[] wav(int k) {
            byte[] copy = wav.clone();
            copy[dataStart + 2 * (k % samples)] ^= 1; // the low bit of one 16-bit sample
            return copy;
        }

        /** Offset and size of the RIFF data chunk of a PCM16 WAV. */
        private static int[] dataChunk(byte[] wav, Path file) throws IOException {
            if (wav.length < 12 || !new String(wav, 0, 4, StandardCharsets.US_ASCII).equals("RIFF")) {
                throw new IOException(file + ": not a RIFF WAV file");
            }
            for (int at = 12; at + 8 <= wav.length; ) {
                String id = new String(wav, at, 4, StandardCharsets.US_ASCII);
                int size = (wav[at + 4] & 0xff) | (wav[at + 5] & 0xff) << 8 | (wav[at + 6] & 0xff) << 16
                        | (wav[at + 7] & 0xff) << 24;
                if (id.equals("data")) {
                    if (size < 2 || at + 8 + size > wav.length) throw new IOException(file + ": truncated data chunk");
                    return new int[] {at + 8, size};
                }
                at += 8 + size + (size & 1);
            }
            throw new IOException(file + ": no data chunk");
        }
    }

    // ---- cancellation --------------------------------------------------------------------------------------------

    /** Opens a long stream on a raw socket, closes it after the first token, and times until the server counts it. */
    static void cancellation(Server server, Config config, BenchmarkReport report) throws Exception {
        double before = metric(server, "xllm_cancelled_total");
        byte[] body = textRequest(server.modelId, 0, 256).getBytes(StandardCharsets.UTF_8);
        long closed;
        try (Socket socket = new Socket(InetAddress.getLoopbackAddress(), server.base.getPort())) {
            OutputStream out = socket.getOutputStream();
            out.write(("POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                    + "Content-Length: " + body.length + "\r\n\r\n").getBytes(StandardCharsets.US_ASCII));
            out.write(body);
            out.flush();
            BufferedReader in = new BufferedReader(new InputStreamReader(socket.getInputStream(), StandardCharsets.UTF_8));
            for (String line; (line = in.readLine()) != null; ) {
                if (line.contains("\"content\":\"") && !line.contains("\"content\":\"\"")) break;
            }
            closed = System.nanoTime();
        }
        long until = closed + Duration.ofSeconds(30).toNanos();
        while (metric(server, "xllm_cancelled_total") <= before) {
            if (System.nanoTime() > until) {
                report.failed("xllm", "disconnect to cancel", "s", "xllm_cancelled_total did not rise in 30 s");
                return;
            }
            Thread.sleep(20);
        }
        report.add("xllm", "disconnect to cancel", (System.nanoTime() - closed) / 1e9, "s");
    }

    static double metric(Server server, String name) throws IOException, InterruptedException {
        HttpResponse<String> r = HttpClient.newHttpClient().send(HttpRequest.newBuilder(server.base.resolve("/metrics"))
                .build(), HttpResponse.BodyHandlers.ofString());
        for (String line : r.body().split("\n")) {
            if (line.startsWith(name + " ")) return Double.parseDouble(line.substring(name.length() + 1).strip());
        }
        throw new IOException(server.name + " /metrics has no " + name);
    }
}
