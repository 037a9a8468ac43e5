package xllm.eval;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import com.fasterxml.jackson.databind.JsonNode;
import xllm.llm.LlamaLoader;
import xllm.llm.LlamaModel;
import xllm.model.PromptBatch;
import xllm.model.Segment;
import xllm.train.AdamW;
import xllm.x2l.LinearAdapter;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * {@code ./xllm bench train}: one optimiser step of "linear adapter through the frozen SmolLM2" at fixed shapes,
 * beside the same computation in PyTorch eager ({@code tools/reference/bench_train_step.py}), same run.
 *
 * <p>The step: B rows of [24 prompt ids, 4 vectors = adapter(features (4, 32)), 12 question ids, 8 answer ids]
 * (T = 48, no padding); cross-entropy of the 8 answer tokens, logits computed only at the positions predicting them;
 * backward through the frozen decoder to the adapter; global-norm clipping to 1.0; AdamW (lr 1e-4, β (0.9, 0.98),
 * weight decay 0.05). Median step time after warm-up, with forward / backward / optimiser medians.
 */
public final class TrainBenchmark {

    public record Config(Path model, int batch, int warmup, int steps, int threads, boolean peer) {}

    private TrainBenchmark() {}

    static long[] range(int from, int count) {
        long[] ids = new long[count];
        for (int i = 0; i < count; i++) ids[i] = from + i;
        return ids;
    }

    public static BenchmarkReport run(Config config, NDManager manager) throws IOException, InterruptedException {
        BenchmarkReport report = new BenchmarkReport("train");
        report.config("model", config.model().getFileName().toString()).config("dtype", "float32")
                .config("batch", config.batch()).config("seq_len", 48).config("answer_tokens", 8)
                .config("trainable", "Linear(32, 576)").config("warmup", config.warmup()).config("steps", config.steps())
                .config("threads", config.threads());
        List<Double> step = new ArrayList<>(), forward = new ArrayList<>(), backward = new ArrayList<>(),
                optimiser = new ArrayList<>();
        try (NDManager scope = manager.newSubManager()) {
            LlamaModel llm = LlamaLoader.load(config.model(), scope);
            int hidden = llm.config().hiddenSize();
            scope.getEngine().setRandomSeed(0);
            LinearAdapter adapter = LinearAdapter.initialise("adapter", 32, hidden, scope, DataType.FLOAT32);
            NDArray features = scope.randomNormal(new Shape(config.batch(), 4, 32));
            adapter.parameters().forEach(p -> p.value().setRequiresGradient(true));
            try (AdamW optimizer = new AdamW(adapter.parameters(), new AdamW.Config(0.9, 0.98, 1e-8, 0.05))) {
                for (int i = 0; i < config.warmup() + config.steps(); i++) {
                    long t0 = System.nanoTime(), t1, t2;
                    try (NDManager stepScope = scope.newSubManager();
                         GradientCollector collector = Engine.getInstance().newGradientCollector()) {
                        NDArray injected = adapter.forward(features);                           // (B, 4, D)
                        List<List<Segment>> rows = new ArrayList<>();
                        for (int b = 0; b < config.batch(); b++) {
                            NDArray row = injected.get(b);
                            row.attach(stepScope);
                            rows.add(List.of(Segment.Text.prompt(range(1000, 24)), new Segment.Embeddings(row),
                                    Segment.Text.prompt(range(2000, 12)), Segment.Text.answer(range(3000, 8))));
                        }
                        NDArray loss = PromptBatch.build(llm, rows, PromptBatch.Padding.RIGHT, stepScope).answerLoss(llm);
                        loss.getFloat(); // forward done
                        t1 = System.nanoTime();
                        collector.backward(loss);
                        t2 = System.nanoTime();
                    }
                    optimizer.clipGradientNorm(1.0);
                    optimizer.step(1e-4);
                    optimizer.zeroGradients();
                    long t3 = System.nanoTime();
                    if (i >= config.warmup()) {
                        step.add((t3 - t0) / 1e6);
                        forward.add((t1 - t0) / 1e6);
                        backward.add((t2 - t1) / 1e6);
                        optimiser.add((t3 - t2) / 1e6);
                    }
                }
            }
        }
        report.add("xllm", "step_ms", LlmBenchmark.median(step), "ms");
        report.add("xllm", "forward_ms", LlmBenchmark.median(forward), "ms");
        report.add("xllm", "backward_ms", LlmBenchmark.median(backward), "ms");
        report.add("xllm", "optimizer_ms", LlmBenchmark.median(optimiser), "ms");
        report.add("xllm", "peak_rss", LlmBenchmark.peakRssMib(), "MiB");
        String peer = "pytorch-eager";
        String error = config.peer() ? null : "peer not run (--no-peer)";
        JsonNode result = null;
        if (error == null) {
            try {
                result = PeerProcess.run(Path.of("tools/reference/bench_train_step.py"), List.of("--gguf",
                        config.model().toString(), "--batch", String.valueOf(config.batch()), "--threads",
                        String.valueOf(config.threads()), "--warmup", String.valueOf(config.warmup()), "--steps",
                        String.valueOf(config.steps())), 1800);
            } catch (IOException e) {
                error = e.getMessage();
            }
        }
        if (result != null) {
            report.add(peer, "step_ms", result.get("step_ms_median").asDouble(), "ms");
            report.add(peer, "forward_ms", result.get("forward_ms_median").asDouble(), "ms");
            report.add(peer, "backward_ms", result.get("backward_ms_median").asDouble(), "ms");
            report.add(peer, "optimizer_ms", result.get("optimizer_ms_median").asDouble(), "ms");
            report.add(peer, "peak_rss", result.get("peak_rss_mib").asDouble(), "MiB");
        } else {
            for (String metric : List.of("step_ms", "forward_ms", "backward_ms", "optimizer_ms")) {
                report.failed(peer, metric, "ms", error);
            }
        }
        report.ratio("step_ms", "xllm", peer, false);
        report.ratio("forward_ms", "xllm", peer, false);
        report.ratio("backward_ms", "xllm", peer, false);
        return report;
    }
}
