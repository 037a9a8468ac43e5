package xllm.tensor;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;

/**
 * Decoder-transformer ops that DJL 0.36 lacks: RMSNorm, rotary position embeddings (plain and Llama-3 scaled),
 * causal + padding masks and grouped-query attention over a key/value history. All are written as a handful of
 * large PyTorch ops (no per-element Java loops on the hot path) and work in float32 and float64 with autograd.
 * Matched against Hugging Face transformers' Llama/Qwen2 through the logits fixtures in {@code LlamaParityTest}.
 */
public final class TransformerOps {

    /** Added to masked attention scores; finite so that a fully masked (padding) row gives a uniform row, not NaN. */
    public static final float MASKED = -1e9f;

    private TransformerOps() {}

    /**
     * {@code x / sqrt(mean(x², -1) + eps)}; the RMSNorm gain is folded into the next linear layer by the caller.
     *
     * <p>No {@code pow(Number)} / {@code div(Number)} / {@code mul(Number)} here or anywhere on a path that is
     * differentiated: DJL turns the number into a tensor over a Java direct buffer, runs the op and frees that tensor
     * at once, but autograd keeps it for the backward pass (pow and div need their second operand), which then reads
     * freed memory — NaN or garbage gradients after the next GC. {@code add(Number)} is safe: its backward needs
     * no operand.
     */
    public static NDArray rmsNormalize(NDArray x, float eps) {
        return x.div(x.square().mean(new int[] {-1}, true).add(eps).sqrt());
    }

    /** RMSNorm with its gain, as the reference defines it: {@code weight * x / sqrt(mean(x²) + eps)}. */
    public static NDArray rmsNorm(NDArray x, NDArray weight, float eps) {
        return rmsNormalize(x, eps).mul(weight);
    }

    /** Llama-3 style frequency scaling; null means plain RoPE. */
    public record RopeScaling(double factor, double lowFreqFactor, double highFreqFactor, int originalMaxPositions) {}

    /**
     * Inverse frequencies {@code 1 / theta^(2i/d)}, computed in float32 exactly as transformers does (so angles agree
     * bit for bit at every position), with the Llama-3 wavelength-dependent scaling when given.
     */
    public static float[] ropeInverseFrequencies(int headDim, double theta, RopeScaling scaling) {
        float[] inv = new float[headDim / 2];
        for (int i = 0; i < inv.length; i++) {
            float exponent = (float) (2 * i) / (float) headDim;
            inv[i] = (float) (1.0 / (float) Math.pow(theta, exponent));
        }
        if (scaling == null) return inv;
        double lowWavelen = scaling.originalMaxPositions() / scaling.lowFreqFactor();
        double highWavelen = scaling.originalMaxPositions() / scaling.highFreqFactor();
        for (int i = 0; i < inv.length; i++) {
            float f = inv[i];
            float wavelen = (float) (2 * Math.PI) / f;
            float scaled = wavelen > lowWavelen ? f / (float) scaling.factor() : f;
            boolean medium = !(wavelen < highWavelen) && !(wavelen > lowWavelen);
            if (medium) {
                float smooth = (float) ((scaling.originalMaxPositions() / wavelen - scaling.lowFreqFactor())
                        / (scaling.highFreqFactor() - scaling.lowFreqFactor()));
                scaled = (1 - smooth) * scaled / (float) scaling.factor() + smooth * scaled;
            }
            inv[i] = scaled;
        }
        return inv;
    }

    /** cos and sin tables of shape (maxPositions, headDim), halves duplicated as in transformers' rotate_half form. */
    public static NDArray[] ropeTables(NDManager manager, int maxPositions, int headDim, float[] inverseFrequencies,
                                       DataType type) {
        int half = headDim / 2;
        float[] cos = new float[maxPositions * headDim];
        float[] sin = new float[maxPositions * headDim];
        for (int p = 0; p < maxPositions; p++) {
            for (int i = 0; i < half; i++) {
                float angle = (float) p * inverseFrequencies[i]; // float32 product, as the reference
                float c = (float) Math.cos(angle);
                float s = (float) Math.sin(angle);
                cos[p * headDim + i] = c;
                cos[p * headDim + i + half] = c;
                sin[p * headDim + i] = s;
                sin[p * headDim + i + half] = s;
            }
        }
        Shape shape = new Shape(maxPositions, headDim);
        return new NDArray[] {manager.create(cos, shape).toType(type, false), manager.create(sin, shape).toType(type, false)};
    }

    /** (d, d) matrix R with {@code x @ R == rotate_half(x) == cat(-x[d/2:], x[:d/2])}; exact in floating point. */
    public static NDArray rotateHalfMatrix(NDManager manager, int headDim, DataType type) {
        int half = headDim / 2;
        float[] r = new float[headDim * headDim];
        for (int j = 0; j < half; j++) {
            r[(j + half) * headDim + j] = -1f;
            r[j * headDim + j + half] = 1f;
        }
        return manager.create(r, new Shape(headDim, headDim)).toType(type, false);
    }

    /**
     * Applies RoPE to x (B, T, N, hd) given per-token cos/sin (B, T, 1, hd): {@code x·cos + rotate_half(x)·sin}.
     */
    public static NDArray applyRope(NDArray x, NDArray cos, NDArray sin, NDArray rotateHalf) {
        return x.mul(cos).add(x.matMul(rotateHalf).mul(sin));
    }

    /**
     * Additive attention mask (B, 1, 1, T, S) for T queries at key positions [start, start+T) of an S-key history:
     * a key is visible when it is not after the query and its {@code keyValid} flag (B, S) is set.
     */
    public static NDArray attentionMask(NDManager manager, boolean[][] keyValid, int start, int queries, int keys,
                                        DataType type) {
        int batch = keyValid.length;
        float[] mask = new float[batch * queries * keys];
        for (int b = 0; b < batch; b++) {
            for (int t = 0; t < queries; t++) {
                int base = (b * queries + t) * keys;
                int lastVisible = start + t;
                for (int s = 0; s < keys; s++) {
                    mask[base + s] = s <= lastVisible && keyValid[b][s] ? 0f : MASKED;
                }
            }
        }
        return manager.create(mask, new Shape(batch, 1, 1, queries, keys)).toType(type, false);
    }

    /**
     * Grouped-query attention. q (B, T, H, hd) already scaled by 1/sqrt(hd); keys and values (B, KV, S, hd); mask (B, 1, 1, T, S) or null when every query
     * sees every key. Query heads h = kv·G + g share key/value head kv, done as one batched matmul per kv head
     * instead of repeating keys G times. Returns (B, T, H·hd).
     */
    public static NDArray groupedQueryAttention(NDArray q, NDArray keys, NDArray values, NDArray mask) {
        Shape qs = q.getShape();
        long batch = qs.get(0), queries = qs.get(1), heads = qs.get(2), headDim = qs.get(3);
        long kvHeads = keys.getShape().get(1), history = keys.getShape().get(2);
        NDArray keysTransposed = keys.transpose(0, 1, 3, 2); // a view: BLAS reads it transposed
        long groups = heads / kvHeads;
        if (queries == 1 && mask == null) {
            // decode step: (B, 1, H, hd) is already (B, KV, G, hd) in memory, and the result reshapes straight back
            NDArray probabilities = q.reshape(batch, kvHeads, groups, headDim).matMul(keysTransposed).softmax(-1);
            return probabilities.matMul(values).reshape(batch, 1, heads * headDim);                  // (B, 1, H·hd)
        }
        NDArray grouped = q.transpose(0, 2, 1, 3).reshape(batch, kvHeads, groups * queries, headDim); // (B, KV, G·T, hd)
        NDArray scores = grouped.matMul(keysTransposed);                                            // (B, KV, G·T, S)
        if (mask != null) {
            scores = scores.reshape(batch, kvHeads, groups, queries, history).add(mask)               // (B, KV, G, T, S)
                    .reshape(batch, kvHeads, groups * queries, history);
        }
        return scores.softmax(-1).matMul(values)                                                    // (B, KV, G·T, hd)
                .reshape(batch, heads, queries, headDim)
                .transpose(0, 2, 1, 3)                                                              // (B, T, H, hd)
                .reshape(batch, queries, heads * headDim);
    }
}
