package xllm.eval;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import com.fasterxml.jackson.databind.JsonNode;
import xllm.llm.KvCache;
import xllm.llm.LanguageModel;
import xllm.llm.LlamaModel;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * {@code ./xllm bench llm}: prefill and decode throughput and peak RSS of xllm's decoder beside llama.cpp (the main
 * peer: llama-cpp-python on the GGUF's own quantised blocks, {@code tools/reference/bench_llamacpp.py}, fed xllm's
 * prompt ids) and Hugging Face transformers (fp32, {@code tools/reference/bench_hf_generate.py}), on the same GGUF,
 * prompt, greedy decoding, token counts and threads, in the same run. Repeats are interleaved (xllm, then each
 * peer) and medians reported.
 */
public final class LlmBenchmark {

    /** The peer script's prompt text; repeated until N tokens, so both systems see identical ids. */
    static final String PROMPT_TEXT = "The history of computing is a story of people trying to make machines do arithmetic "
            + "faster than they could do it themselves. Early mechanical calculators used gears and levers; later machines "
            + "used relays, vacuum tubes, transistors and finally integrated circuits holding billions of switches. ";

    public record Config(Path model, int promptTokens, int newTokens, int repeats, int threads, boolean peer) {}

    private LlmBenchmark() {}

    public static BenchmarkReport run(Config config, NDManager manager) throws IOException, InterruptedException {
        BenchmarkReport report = new BenchmarkReport("llm");
        report.config("model", config.model().getFileName().toString()).config("dtype", "float32")
                .config("prompt_tokens", config.promptTokens()).config("new_tokens", config.newTokens())
                .config("repeats", config.repeats()).config("threads", config.threads()).config("decoding", "greedy");
        List<Double> prefill = new ArrayList<>(), decode = new ArrayList<>();
        List<Double> peerPrefill = new ArrayList<>(), peerDecode = new ArrayList<>(), peerGenerate = new ArrayList<>();
        double peerRss = 0;
        String peerError = null;
        List<Double> cppPrefill = new ArrayList<>(), cppDecode = new ArrayList<>(), cppTtft = new ArrayList<>();
        double cppRss = 0;
        String cppError = config.peer() ? null : "peer not run (--no-peer)";
        long[] xllmTokens = null, cppTokens = null;
        try (LanguageModel lm = LanguageModel.open(config.model(), manager)) {
            long[] ids = promptIds(lm, config.promptTokens());
            xllmTokens = new long[config.newTokens()];
            measure(lm.model(), ids, config.newTokens(), manager, xllmTokens); // warm-up
            for (int r = 0; r < config.repeats(); r++) {
                double[] times = measure(lm.model(), ids, config.newTokens(), manager, xllmTokens);
                prefill.add(config.promptTokens() / times[0]);
                decode.add((config.newTokens() - 1) / times[1]);
                System.err.printf("xllm repeat %d: prefill %.1f tok/s, decode %.1f tok/s%n", r, prefill.get(r), decode.get(r));
                if (config.peer() && peerError == null) {
                    try {
                        JsonNode peer = PeerProcess.run(Path.of("tools/reference/bench_hf_generate.py"), List.of(
                                "--gguf", config.model().toString(), "--prompt-tokens", String.valueOf(config.promptTokens()),
                                "--new-tokens", String.valueOf(config.newTokens()), "--threads", String.valueOf(config.threads()),
                                "--repeats", "1"), 1800);
                        peerPrefill.add(peer.get("prefill_tokens_per_second").asDouble());
                        peerDecode.add(peer.get("manual_decode_tokens_per_second").asDouble());
                        peerGenerate.add(peer.get("generate_decode_tokens_per_second").asDouble());
                        peerRss = Math.max(peerRss, peer.get("peak_rss_mib").asDouble());
                    } catch (IOException e) {
                        peerError = e.getMessage();
                    }
                }
                if (cppError == null) {
                    try {
                        StringBuilder joined = new StringBuilder();
                        for (long id : ids) joined.append(joined.length() == 0 ? "" : ",").append(id);
                        JsonNode cpp = PeerProcess.run(Path.of("tools/reference/bench_llamacpp.py"), List.of(
                                "--gguf", config.model().toString(), "--prompt-ids", joined.toString(),
                                "--new-tokens", String.valueOf(config.newTokens()), "--threads",
                                String.valueOf(config.threads()), "--repeats", "1"), 1800);
                        cppPrefill.add(cpp.get("prefill_tokens_per_second").asDouble());
                        cppDecode.add(cpp.get("decode_tokens_per_second").asDouble());
                        cppTtft.add(cpp.get("time_to_first_token_seconds").asDouble());
                        cppRss = Math.max(cppRss, cpp.get("peak_rss_mib").asDouble());
                        cppTokens = new long[cpp.get("greedy_tokens").size()];
                        for (int i = 0; i < cppTokens.length; i++) cppTokens[i] = cpp.get("greedy_tokens").get(i).asLong();
                    } catch (IOException e) {
                        cppError = e.getMessage();
                    }
                }
            }
        }
        report.add("xllm", "prefill_tokens_per_s", median(prefill), "tok/s");
        report.add("xllm", "decode_tokens_per_s", median(decode), "tok/s");
        report.add("xllm", "peak_rss", peakRssMib(), "MiB");
        String peerName = "hf-transformers";
        if (!config.peer()) peerError = "peer not run (--no-peer)";
        if (peerError == null) {
            report.add(peerName, "prefill_tokens_per_s", median(peerPrefill), "tok/s");
            report.add(peerName, "decode_tokens_per_s", median(peerDecode), "tok/s");
            report.add(peerName, "generate_decode_tokens_per_s", median(peerGenerate), "tok/s");
            report.add(peerName, "peak_rss", peerRss, "MiB");
        } else {
            for (String metric : List.of("prefill_tokens_per_s", "decode_tokens_per_s")) {
                report.failed(peerName, metric, "tok/s", peerError);
            }
            report.failed(peerName, "peak_rss", "MiB", peerError);
        }
        String cppName = "llama.cpp";
        if (cppError == null) {
            report.add(cppName, "prefill_tokens_per_s", median(cppPrefill), "tok/s");
            report.add(cppName, "decode_tokens_per_s", median(cppDecode), "tok/s");
            report.add(cppName, "time_to_first_token", median(cppTtft), "s");
            report.add(cppName, "peak_rss", cppRss, "MiB");
            int same = 0;
            while (same < Math.min(xllmTokens.length, cppTokens.length) && xllmTokens[same] == cppTokens[same]) same++;
            report.add(cppName, "greedy_tokens_equal_to_xllm", same, "of " + xllmTokens.length);
        } else {
            for (String metric : List.of("prefill_tokens_per_s", "decode_tokens_per_s", "peak_rss")) {
                report.failed(cppName, metric, metric.equals("peak_rss") ? "MiB" : "tok/s", cppError);
            }
        }
        report.ratio("prefill_tokens_per_s", "xllm", cppName, true);
        report.ratio("decode_tokens_per_s", "xllm", cppName, true);
        report.ratio("peak_rss", "xllm", cppName, false);
        report.ratio("prefill_tokens_per_s", "xllm", peerName, true);
        report.ratio("decode_tokens_per_s", "xllm", peerName, true);
        report.ratio("peak_rss", "xllm", peerName, false);
        return report;
    }

    static long[] promptIds(LanguageModel lm, int count) {
        long[] text = lm.tokenizer().encode(PROMPT_TEXT);
        long[] ids = text;
        while (ids.length < count) {
            long[] doubled = Arrays.copyOf(ids, ids.length * 2);
            System.arraycopy(ids, 0, doubled, ids.length, ids.length);
            ids = doubled;
        }
        return Arrays.copyOf(ids, count);
    }

    /**
     * Seconds of {prefill over the prompt (no cache), M − 1 greedy decode steps after a cached prefill}; the M greedy
     * tokens go to {@code tokens}.
     */
    private static double[] measure(LlamaModel model, long[] ids, int newTokens, NDManager manager, long[] tokens) {
        double prefill;
        try (NDManager scope = manager.newSubManager()) {
            long start = System.nanoTime();
            model.forwardTokens(scope.create(ids, new Shape(1, ids.length)), null).toFloatArray();
            prefill = (System.nanoTime() - start) / 1e9;
        }
        double decode = 0;
        try (NDManager request = manager.newSubManager();
             KvCache cache = model.newCache(request, 1, ids.length + newTokens)) {
            long next;
            try (NDManager step = request.newSubManager()) {
                NDArray hidden = model.hiddenStates(model.embed(step.create(ids, new Shape(1, ids.length))),
                        positions(0, ids.length), valid(ids.length), cache);
                next = argmax(model.logits(hidden.get(":, -1:, :")).toFloatArray());
            }
            tokens[0] = next;
            for (int i = 0; i < newTokens - 1; i++) {
                long start = System.nanoTime();
                try (NDManager step = request.newSubManager()) {
                    NDArray hidden = model.hiddenStates(model.embed(step.create(new long[] {next}, new Shape(1, 1))),
                            positions(cache.length(), 1), valid(1), cache);
                    next = argmax(model.logits(hidden).toFloatArray());
                }
                tokens[i + 1] = next;
                decode += (System.nanoTime() - start) / 1e9;
            }
        }
        return new double[] {prefill, decode};
    }

    private static long[][] positions(int start, int count) {
        long[][] p = new long[1][count];
        for (int i = 0; i < count; i++) p[0][i] = start + i;
        return p;
    }

    private static boolean[][] valid(int count) {
        boolean[][] v = new boolean[1][count];
        Arrays.fill(v[0], true);
        return v;
    }

    private static int argmax(float[] values) {
        int best = 0;
        for (int i = 1; i < values.length; i++) if (values[i] > values[best]) best = i;
        return best;
    }

    static double median(List<Double> values) {
        List<Double> sorted = new ArrayList<>(values);
        sorted.sort(null);
        int n = sorted.size();
        return n % 2 == 1 ? sorted.get(n / 2) : (sorted.get(n / 2 - 1) + sorted.get(n / 2)) / 2;
    }

    /** Peak resident set of this process (VmHWM), in MiB. */
    static double peakRssMib() throws IOException {
        for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
            if (line.startsWith("VmHWM:")) return Long.parseLong(line.replaceAll("\\D", "")) / 1024.0;
        }
        return Double.NaN;
    }
}
