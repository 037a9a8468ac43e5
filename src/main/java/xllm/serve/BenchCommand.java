package xllm.serve;

import ai.djl.ndarray.NDManager;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import xllm.eval.BenchmarkReport;
import xllm.eval.CifBenchmark;
import xllm.eval.LlmBenchmark;
import xllm.eval.ServeBenchmark;
import xllm.eval.TrainBenchmark;
import xllm.eval.VisionBenchmark;
import xllm.hub.ModelStore;

import java.nio.file.Path;
import java.util.concurrent.Callable;

/** {@code ./xllm bench NAME}: speed and memory beside the reference peer, as a table (and JSON with --json). */
@Command(name = "bench", mixinStandardHelpOptions = true,
        description = "Benchmarks that print a table and, with --json, write DESIGN.md §8's JSON. Peers run in the same "
                + "invocation (needs the reference venv: tools/reference/setup.sh).",
        subcommands = {BenchCommand.Llm.class, BenchCommand.Train.class, BenchCommand.Vision.class,
                BenchCommand.CifIntegrate.class, BenchCommand.Serve.class})
public final class BenchCommand implements Runnable {

    /** xllm and its peer both use every core. */
    static final int THREADS = Runtime.getRuntime().availableProcessors();

    @Override
    public void run() {
        picocli.CommandLine.usage(this, System.out);
    }

    /** The flags every benchmark shares, and how a report is printed and saved. */
    static final class ReportOptions {
        @Option(names = "--no-peer", description = "Skip the reference peer (reported as not run).") boolean noPeer;
        @Option(names = "--json", description = "Also write the JSON report here.") Path json;

        interface Benchmark {
            BenchmarkReport run(NDManager manager) throws Exception;
        }

        int run(Benchmark benchmark) throws Exception {
            BenchmarkReport report;
            try (NDManager manager = NDManager.newBaseManager()) {
                report = benchmark.run(manager);
            }
            report.printTable(System.out);
            if (json != null) report.writeJson(json);
            return 0;
        }
    }

    @Command(name = "llm", mixinStandardHelpOptions = true,
            description = {"Prefill tok/s, decode tok/s and peak RSS of the fp32 decoder beside llama.cpp "
                    + "(llama-cpp-python on the GGUF's own quantised blocks, tools/reference/bench_llamacpp.py; also "
                    + "its time to first token and how many greedy tokens equal xllm's) and HF transformers (fp32, "
                    + "tools/reference/bench_hf_generate.py): same GGUF, prompt ids, greedy decoding, token counts.",
                    "All use all cores. A Q8_0 file of a Q4_1 model: tools/reference/requantize.py."})
    static final class Llm implements Callable<Integer> {
        @Option(names = {"-m", "--model"}, defaultValue = ModelOption.DEFAULT_MODEL,
                description = "GGUF model name or path (default ${DEFAULT-VALUE}).")
        String model;
        @Option(names = "--prompt-tokens", defaultValue = "64") int promptTokens;
        @Option(names = "--new-tokens", defaultValue = "64") int newTokens;
        @Option(names = "--repeats", defaultValue = "3") int repeats;
        @Mixin ReportOptions output;

        @Override
        public Integer call() throws Exception {
            Path path = ModelStore.defaultStore().resolve(model);
            return output.run(manager -> LlmBenchmark.run(new LlmBenchmark.Config(path, promptTokens, newTokens, repeats,
                    THREADS, !output.noPeer), manager));
        }
    }

    @Command(name = "train", mixinStandardHelpOptions = true,
            description = {"Time of one optimiser step of a linear adapter (32 -> 576) trained through the frozen "
                    + "SmolLM2 (B x 48 tokens, loss on 8 answer tokens per row), beside PyTorch eager "
                    + "(tools/reference/bench_train_step.py): forward, backward, optimiser and total medians."})
    static final class Train implements Callable<Integer> {
        @Option(names = {"-m", "--model"}, defaultValue = ModelOption.DEFAULT_MODEL,
                description = "GGUF model name or path (default ${DEFAULT-VALUE}).")
        String model;
        @Option(names = "--batch", defaultValue = "4") int batch;
        @Option(names = "--warmup", defaultValue = "3") int warmup;
        @Option(names = "--steps", defaultValue = "10") int steps;
        @Mixin ReportOptions output;

        @Override
        public Integer call() throws Exception {
            Path path = ModelStore.defaultStore().resolve(model);
            return output.run(manager -> TrainBenchmark.run(new TrainBenchmark.Config(path, batch, warmup, steps, THREADS,
                    !output.noPeer), manager));
        }
    }

    @Command(name = "vision", mixinStandardHelpOptions = true,
            description = {"Images/s of the frozen EfficientNet-Lite0 encoder (B x 3 x 224 x 224 -> 49 x 1280 tokens) "
                    + "followed by a random \"demo\" Q-Former (hidden 384, 4 layers, 32 queries), fp32 inference, beside "
                    + "PyTorch eager (tools/reference/bench_vision.py: efficientnet-lite-pytorch + transformers' "
                    + "Blip2QFormerModel): encoder, Q-Former and combined medians, peak RSS.",
                    "Needs the weights: ./xllm models pull efficientnet-lite0."})
    static final class Vision implements Callable<Integer> {
        @Option(names = "--weights", defaultValue = "efficientnet-lite0",
                description = "EfficientNet-Lite0 .pth name or path (default ${DEFAULT-VALUE}).")
        String weights;
        @Option(names = "--batch", defaultValue = "32") int batch;
        @Option(names = "--repeats", defaultValue = "3") int repeats;
        @Mixin ReportOptions output;

        @Override
        public Integer call() throws Exception {
            Path path = ModelStore.defaultStore().resolve(weights);
            return output.run(manager -> VisionBenchmark.run(new VisionBenchmark.Config(path, batch, repeats, THREADS,
                    !output.noPeer), manager));
        }
    }

    @Command(name = "cif", mixinStandardHelpOptions = true,
            description = {"Forward + backward (gradients to hidden and alphas) of xllm's loop-free CIF integrate at "
                    + "B x U x D (default 16 x 1000 x 512, float32, alphas ~ U[0, 0.5)), beside FunASR's per-frame loop "
                    + "in PyTorch eager (tools/reference/bench_cif.py), interleaved run by run: forward, forward+backward "
                    + "and process-CPU medians, peak RSS.",
                    "The loop's backward is quadratic in U: at U=1000 expect tens of seconds per peer run."})
    static final class CifIntegrate implements Callable<Integer> {
        @Option(names = "--batch", defaultValue = "16") int batch;
        @Option(names = "--frames", defaultValue = "1000", description = "U, encoder frames (default ${DEFAULT-VALUE}).")
        int frames;
        @Option(names = "--width", defaultValue = "512", description = "D (default ${DEFAULT-VALUE}).") int width;
        @Option(names = "--max-alpha", defaultValue = "0.5",
                description = "Alphas ~ U[0, this) (default ${DEFAULT-VALUE}: about U/4 tokens).") double maxAlpha;
        @Option(names = "--warmup", defaultValue = "1") int warmup;
        @Option(names = "--repeats", defaultValue = "3") int repeats;
        @Mixin ReportOptions output;

        @Override
        public Integer call() throws Exception {
            return output.run(manager -> CifBenchmark.run(new CifBenchmark.Config(batch, frames, width, maxAlpha, warmup,
                    repeats, THREADS, !output.noPeer), manager));
        }
    }

    @Command(name = "serve", mixinStandardHelpOptions = true,
            description = {"The HTTP server under concurrent streaming clients, each server in its own process: C clients "
                    + "start together and each asks R streamed questions (greedy, --max-tokens), a 429 retried after "
                    + "its Retry-After. Text on xllm serving --llm, then on llama.cpp's server (llama-cpp-python, "
                    + "tools/reference/setup.sh) on the same GGUF with the same threads; then, given --model, image + "
                    + "spoken question on that X-LLM checkpoint: one client alone, then C at once, every request with "
                    + "its own variant of the media so the encoders always run. Reports time to first token p50/p95, "
                    + "aggregate tokens/s, errors, 429s (the first wave against the bound C - (max-batch + queue)), "
                    + "peak RSS of each server, and how soon a client's disconnect cancels its generation.",
                    "Run it on an idle machine: the clients and the servers share its cores."})
    static final class Serve implements Callable<Integer> {
        @Option(names = "--llm", defaultValue = ModelOption.DEFAULT_MODEL,
                description = "Text LLM (GGUF name or path) for the text phase (default ${DEFAULT-VALUE}).")
        String llm;
        @Option(names = {"-m", "--model"}, description = "X-LLM checkpoint for the image + speech phase "
                + "(default: none, the phase is skipped).")
        String model;
        @Option(names = "--image", description = "Image of the image + speech phase (PNG or JPEG).") Path image;
        @Option(names = "--audio", description = "Spoken question of the image + speech phase (16 kHz WAV).") Path audio;
        @Option(names = "--clients", defaultValue = "32") int clients;
        @Option(names = "--requests", defaultValue = "2", description = "Questions per client (default ${DEFAULT-VALUE}).")
        int requests;
        @Option(names = "--max-tokens", defaultValue = "32") int maxTokens;
        @Option(names = "--max-batch", defaultValue = "16") int maxBatch;
        @Option(names = "--queue", defaultValue = "16") int queue;
        @Option(names = "--logs", defaultValue = "target/bench-serve", description = "Server logs (default ${DEFAULT-VALUE}).")
        Path logs;
        @Mixin ReportOptions output;

        @Override
        public Integer call() throws Exception {
            if (model != null && (image == null || audio == null)) {
                throw new picocli.CommandLine.ParameterException(new picocli.CommandLine(this),
                        "--model needs --image and --audio (the image and the spoken question)");
            }
            Path gguf = ModelStore.defaultStore().resolve(llm);
            return output.run(manager -> ServeBenchmark.run(new ServeBenchmark.Config(llm, gguf, model, image, audio,
                    clients, requests, maxTokens, maxBatch, queue, THREADS, !output.noPeer, logs)));
        }
    }
}
