package xllm.llm;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Activation;
import ai.djl.nn.core.Embedding;
import xllm.tensor.TransformerOps;

/**
 * A frozen Llama-family decoder (Llama 2/3, Qwen2/2.5, SmolLM2, Mistral) as a record of tensors and a pure forward
 * function: RMSNorm, RoPE, grouped-query attention with an optional KV cache, SwiGLU MLP, tied or untied LM head.
 *
 * <p>The forward pass takes <em>input embeddings</em>, not token ids: the caller embeds text tokens with
 * {@link #embed} and may put its own vectors (image, video or speech tokens from an X2L interface) at any positions —
 * the X2L hook of X-LLM. Gradients flow back to those vectors; the model's own tensors never require gradients.
 *
 * <p>To keep the op count per token low (DJL pays ≈5 µs per op), weights are re-arranged once at load time without
 * changing the function: each RMSNorm gain is folded into the columns of the linear layers that follow it, q/k/v and
 * gate/up projections are concatenated into one matrix each, and 1/sqrt(hd) is folded into the query projection.
 * Parity with transformers is tested in {@code LlamaParityTest} (logits ≤ 1e-3 for SmolLM2-135M, ≤ 1e-4 for the tiny
 * random checkpoints) and the cache against full recomputation in {@code LlamaModelTest}.
 *
 * <p>Memory grows linearly with the prompt: each layer frees its intermediates when it ends, and {@link #prefill}
 * feeds a prompt through the KV cache in chunks, so no (T, T) attention score matrix is ever formed in generation
 * ({@code LlamaModelTest.prefillPeakMemoryGrowsLinearlyWithPromptLength}).
 */
public final class LlamaModel implements AutoCloseable {

    /**
     * One decoder block. Weights are stored transposed, (in, out), for {@code x @ W}: on this CPU libtorch's matmul
     * of a row vector with a (in, out) matrix runs up to 1.7× faster than {@code linear} with the (out, in) layout.
     */
    record Layer(
            NDArray qkv,        // (D, (H + 2·KV)·hd): [Wq·g/√hd ; Wk·g ; Wv·g]ᵀ, g = input RMSNorm gain
            NDArray qkvBias,    // ((H + 2·KV)·hd) or null
            NDArray output,     // (H·hd, D)
            NDArray gateUp,     // (D, 2F): [Wgate·g' ; Wup·g']ᵀ, g' = post-attention RMSNorm gain
            NDArray down) {}    // (F, D)

    private final LlamaConfig config;
    private final NDManager manager;
    private final NDArray tokenEmbedding; // (V, D)
    private final Layer[] layers;
    private final NDArray lmHead;         // (D, V): the untied head ᵀ with the final RMSNorm gain folded in, or, tied,
                                          // a transposed view of the token embedding (no second copy of V × D)
    private final NDArray headGain;       // (D): the final RMSNorm gain when the head is tied (applied to the
                                          // hidden state), else null
    private final NDArray ropeCos;        // (maxPositions, hd)
    private final NDArray ropeSin;        // (maxPositions, hd)
    private final NDArray rotateHalf;     // (hd, hd)
    private final DataType dataType;
    // Slices reused by every layer and step (parsing an NDIndex costs as much as an op).
    private final NDIndex queryKeyHeads;  // [:, :, :H+KV]
    private final NDIndex queryHeads;     // [:, :, :H]
    private final NDIndex keyHeads;       // [:, :, H:]
    private final NDIndex valueHeads;     // [:, :, H+KV:]
    private final NDIndex gateHalf;       // [..., :F]
    private final NDIndex upHalf;         // [..., F:]
    /** Test hook: runs at the end of each decoder layer, where a forward's live memory peaks. Null in use. */
    Runnable afterEachLayer;

    /**
     * @param untiedHead the untied LM head (D, V) with the final RMSNorm gain folded in, or null when the head is the
     *                   token embedding ({@code headGain} then holds the gain)
     */
    LlamaModel(LlamaConfig config, NDManager manager, NDArray tokenEmbedding, Layer[] layers, NDArray untiedHead,
               NDArray headGain) {
        if ((untiedHead == null) == (headGain == null)) {
            throw new IllegalArgumentException("give either an untied head or the tied head's gain");
        }
        this.config = config;
        this.manager = manager;
        this.tokenEmbedding = tokenEmbedding;
        this.layers = layers;
        this.lmHead = untiedHead != null ? untiedHead : tokenEmbedding.transpose();
        this.headGain = headGain;
        this.dataType = tokenEmbedding.getDataType();
        float[] inverse = TransformerOps.ropeInverseFrequencies(config.headDim(), config.ropeTheta(), config.ropeScaling());
        NDArray[] tables = TransformerOps.ropeTables(manager, config.maxPositions(), config.headDim(), inverse, dataType);
        this.ropeCos = tables[0];
        this.ropeSin = tables[1];
        this.rotateHalf = TransformerOps.rotateHalfMatrix(manager, config.headDim(), dataType);
        int heads = config.numHeads(), kvHeads = config.numKeyValueHeads();
        this.queryKeyHeads = new NDIndex(":, :, :{}", heads + kvHeads);
        this.queryHeads = new NDIndex(":, :, :{}", heads);
        this.keyHeads = new NDIndex(":, :, {}:", heads);
        this.valueHeads = new NDIndex(":, :, {}:", heads + kvHeads);
        this.gateHalf = new NDIndex("..., :{}", config.intermediateSize());
        this.upHalf = new NDIndex("..., {}:", config.intermediateSize());
    }

    public LlamaConfig config() {
        return config;
    }

    public DataType dataType() {
        return dataType;
    }

    public NDManager manager() {
        return manager;
    }

    /** Token embedding matrix (V, D); frozen. */
    public NDArray tokenEmbedding() {
        return tokenEmbedding;
    }

    /** Embeds token ids (B, T) int64 into (B, T, D), attached to the ids' manager. */
    public NDArray embed(NDArray tokenIds) {
        return gatherRows(tokenEmbedding, tokenIds, tokenIds.getManager());
    }

    /**
     * Runs the decoder over T new positions and returns the final hidden states (B, T, D), already RMS-normalised
     * (the final gain lives in {@link #logits}). With a cache, keys/values are appended at {@code cache.length()} and
     * attention sees the whole history; without, attention is over these T positions only.
     *
     * @param inputEmbeddings (B, T, D) token or modality embeddings; the result (and the RoPE rows and mask shared by
     *                        the layers) attach to its manager, each layer's intermediates are freed as it ends
     * @param positions       (B, T) RoPE position of each token (left padding gives rows different offsets)
     * @param tokenValid      (B, T) false marks padding tokens, which no query attends to
     * @param cache           key/value history, or null for a single full pass (training)
     */
    public NDArray hiddenStates(NDArray inputEmbeddings, long[][] positions, boolean[][] tokenValid, KvCache cache) {
        NDManager scope = inputEmbeddings.getManager();
        Shape shape = inputEmbeddings.getShape();
        int batch = (int) shape.get(0), tokens = (int) shape.get(1);
        int heads = config.numHeads(), kvHeads = config.numKeyValueHeads(), headDim = config.headDim();

        // step 1: per-token RoPE angles and the attention mask, shared by all layers
        long[] flatPositions = new long[batch * tokens];
        for (int b = 0; b < batch; b++) {
            for (int t = 0; t < tokens; t++) {
                long p = positions[b][t];
                if (p < 0 || p >= config.maxPositions()) {
                    throw new IllegalArgumentException("position " + p + " outside the model's range [0, "
                            + config.maxPositions() + ")");
                }
                flatPositions[b * tokens + t] = p;
            }
        }
        NDArray positionIndex = scope.create(flatPositions);
        NDArray cos = gatherRows(ropeCos, positionIndex, scope).reshape(batch, tokens, 1, headDim);
        NDArray sin = gatherRows(ropeSin, positionIndex, scope).reshape(batch, tokens, 1, headDim);
        int start = cache == null ? 0 : cache.length();
        int history = start + tokens;
        boolean[][] keyValid;
        if (cache == null) {
            keyValid = tokenValid;
        } else {
            cache.reserve(tokenValid);
            keyValid = cache.validity();
        }
        // A single new token that may see every key needs no mask (the common decode step).
        NDArray mask = tokens == 1 && allTrue(keyValid, history) ? null
                : TransformerOps.attentionMask(scope, keyValid, start, tokens, history, dataType);
        NDIndex[] cacheSlots = cache == null ? null : KvCache.slots(start, history);

        NDArray x = inputEmbeddings; // (B, T, D)
        for (int l = 0; l < layers.length; l++) {
            Layer layer = layers[l];
            NDArray next;
            // Each layer's intermediates (q/k/v, the (B, KV, G·T, S) attention scores, the MLP's (B, T, 2F)) live in
            // their own scope, freed when the layer ends: kept until the whole forward ended, they made memory grow
            // with layers × T². Ops attach their results to their first operand's manager, so x joins the scope
            // (the caller's embeddings only for the layer's duration). Autograd keeps what backward needs by itself.
            try (NDManager layerScope = scope.newSubManager()) {
                if (x == inputEmbeddings) x.tempAttach(layerScope);
                else x.attach(layerScope);
                // step 2: attention block
                NDArray normed = TransformerOps.rmsNormalize(x, config.rmsNormEps());
                NDArray qkv = linear(normed, layer.qkv, layer.qkvBias)
                        .reshape(batch, tokens, heads + 2L * kvHeads, headDim);             // (B, T, H+2KV, hd)
                NDArray queryKey = TransformerOps.applyRope(qkv.get(queryKeyHeads), cos, sin, rotateHalf); // (B, T, H+KV, hd)
                NDArray q = queryKey.get(queryHeads);                                        // (B, T, H, hd)
                NDArray k = queryKey.get(keyHeads).transpose(0, 2, 1, 3);                    // (B, KV, T, hd)
                NDArray v = qkv.get(valueHeads).transpose(0, 2, 1, 3);                       // (B, KV, T, hd)
                NDArray keys = k;
                NDArray values = v;
                if (cache != null) {
                    NDArray[] kv = cache.append(l, cacheSlots, k, v);                        // (B, KV, S, hd) views
                    keys = attach(kv[0], layerScope);
                    values = attach(kv[1], layerScope);
                }
                NDArray attention = TransformerOps.groupedQueryAttention(q, keys, values, mask);  // (B, T, H·hd)
                NDArray attended = x.add(linear(attention, layer.output, null));

                // step 3: SwiGLU MLP block
                NDArray gateUp = linear(TransformerOps.rmsNormalize(attended, config.rmsNormEps()), layer.gateUp, null);
                NDArray gate = gateUp.get(gateHalf);
                NDArray up = gateUp.get(upHalf);
                NDArray activated = gate.mul(Activation.sigmoid(gate)).mul(up);  // silu(gate)·up
                next = attach(attended.add(linear(activated, layer.down, null)), scope);  // (B, T, D), outlives the layer
                if (afterEachLayer != null) afterEachLayer.run();
            }
            x = next;
        }
        if (cache != null) cache.advance(tokens);
        // step 4: final RMSNorm (its gain is applied by logits(): folded into an untied head, on the hidden state for a
        // tied one)
        NDArray normalized = TransformerOps.rmsNormalize(x, config.rmsNormEps());
        if (x != inputEmbeddings) x.close();
        return normalized;
    }

    /**
     * Prompt positions that {@link #prefill} runs through the decoder at once. Attention scores then take
     * (B, H, 256, S) floats rather than (B, H, T, T): a 4,096-token prompt needs 38 MB per layer instead of 600 MB.
     * Small enough to bound memory, large enough that the matmuls stay efficient and short prompts take one pass.
     */
    public static final int PREFILL_CHUNK = 256;

    /**
     * Runs a prompt into {@code cache} in chunks of {@link #PREFILL_CHUNK} positions, so that attention memory grows
     * linearly with the prompt, and returns the final hidden state of its last position (B, 1, D), attached to the
     * embeddings' manager: all that generation needs to pick the first new token.
     *
     * @param inputEmbeddings (B, T, D) prompt embeddings, left-padded where {@code tokenValid} is false
     * @param positions       (B, T) RoPE position of each token
     * @param tokenValid      (B, T) false marks padding
     * @param cache           receives the keys and values of all T positions
     */
    public NDArray prefill(NDArray inputEmbeddings, long[][] positions, boolean[][] tokenValid, KvCache cache) {
        return prefill(inputEmbeddings, positions, tokenValid, cache, PREFILL_CHUNK);
    }

    NDArray prefill(NDArray inputEmbeddings, long[][] positions, boolean[][] tokenValid, KvCache cache, int chunk) {
        NDManager scope = inputEmbeddings.getManager();
        int tokens = (int) inputEmbeddings.getShape().get(1);
        NDArray last = null;
        for (int start = 0; start < tokens; start += chunk) {
            int end = Math.min(tokens, start + chunk);
            try (NDManager chunkScope = scope.newSubManager()) {
                NDArray part = attach(inputEmbeddings.get(new NDIndex(":, {}:{}, :", start, end)), chunkScope); // (B, c, D)
                NDArray hidden = hiddenStates(part, columns(positions, start, end), columns(tokenValid, start, end), cache);
                if (end == tokens) last = attach(hidden.get(new NDIndex(":, -1:, :")).duplicate(), scope);  // (B, 1, D)
            }
        }
        return last;
    }

    private static long[][] columns(long[][] rows, int from, int to) {
        long[][] out = new long[rows.length][];
        for (int b = 0; b < rows.length; b++) out[b] = java.util.Arrays.copyOfRange(rows[b], from, to);
        return out;
    }

    private static boolean[][] columns(boolean[][] rows, int from, int to) {
        boolean[][] out = new boolean[rows.length][];
        for (int b = 0; b < rows.length; b++) out[b] = java.util.Arrays.copyOfRange(rows[b], from, to);
        return out;
    }

    private static boolean allTrue(boolean[][] valid, int length) {
        for (boolean[] row : valid) {
            for (int i = 0; i < length; i++) if (!row[i]) return false;
        }
        return true;
    }

    /** Logits (…, V) for normalised hidden states (…, D). */
    public NDArray logits(NDArray hidden) {
        return linear(headGain == null ? hidden : hidden.mul(headGain), lmHead, null);
    }

    /** Full forward: logits (B, T, V) of every position. */
    public NDArray forward(NDArray inputEmbeddings, long[][] positions, boolean[][] tokenValid, KvCache cache) {
        return logits(hiddenStates(inputEmbeddings, positions, tokenValid, cache));
    }

    /** Forward over token ids (B, T) with contiguous positions from the cache length; no padding. */
    public NDArray forwardTokens(NDArray tokenIds, KvCache cache) {
        Shape s = tokenIds.getShape();
        int batch = (int) s.get(0), tokens = (int) s.get(1);
        int start = cache == null ? 0 : cache.length();
        long[][] positions = new long[batch][tokens];
        boolean[][] valid = new boolean[batch][tokens];
        for (int b = 0; b < batch; b++) {
            for (int t = 0; t < tokens; t++) {
                positions[b][t] = start + t;
                valid[b][t] = true;
            }
        }
        return forward(embed(tokenIds), positions, valid, cache);
    }

    public KvCache newCache(NDManager parent, int batch, int capacity) {
        return new KvCache(parent, config, batch, capacity, dataType);
    }

    /** The same model with every tensor converted (e.g. to float64 for finite-difference tests). */
    public LlamaModel toType(DataType type) {
        NDManager target = manager.getParentManager().newSubManager();
        Layer[] converted = new Layer[layers.length];
        for (int l = 0; l < layers.length; l++) {
            Layer layer = layers[l];
            converted[l] = new Layer(convert(layer.qkv, type, target),
                    layer.qkvBias == null ? null : convert(layer.qkvBias, type, target),
                    convert(layer.output, type, target), convert(layer.gateUp, type, target), convert(layer.down, type, target));
        }
        return new LlamaModel(config, target, convert(tokenEmbedding, type, target), converted,
                headGain == null ? convert(lmHead, type, target) : null,
                headGain == null ? null : convert(headGain, type, target));
    }

    private static NDArray convert(NDArray array, DataType type, NDManager target) {
        NDArray out = array.toType(type, true);
        out.attach(target);
        return out;
    }

    /** {@code table[index]} row gather (index of any shape → index shape + (width,)), result owned by scope. */
    private static NDArray gatherRows(NDArray table, NDArray index, NDManager scope) {
        return attach(Embedding.embedding(index, table, ai.djl.ndarray.types.SparseFormat.DENSE).singletonOrThrow(), scope);
    }

    /** {@code x @ W (+ b)} with W stored (in, out). */
    private static NDArray linear(NDArray x, NDArray weight, NDArray bias) {
        NDArray y = x.matMul(weight);
        return bias == null ? y : y.add(bias);
    }

    private static NDArray attach(NDArray array, NDManager scope) {
        array.attach(scope);
        return array;
    }

    /** The decoder blocks (tests check that frozen weights never take gradients). */
    Layer[] layersForTest() {
        return layers;
    }

    /** Number of parameters of the original (unfused) checkpoint. */
    public long parameterCount() {
        long d = config.hiddenSize();
        long perLayer = layers[0].qkv.size() + (layers[0].qkvBias == null ? 0 : layers[0].qkvBias.size())
                + layers[0].output.size() + layers[0].gateUp.size() + layers[0].down.size() + 2 * d;
        long head = headGain != null ? 0 : lmHead.size();
        return tokenEmbedding.size() + perLayer * layers.length + d + head;
    }

    @Override
    public void close() {
        manager.close();
    }

    static NDArray concatRows(NDArray... parts) {
        return NDArrays.concat(new ai.djl.ndarray.NDList(parts), 0);
    }
}
