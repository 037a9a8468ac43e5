package xllm.llm;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.Shape;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.function.BooleanSupplier;
import java.util.Collections;

/**
 * Autoregressive generation with a KV cache: batched prompts (left-padded), prompts given as token ids or as input
 * embeddings with modality vectors spliced in, sampling through {@link Sampler}, stop on EOS / stop strings /
 * token budget, and a streaming callback that receives text as soon as it is complete UTF-8.
 * Tested in {@code GeneratorTest} (greedy continuations equal transformers', padded batch equals each prompt alone).
 */
public final class Generator {

    /**
     * How one row is generated.
     *
     * @param cancelled asked before every step: true ends the row there with {@link FinishReason#CANCELLED} (a server
     *                  whose client went away or whose request timed out); never null
     */
    public record Options(int maxNewTokens, Sampler.Options sampling, List<String> stopStrings, BooleanSupplier cancelled) {
        public Options {
            if (maxNewTokens < 0) throw new IllegalArgumentException("max new tokens must be ≥ 0");
            stopStrings = stopStrings == null ? List.of() : List.copyOf(stopStrings);
            if (cancelled == null) cancelled = () -> false;
        }

        public Options(int maxNewTokens, Sampler.Options sampling, List<String> stopStrings) {
            this(maxNewTokens, sampling, stopStrings, null);
        }

        /** The same options, ended early when {@code check} says so. */
        public Options cancelledWhen(BooleanSupplier check) {
            return new Options(maxNewTokens, sampling, stopStrings, check);
        }

        public static Options greedy(int maxNewTokens) {
            return new Options(maxNewTokens, Sampler.Options.greedy(), List.of());
        }
    }

    /** Receives each row's new text as it is produced. */
    @FunctionalInterface
    public interface StreamListener {
        void onText(int row, String delta);
    }

    /**
     * STOP: an end token or stop string; LENGTH: the token budget; CONTEXT: the model's context is full; CANCELLED:
     * the caller's {@link Options#cancelled()} said so.
     */
    public enum FinishReason { STOP, LENGTH, CONTEXT, CANCELLED }

    public record Completion(long[] tokenIds, String text, FinishReason finishReason, int promptTokens) {}

    private final LlamaModel model;
    private final Tokenizer tokenizer;
    private final Set<Long> endTokens = new HashSet<>();

    public Generator(LlamaModel model, Tokenizer tokenizer) {
        this.model = model;
        this.tokenizer = tokenizer;
        // As transformers: the checkpoint's eos ids (config / GGUF), plus the tokenizer's own end-of-sequence token.
        endTokens.addAll(model.config().eosTokenIds());
        if (tokenizer.eosToken() != null) tokenizer.specialTokenId(tokenizer.eosToken()).ifPresent(endTokens::add);
    }

    public LlamaModel model() {
        return model;
    }

    public Tokenizer tokenizer() {
        return tokenizer;
    }

    public Set<Long> endTokens() {
        return endTokens;
    }

    /** Generates for token-id prompts (any lengths; they are left-padded into one batch). */
    public List<Completion> generate(List<long[]> prompts, Options options, StreamListener listener) {
        return generate(prompts, Collections.nCopies(prompts.size(), options), listener);
    }

    /** As {@link #generate(List, Options, StreamListener)}, with each row's own options (a server's batch). */
    public List<Completion> generate(List<long[]> prompts, List<Options> options, StreamListener listener) {
        int batch = prompts.size();
        int longest = prompts.stream().mapToInt(p -> p.length).max().orElse(0);
        requireRoomForReply(longest);
        try (NDManager request = model.manager().newSubManager()) {
            long[] padded = new long[batch * longest];
            boolean[][] valid = new boolean[batch][longest];
            for (int b = 0; b < batch; b++) {
                long[] p = prompts.get(b);
                int offset = longest - p.length;
                System.arraycopy(p, 0, padded, b * longest + offset, p.length);
                for (int t = offset; t < longest; t++) valid[b][t] = true;
            }
            NDArray ids = request.create(padded, new Shape(batch, longest));
            return generateFromEmbeddings(model.embed(ids), valid, prompts, options, listener);
        }
    }

    /**
     * Generates from prompt embeddings (B, T, D), left-padded where {@code valid} is false. {@code promptIds} gives
     * each row's text token ids for the repetition penalty (modality positions carry none).
     */
    public List<Completion> generateFromEmbeddings(NDArray promptEmbeddings, boolean[][] valid, List<long[]> promptIds,
                                                   Options options, StreamListener listener) {
        return generateFromEmbeddings(promptEmbeddings, valid, promptIds,
                Collections.nCopies((int) promptEmbeddings.getShape().get(0), options), listener);
    }

    /** As above, with each row's own options: its budget, sampler, stop strings and cancellation. */
    public List<Completion> generateFromEmbeddings(NDArray promptEmbeddings, boolean[][] valid, List<long[]> promptIds,
                                                   List<Options> options, StreamListener listener) {
        Shape shape = promptEmbeddings.getShape();
        int batch = (int) shape.get(0), promptLength = (int) shape.get(1);
        if (options.size() != batch) throw new IllegalArgumentException(options.size() + " options for " + batch + " rows");
        requireRoomForReply(promptLength);
        // Each row's budget is the caller's number (--max-tokens may be 2³¹−1): generation stops where the context
        // ends, and the cache starts at what a typical reply needs and grows from there.
        int room = model.config().maxPositions() - promptLength;
        int budget = 0;
        for (Options o : options) budget = Math.max(budget, (int) Math.min(o.maxNewTokens(), room));
        int capacity = promptLength + Math.min(budget, INITIAL_REPLY_POSITIONS);
        long[][] positions = new long[batch][promptLength];
        int[] lengths = new int[batch];
        for (int b = 0; b < batch; b++) {
            int p = 0;
            for (int t = 0; t < promptLength; t++) {
                positions[b][t] = valid[b][t] ? p++ : 0;
            }
            lengths[b] = p;
        }
        Row[] rows = new Row[batch];
        for (int b = 0; b < batch; b++) {
            long[] ids = promptIds == null ? new long[0] : promptIds.get(b);
            rows[b] = new Row(b, ids, (int) Math.min(options.get(b).maxNewTokens(), room), options.get(b), listener);
        }
        try (NDManager request = model.manager().newSubManager();
             KvCache cache = model.newCache(request, batch, capacity)) {
            float[][] logits;
            try (NDManager step = request.newSubManager()) {
                NDArray embeddings = promptEmbeddings.duplicate();
                embeddings.attach(step);
                logits = lastLogits(model.prefill(embeddings, positions, valid, cache));
            }
            for (int produced = 0; produced < budget; produced++) {
                long[] next = new long[batch];
                boolean anyActive = false;
                for (Row row : rows) {
                    if (!row.done()) {
                        if (row.options.cancelled().getAsBoolean()) {
                            row.cancelled = true;
                        } else {
                            row.accept(row.sampler.next(logits[row.index], row.seen, row.seenCount));
                        }
                        anyActive |= !row.done();
                    }
                    next[row.index] = row.lastToken();
                }
                if (!anyActive || produced == budget - 1) break;
                long[][] nextPositions = new long[batch][1];
                boolean[][] nextValid = new boolean[batch][1];
                for (int b = 0; b < batch; b++) {
                    nextPositions[b][0] = lengths[b] + produced;
                    nextValid[b][0] = true;
                }
                try (NDManager step = request.newSubManager()) {
                    NDArray ids = step.create(next, new Shape(batch, 1));
                    NDArray hidden = model.hiddenStates(model.embed(ids), nextPositions, nextValid, cache);
                    logits = lastLogits(hidden);
                }
            }
        }
        List<Completion> out = new ArrayList<>();
        for (int b = 0; b < batch; b++) {
            FinishReason outOfTokens = room < options.get(b).maxNewTokens() ? FinishReason.CONTEXT : FinishReason.LENGTH;
            out.add(rows[b].finish(lengths[b], outOfTokens));
        }
        return out;
    }

    /** Positions the KV cache holds for new tokens at first; it grows (doubling) when a reply runs longer. */
    private static final int INITIAL_REPLY_POSITIONS = 256;

    /** A prompt must leave at least one position of the context for the reply; checked before anything is allocated. */
    private void requireRoomForReply(int promptLength) {
        if (promptLength == 0) throw new IllegalArgumentException("empty prompt");
        int context = model.config().maxPositions();
        if (promptLength > context) {
            throw new IllegalArgumentException("prompt of " + promptLength + " tokens exceeds the model's context of "
                    + context + " tokens");
        }
        if (promptLength == context) {
            throw new IllegalArgumentException("prompt of " + promptLength + " tokens fills the model's context of "
                    + context + " tokens, leaving no room for a reply");
        }
    }

    /** Logits of the last position of each row, copied to the host: (B, V). */
    private float[][] lastLogits(NDArray hidden) {
        Shape s = hidden.getShape();
        int batch = (int) s.get(0);
        NDArray last = hidden.get(new NDIndex(":, -1:, :"));
        float[] flat = model.logits(last).toFloatArray();
        int vocab = flat.length / batch;
        float[][] rows = new float[batch][];
        for (int b = 0; b < batch; b++) rows[b] = Arrays.copyOfRange(flat, b * vocab, (b + 1) * vocab);
        return rows;
    }

    /** One sequence's state: its sampler, tokens so far and the text streamed out. */
    private final class Row {
        final int index;
        final Sampler sampler;
        final Options options;
        final StreamListener listener;
        final long[] seen;
        int seenCount;
        final List<Long> generated = new ArrayList<>();
        final int budget;  // the most tokens this row may generate
        boolean finished;  // an end token or stop string ended the row
        boolean cancelled; // the caller ended it
        String text = "";
        int emitted;

        Row(int index, long[] promptIds, int budget, Options options, StreamListener listener) {
            this.index = index;
            this.budget = budget;
            this.options = options;
            this.listener = listener;
            this.sampler = new Sampler(options.sampling());
            this.seen = Arrays.copyOf(promptIds, promptIds.length + budget);
            this.seenCount = promptIds.length;
        }

        /** Whether the row takes no more tokens: ended, cancelled, or its own budget spent (a batch's may be larger). */
        boolean done() {
            return finished || cancelled || generated.size() >= budget;
        }

        long lastToken() {
            return generated.isEmpty() ? 0 : generated.get(generated.size() - 1);
        }

        void accept(int token) {
            generated.add((long) token);
            seen[seenCount++] = token;
            if (endTokens.contains((long) token)) {
                finished = true;
            }
            text = tokenizer.decode(tokenIds(), true);
            for (String stop : options.stopStrings()) {
                int at = text.indexOf(stop);
                if (at >= 0) {
                    text = text.substring(0, at);
                    finished = true;
                }
            }
            stream(finished);
        }

        /** Emits complete text, holding back a partial UTF-8 character and a possible stop-string prefix. */
        void stream(boolean all) {
            if (listener == null) return;
            int end = text.length();
            if (!all) {
                if (text.endsWith("\uFFFD")) return;
                int holdBack = 0;
                for (String stop : options.stopStrings()) {
                    for (int k = Math.min(stop.length() - 1, text.length()); k > holdBack; k--) {
                        if (text.endsWith(stop.substring(0, k))) holdBack = k;
                    }
                }
                end -= holdBack;
            }
            if (end > emitted) {
                listener.onText(index, text.substring(emitted, end));
                emitted = end;
            }
        }

        long[] tokenIds() {
            long[] ids = new long[generated.size()];
            for (int i = 0; i < ids.length; i++) ids[i] = generated.get(i);
            return ids;
        }

        /** {@code outOfTokens}: why a row that met no end token or stop string ended (budget or context). */
        Completion finish(int promptTokens, FinishReason outOfTokens) {
            stream(true);
            FinishReason reason = finished ? FinishReason.STOP : cancelled ? FinishReason.CANCELLED : outOfTokens;
            return new Completion(tokenIds(), text, reason, promptTokens);
        }
    }
}
