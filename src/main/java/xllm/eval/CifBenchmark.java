package xllm.eval;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import com.fasterxml.jackson.databind.JsonNode;
import xllm.speech.Cif;

import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * {@code ./xllm bench cif}: forward + backward of {@link Cif#integrate} (gradients to hidden and alphas) at
 * B=16, U=1000, D=512, float32, beside FunASR's per-frame loop in PyTorch eager ({@code tools/reference/bench_cif.py},
 * docs/CIF.md "the loop we must equal"), in the same run and interleaved: xllm run i, then peer run i, so both see
 * the same machine load. Both use hidden ~ N(0, 1) and alphas ~ U[0, maxAlpha) (about U·maxAlpha/2 tokens per
 * row; the tensors differ, the shapes and statistics do not), loss = Σ embeds. Reported: medians of forward,
 * forward + backward and process CPU time after the warm-up runs, the token count, peak RSS; ratios peer/xllm.
 */
public final class CifBenchmark {

    /** Shapes, α range, warm-up and timed runs, intra-op threads, whether to run the peer. */
    public record Config(int batch, int frames, int width, double maxAlpha, int warmup, int repeats, int threads,
                         boolean peer) {
        public Config {
            if (batch < 1 || frames < 1 || width < 1) throw new IllegalArgumentException("shapes must be >= 1");
            if (!(maxAlpha > 0 && maxAlpha <= 1)) throw new IllegalArgumentException("max alpha must be in (0, 1]");
            if (warmup < 0 || repeats < 1) throw new IllegalArgumentException("warmup >= 0 and repeats >= 1");
        }
    }

    static final String PEER = "funasr-loop";
    static final Path SCRIPT = Path.of("tools/reference/bench_cif.py");
    /** The loop's backward is quadratic in U (tens of seconds at U=1000 on 2 cores): generous per-run limit. */
    private static final long PEER_RUN_TIMEOUT_SECONDS = 1800;

    private CifBenchmark() {}

    /** One timed run of xllm: forward, forward + backward, process CPU (ms) and the token count. */
    record Timing(double forwardMs, double totalMs, double cpuMs, long tokens) {
    }

    public static BenchmarkReport run(Config config, NDManager manager) throws IOException, InterruptedException {
        BenchmarkReport report = new BenchmarkReport("cif");
        report.config("batch", config.batch()).config("frames", config.frames()).config("width", config.width())
                .config("dtype", "float32").config("alphas", "U[0," + config.maxAlpha() + ")").config("threshold", 1.0)
                .config("loss", "sum(embeds), gradients to hidden and alphas").config("warmup", config.warmup())
                .config("repeats", config.repeats()).config("threads", config.threads());
        List<Timing> ours = new ArrayList<>();
        List<JsonNode> theirs = new ArrayList<>();
        String error = config.peer() ? null : "peer not run (--no-peer)";
        PeerProcess.Session peer = null;
        if (error == null) {
            try {
                peer = PeerProcess.open(SCRIPT, List.of("--batch", String.valueOf(config.batch()), "--frames",
                        String.valueOf(config.frames()), "--width", String.valueOf(config.width()), "--max-alpha",
                        String.valueOf(config.maxAlpha()), "--threads", String.valueOf(config.threads())), 300);
            } catch (IOException e) {
                error = e.getMessage();
            }
        }
        double peerRss = Double.NaN;
        try (NDManager scope = manager.newSubManager()) {
            scope.getEngine().setRandomSeed(0);
            NDArray hidden = scope.randomNormal(new Shape(config.batch(), config.frames(), config.width()));
            NDArray alphas = scope.randomUniform(0f, (float) config.maxAlpha(), new Shape(config.batch(), config.frames()));
            hidden.setRequiresGradient(true);
            alphas.setRequiresGradient(true);
            for (int run = 0; run < config.warmup() + config.repeats(); run++) {
                boolean timed = run >= config.warmup();
                Timing timing = once(hidden, alphas, scope);
                System.err.printf("xllm run %d: forward %.1f ms, forward+backward %.1f ms%s%n", run, timing.forwardMs(),
                        timing.totalMs(), timed ? "" : " (warm-up)");
                if (timed) ours.add(timing);
                if (peer != null && error == null) {
                    try {
                        JsonNode result = peer.request("run", PEER_RUN_TIMEOUT_SECONDS);
                        if (timed) theirs.add(result);
                    } catch (IOException e) {
                        error = e.getMessage();
                    }
                }
            }
            if (peer != null && error == null) {
                try {
                    peerRss = peer.quit(60).path("peak_rss_mib").asDouble(Double.NaN);
                } catch (IOException e) {
                    // the timings are in; only the RSS is missing
                }
            }
        } finally {
            if (peer != null) peer.close();
        }
        report.add("xllm", "forward_ms", LlmBenchmark.median(ours.stream().map(Timing::forwardMs).toList()), "ms");
        report.add("xllm", "forward_backward_ms", LlmBenchmark.median(ours.stream().map(Timing::totalMs).toList()), "ms");
        report.add("xllm", "forward_backward_cpu_ms", LlmBenchmark.median(ours.stream().map(Timing::cpuMs).toList()), "ms");
        report.add("xllm", "tokens", ours.get(0).tokens(), "tokens");
        report.add("xllm", "peak_rss", LlmBenchmark.peakRssMib(), "MiB");
        if (error == null) {
            report.add(PEER, "forward_ms", median(theirs, "forward_ms"), "ms");
            report.add(PEER, "forward_backward_ms", median(theirs, "total_ms"), "ms");
            report.add(PEER, "forward_backward_cpu_ms", median(theirs, "cpu_ms"), "ms");
            report.add(PEER, "tokens", theirs.get(0).path("tokens").asDouble(), "tokens");
            if (!Double.isNaN(peerRss)) report.add(PEER, "peak_rss", peerRss, "MiB");
        } else {
            for (String metric : List.of("forward_ms", "forward_backward_ms", "forward_backward_cpu_ms")) {
                report.failed(PEER, metric, "ms", error);
            }
        }
        report.ratio("forward_ms", "xllm", PEER, false);
        report.ratio("forward_backward_ms", "xllm", PEER, false);
        return report;
    }

    /** Forward + backward once, in a sub-manager that frees every intermediate. */
    static Timing once(NDArray hidden, NDArray alphas, NDManager manager) {
        try (NDManager scope = manager.newSubManager()) {
            long start = System.nanoTime();
            long cpuStart = processCpuNanos();
            long forwardEnd;
            long tokens;
            try (GradientCollector collector = Engine.getInstance().newGradientCollector()) {
                Cif.Result result = Cif.integrate(hidden, alphas, 1.0);
                result.embeds().attach(scope);
                result.fires().attach(scope);
                NDArray loss = result.embeds().sum();
                loss.getFloat(); // waits for the forward pass
                forwardEnd = System.nanoTime();
                tokens = result.embeds().getShape().get(1);
                collector.backward(loss);
            }
            try (NDArray gradient = alphas.getGradient()) {
                gradient.getFloat(0, 0); // waits for the backward pass
            }
            long end = System.nanoTime();
            return new Timing((forwardEnd - start) / 1e6, (end - start) / 1e6, (processCpuNanos() - cpuStart) / 1e6,
                    tokens);
        }
    }

    private static double median(List<JsonNode> runs, String field) {
        return LlmBenchmark.median(runs.stream().map(r -> r.path(field).asDouble()).toList());
    }

    /** CPU time of all the process's threads: less sensitive than wall time to other jobs on shared cores. */
    private static long processCpuNanos() {
        return ((com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean())
                .getProcessCpuTime();
    }
}
