package xllm.eval;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import com.fasterxml.jackson.databind.JsonNode;
import xllm.vision.EfficientNetLite0;
import xllm.x2l.QFormer;
import xllm.x2l.QFormerConfig;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * {@code ./xllm bench vision}: images/s of the frozen image side of the bridge — EfficientNet-Lite0 features
 * (B, 3, 224, 224) → (B, 49, 1280), then a randomly initialised "demo" Q-Former (hidden 384, 4 layers, 6 heads,
 * FFN 1536, cross-attention every 2nd layer, 32 learned queries) over them → (B, 32, 384) — fp32 inference, beside
 * the same modules in PyTorch eager ({@code tools/reference/bench_vision.py}: efficientnet-lite-pytorch and
 * transformers' {@code Blip2QFormerModel}), same run.
 *
 * <p>Inputs are random normal images with a fixed seed (the values do not matter for speed), the same tensor in
 * every run. One warm-up run, then {@code repeats} runs each timing the encoder and the Q-Former separately;
 * {@code images_per_s} of a run is B / (encoder + Q-Former seconds). Interleaved as {@code bench llm}: after each
 * xllm run, one peer process (its own warm-up, then one timed run). Reported values are medians over runs; the
 * peer's peak RSS is the largest of its processes' VmHWM.
 */
public final class VisionBenchmark {

    /** The Q-Former this benchmark times: the "demo" size (weights random; they don't change the speed). */
    public static final QFormerConfig DEMO_QFORMER = new QFormerConfig(384, 4, 6, 1536, 2, 1280, 1e-12, 32, "gelu");

    static final List<String> METRICS = List.of("images_per_s", "encoder_images_per_s", "qformer_images_per_s");

    public record Config(Path weights, int batch, int repeats, int threads, boolean peer) {}

    private VisionBenchmark() {}

    public static BenchmarkReport run(Config config, NDManager manager) throws IOException, InterruptedException {
        if (config.batch() < 1 || config.repeats() < 1) {
            throw new IllegalArgumentException("--batch and --repeats must be at least 1");
        }
        BenchmarkReport report = new BenchmarkReport("vision");
        QFormerConfig q = DEMO_QFORMER;
        report.config("encoder", "efficientnet-lite0 features (49 x 1280)").config("weights", config.weights()
                        .getFileName().toString())
                .config("qformer", String.format("hidden %d, layers %d, heads %d, ffn %d, cross every %d, %d queries",
                        q.hiddenSize(), q.numHiddenLayers(), q.numAttentionHeads(), q.intermediateSize(),
                        q.crossAttentionFrequency(), q.numQueryTokens()))
                .config("dtype", "float32").config("batch", config.batch()).config("image_size", 224)
                .config("repeats", config.repeats()).config("warmup", 1).config("threads", config.threads());
        List<Double> total = new ArrayList<>(), encoder = new ArrayList<>(), qformer = new ArrayList<>();
        List<List<Double>> peerValues = List.of(new ArrayList<>(), new ArrayList<>(), new ArrayList<>());
        double peerRss = 0;
        String peer = "pytorch-eager";
        String error = config.peer() ? null : "peer not run (--no-peer)";
        int batch = config.batch();
        try (NDManager scope = manager.newSubManager();
             EfficientNetLite0 model = EfficientNetLite0.load(config.weights(), scope)) {
            QFormer bridge = QFormer.initialise(q, 0, scope);
            scope.getEngine().setRandomSeed(0);
            NDArray images = scope.randomNormal(new Shape(batch, 3, 224, 224));
            for (int run = 0; run < 1 + config.repeats(); run++) {
                long t0, t1, t2;
                try (NDManager runScope = scope.newSubManager()) {
                    images.tempAttach(runScope);
                    t0 = System.nanoTime();
                    NDArray features = model.features(images);                          // (B, 49, 1280)
                    t1 = System.nanoTime();
                    NDArray out = bridge.forward(features, null);                       // (B, 32, 384)
                    t2 = System.nanoTime();
                    Shape expected = new Shape(batch, q.numQueryTokens(), q.hiddenSize());
                    if (!out.getShape().equals(expected)) {
                        throw new IllegalStateException("Q-Former output " + out.getShape() + ", expected " + expected);
                    }
                }
                double enc = (t1 - t0) / 1e9, qf = (t2 - t1) / 1e9;
                System.err.printf("xllm %s %d: encoder %.3f s, Q-Former %.3f s%n", run == 0 ? "warm-up" : "run", run,
                        enc, qf);
                if (run == 0) continue;
                total.add(batch / (enc + qf));
                encoder.add(batch / enc);
                qformer.add(batch / qf);
                if (error == null) { // interleaved: one peer process (its own warm-up + one timed run) per repeat
                    try {
                        JsonNode result = PeerProcess.run(Path.of("tools/reference/bench_vision.py"), List.of(
                                "--weights", config.weights().toString(), "--batch", String.valueOf(batch),
                                "--threads", String.valueOf(config.threads()), "--repeats", "1"), 1800);
                        for (int m = 0; m < METRICS.size(); m++) {
                            peerValues.get(m).add(result.get(METRICS.get(m) + "_median").asDouble());
                        }
                        peerRss = Math.max(peerRss, result.get("peak_rss_mib").asDouble());
                    } catch (IOException e) {
                        error = e.getMessage();
                    }
                }
            }
        }
        report.add("xllm", "images_per_s", LlmBenchmark.median(total), "img/s");
        report.add("xllm", "encoder_images_per_s", LlmBenchmark.median(encoder), "img/s");
        report.add("xllm", "qformer_images_per_s", LlmBenchmark.median(qformer), "img/s");
        report.add("xllm", "peak_rss", LlmBenchmark.peakRssMib(), "MiB");

        if (error == null) {
            for (int m = 0; m < METRICS.size(); m++) {
                report.add(peer, METRICS.get(m), LlmBenchmark.median(peerValues.get(m)), "img/s");
            }
            report.add(peer, "peak_rss", peerRss, "MiB");
        } else {
            for (String metric : METRICS) report.failed(peer, metric, "img/s", error);
            report.failed(peer, "peak_rss", "MiB", error);
        }
        for (String metric : METRICS) report.ratio(metric, "xllm", peer, true);
        report.ratio("peak_rss", "xllm", peer, false);
        return report;
    }
}
