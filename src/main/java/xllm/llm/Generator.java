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
        try (NDManager request = model.manager().newSubManager()) {
            Prompts embedded = embed(prompts, request);
            return generateFromEmbeddings(embedded.embeddings(), embedded.valid(), prompts, options, listener);
        }
    }

    /**
     * Prompts ready to prefill: embeddings (B, T, D), left-padded where {@code valid} is false, and each row's text
     * token ids (the repetition penalty's history; modality positions carry none).
     */
    public record Prompts(NDArray embeddings, boolean[][] valid, List<long[]> textIds) {}

    /** Token-id prompts (any lengths) left-padded into one batch and embedded, in {@code scope}. */
    public Prompts embed(List<long[]> prompts, NDManager scope) {
        int batch = prompts.size();
        int longest = prompts.stream().mapToInt(p -> p.length).max().orElse(0);
        requireRoomForReply(longest);
        long[] padded = new long[batch * longest];
        boolean[][] valid = new boolean[batch][longest];
        for (int b = 0; b < batch; b++) {
            long[] p = prompts.get(b);
            int offset = longest - p.length;
            System.arraycopy(p, 0, padded, b * longest + offset, p.length);
            for (int t = offset; t < longest; t++) valid[b][t] = true;
        }
        return new Prompts(model.embed(scope.create(padded, new Shape(batch, longest))), valid, prompts);
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

    /**
     * As above, with each row's own options: its budget, sampler, stop strings and cancellation. The rows run as one
     * {@link Session}: each leaves the batch as soon as it ends.
     */
    public List<Completion> generateFromEmbeddings(NDArray promptEmbeddings, boolean[][] valid, List<long[]> promptIds,
                                                   List<Options> options, StreamListener listener) {
        int batch = (int) promptEmbeddings.getShape().get(0);
        if (options.size() != batch) throw new IllegalArgumentException(options.size() + " options for " + batch + " rows");
        List<Integer> keys = new ArrayList<>();
        for (int b = 0; b < batch; b++) keys.add(b);
        Completion[] out = new Completion[batch];
        try (Session<Integer> session = session()) {
            session.add(new Prompts(promptEmbeddings, valid, promptIds), keys, options,
                    Collections.nCopies(batch, listener));
            while (session.size() > 0) {
                for (Ended<Integer> ended : session.step()) out[ended.key()] = ended.completion();
            }
        }
        return List.of(out);
    }

    /** Fills each row's RoPE positions (0, 1, … over its valid tokens; 0 on padding); returns its token count. */
    private static int[] positions(boolean[][] valid, long[][] positions) {
        int[] lengths = new int[valid.length];
        for (int b = 0; b < valid.length; b++) {
            int p = 0;
            for (int t = 0; t < valid[b].length; t++) positions[b][t] = valid[b][t] ? p++ : 0;
            lengths[b] = p;
        }
        return lengths;
    }

    /** A running batch whose rows join and leave between decode steps (continuous batching). */
    public <K> Session<K> session() {
        return new Session<>();
    }

    /** A row of a {@link Session} that ended, with its caller's key. */
    public record Ended<K>(K key, Completion completion) {}

    /**
     * Continuous batching: one KV cache for the rows running now. New prompts are prefilled as a group and join it
     * (their history left-padded to the running one's); every {@link #step} samples each row's next token, lets the
     * rows that ended leave (their cache rows dropped, and the leading slots no live row uses trimmed) and runs the
     * rest one position. A new request therefore waits for one prefill, not for a running batch to finish, and a
     * short answer never pays for a long one's steps. Not thread-safe: one decode thread owns it.
     */
    public final class Session<K> implements AutoCloseable {

        private final NDManager manager = model.manager().newSubManager();
        private KvCache cache;
        private List<Live<K>> live = new ArrayList<>();

        private static final class Live<K> {
            final K key;
            final Row row;
            final int promptTokens;
            final FinishReason outOfTokens;
            float[] logits;   // of its last position: the next token is sampled from them
            long position;    // RoPE position of its next token

            Live(K key, Row row, int promptTokens, FinishReason outOfTokens, float[] logits) {
                this.key = key;
                this.row = row;
                this.promptTokens = promptTokens;
                this.outOfTokens = outOfTokens;
                this.logits = logits;
                this.position = promptTokens;
            }
        }

        public int size() {
            return live.size();
        }

        /**
         * Whether prompts padded to {@code promptLength} can join now without taking context any row needs: the
         * joined history plus each row's remaining budget (newcomers: as much as they would have alone) must fit.
         */
        public boolean fits(int promptLength, List<Options> options) {
            int context = model.config().maxPositions();
            if (promptLength >= context) return live.isEmpty(); // add() refuses it with the reason
            int joined = cache == null ? promptLength : Math.max(cache.length(), promptLength);
            for (Live<K> r : live) {
                if ((long) joined + r.row.budget - r.row.generated.size() > context) return false;
            }
            for (Options o : options) {
                if ((long) joined + Math.min(o.maxNewTokens(), context - promptLength) > context) return false;
            }
            return true;
        }

        /**
         * Prefills {@code prompts} and adds them as rows; their first tokens come with the next {@link #step}. Each
         * row streams to its own listener (called with its index in this call). A failure leaves the session as it
         * was.
         */
        public void add(Prompts prompts, List<K> keys, List<Options> options, List<StreamListener> listeners) {
            Shape shape = prompts.embeddings().getShape();
            int batch = (int) shape.get(0), promptLength = (int) shape.get(1);
            if (keys.size() != batch || options.size() != batch || listeners.size() != batch) {
                throw new IllegalArgumentException(batch + " prompts need as many keys, options and listeners");
            }
            requireRoomForReply(promptLength);
            int context = model.config().maxPositions();
            int joined = cache == null ? promptLength : Math.max(cache.length(), promptLength);
            int budget = 0;
            for (Options o : options) budget = Math.max(budget, (int) Math.min(o.maxNewTokens(), context - joined));
            long[][] positions = new long[batch][promptLength];
            int[] lengths = positions(prompts.valid(), positions);
            KvCache fresh = model.newCache(manager, batch, promptLength + Math.max(1, Math.min(budget,
                    INITIAL_REPLY_POSITIONS)));
            float[][] logits;
            try (NDManager step = manager.newSubManager()) {
                NDArray embeddings = prompts.embeddings().duplicate();
                embeddings.attach(step);
                logits = lastLogits(model.prefill(embeddings, positions, prompts.valid(), fresh));
            } catch (RuntimeException e) {
                fresh.close();
                throw e;
            }
            if (cache == null) cache = fresh;
            else cache.absorb(fresh);
            int room = context - joined;
            for (int b = 0; b < batch; b++) {
                Options o = options.get(b);
                long[] ids = prompts.textIds() == null ? new long[0] : prompts.textIds().get(b);
                Row row = new Row(b, ids, (int) Math.min(o.maxNewTokens(), room), o, listeners.get(b));
                live.add(new Live<>(keys.get(b), row, lengths[b], room < o.maxNewTokens() ? FinishReason.CONTEXT
                        : FinishReason.LENGTH, logits[b]));
            }
        }

        /** Every row takes its next token; the rows that end leave (returned); the others advance one position. */
        public List<Ended<K>> step() {
            List<Ended<K>> ended = new ArrayList<>();
            List<Live<K>> going = new ArrayList<>();
            List<Integer> kept = new ArrayList<>();
            for (int i = 0; i < live.size(); i++) {
                Live<K> r = live.get(i);
                if (!r.row.done()) {
                    if (r.row.options.cancelled().getAsBoolean()) r.row.cancelled = true;
                    else r.row.accept(r.row.sampler.next(r.logits, r.row.seen, r.row.seenCount));
                }
                if (r.row.done()) {
                    ended.add(new Ended<>(r.key, r.row.finish(r.promptTokens, r.outOfTokens)));
                } else {
                    going.add(r);
                    kept.add(i);
                }
            }
            if (going.isEmpty()) {
                abandon();
                return ended;
            }
            if (going.size() < live.size()) cache.keep(kept.stream().mapToInt(Integer::intValue).toArray());
            live = going;
            int batch = live.size();
            long[] next = new long[batch];
            long[][] positions = new long[batch][1];
            boolean[][] valid = new boolean[batch][1];
            for (int b = 0; b < batch; b++) {
                Live<K> r = live.get(b);
                next[b] = r.row.lastToken();
                positions[b][0] = r.position++;
                valid[b][0] = true;
            }
            try (NDManager step = manager.newSubManager()) {
                NDArray ids = step.create(next, new Shape(batch, 1));
                float[][] logits = lastLogits(model.hiddenStates(model.embed(ids), positions, valid, cache));
                for (int b = 0; b < batch; b++) live.get(b).logits = logits[b];
            }
            return ended;
        }

        /** Drops every row (after a failed step, say) and returns their keys. */
        public List<K> abandon() {
            List<K> keys = live.stream().map(r -> r.key).toList();
            live = new ArrayList<>();
            if (cache != null) cache.close();
            cache = null;
            return keys;
        }

        @Override
        public void close() {
            abandon();
            manager.close();
        }
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
