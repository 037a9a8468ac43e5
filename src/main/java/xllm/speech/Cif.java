package xllm.speech;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Activation;

/**
 * Continuous integrate-and-fire (Dong &amp; Xu, ICASSP 2020, §2): frame weights α are integrated left to right and a
 * token "fires" each time the running sum crosses the threshold; token k is the α-weighted sum of the frame
 * vectors that fall into its unit of integrated weight. Matches FunASR's per-frame loop {@code cif}
 * (funasr/models/paraformer/cif_predictor.py @ 57f97776) through the {@code cif_loop} fixtures in {@code CifTest}
 * (float64 ≤ 1e-10, float32 ≤ 1e-5, gradients to hidden and alphas included).
 *
 * <p>Loop-free, as docs/CIF.md requires: with {@code c_t = Σ_{s≤t} α_s} (float64) and {@code c_prev_t = c_{t−1}},
 * <pre>
 *   W[b,k,t] = max(0, min(c_t, (k+1)θ) − max(c_prev_t, kθ))      the share of frame t that token k receives
 *   embeds   = W @ hidden                                        (B, L, U) @ (B, U, D)
 * </pre>
 * W is built with a handful of broadcast tensor ops on (B, L, U) in hidden's type, so gradients reach both hidden
 * and α and there is no per-frame host round trip; the host only does O(B·U) scalar work (fire positions, counts,
 * each frame's first token j_t = floor(c_prev_t/θ)). The differentiable inputs of W are taken relative to j_t·θ,
 * so they stay in [0, α+θ) and float32 keeps them precise however long the utterance. Memory is a few (B, L, U)
 * temporaries (16 MB each at B=16, L=256, U=1000, float32). A frame with α &gt; θ (possible after training-time scaling) feeds several tokens
 * by the same formula, where the loop would produce negative weights. Tokens past the last fire (the unfinished
 * remainder) get no weight.
 *
 * <p>Output length follows the fixture (FunASR's loop): {@code L = max_b max(fires_b, round(Σα_b / θ))}, tokens
 * past a row's fire count are zero; it is 0 (an empty (B, 0, D) result) only when nothing fires and every
 * {@code round(Σα)} is 0. Callers that need an exact length (the predictor) narrow or pad the result.
 */
public final class Cif {

    /** Which precision decides where tokens fire. */
    public enum PrefixSum {
        /** The cumulative sum in float64: what xllm uses. */
        FLOAT64,
        /** float64 cumsum rounded to float32, as FunASR's {@code cif_v1}; only to compare with its outputs. */
        FLOAT32_AS_FUNASR
    }

    /**
     * @param embeds     (B, L, D) token vectors, in hidden's type; rows past fireCounts[b] are zero
     * @param fires      (B, U) FunASR's fire trace {@code frac(c_t/θ) + 1[a token fires at t]}, in alphas' type
     * @param fireCounts tokens per row, {@code floor(Σα_b / θ)}
     */
    public record Result(NDArray embeds, NDArray fires, long[] fireCounts) {}

    private Cif() {}

    /** Integrates with the float64 prefix sum. hidden (B, U, D), alphas (B, U) ≥ 0, threshold θ &gt; 0 (1.0 in FunASR). */
    public static Result integrate(NDArray hidden, NDArray alphas, double threshold) {
        return integrate(hidden, alphas, threshold, PrefixSum.FLOAT64);
    }

    public static Result integrate(NDArray hidden, NDArray alphas, double threshold, PrefixSum prefixSum) {
        if (!(threshold > 0)) throw new IllegalArgumentException("threshold must be positive, got " + threshold);
        Shape hiddenShape = hidden.getShape();
        if (hiddenShape.dimension() != 3 || alphas.getShape().dimension() != 2
                || alphas.getShape().get(0) != hiddenShape.get(0) || alphas.getShape().get(1) != hiddenShape.get(1)) {
            throw new IllegalArgumentException("expected hidden (B, U, D) and alphas (B, U), got " + hiddenShape
                    + " and " + alphas.getShape());
        }
        int batch = (int) hiddenShape.get(0), frames = (int) hiddenShape.get(1);
        long width = hiddenShape.get(2);
        NDManager manager = hidden.getManager();
        if (frames == 0) {
            return new Result(manager.zeros(new Shape(batch, 0, width), hidden.getDataType()),
                    manager.zeros(new Shape(batch, 0), alphas.getDataType()), new long[batch]);
        }

        // step 1: prefix sums c (B, U) and c_prev (B, U) in float64 (float32 cumsums miscount tokens, FunASR #1811)
        NDArray cumulative = cast(alphas, DataType.FLOAT64).cumSum(1);
        if (prefixSum == PrefixSum.FLOAT32_AS_FUNASR) {
            cumulative = cast(cast(cumulative, DataType.FLOAT32), DataType.FLOAT64);
        }
        NDArray previous = NDArrays.concat(new NDList(
                manager.zeros(new Shape(batch, 1), DataType.FLOAT64), cumulative.get(":, :-1")), 1);

        // step 2: on the host, O(B·U) scalars: where tokens fire, how many, the output length, and for every frame
        //         the token j_t = floor(c_prev_t / θ) it starts in
        double[] c;
        try (NDArray detached = cumulative.stopGradient()) {
            c = detached.toDoubleArray();
        }
        long[] fireCounts = new long[batch];
        double[] fireTrace = new double[batch * frames];
        double[] frameBase = new double[batch * frames]; // j_t·θ
        long length = 0;
        for (int b = 0; b < batch; b++) {
            double floorPrevious = 0;
            for (int t = 0; t < frames; t++) {
                frameBase[b * frames + t] = floorPrevious * threshold;
                double scaled = c[b * frames + t] / threshold;
                double floor = Math.floor(scaled);
                fireTrace[b * frames + t] = scaled - floor + (floor > floorPrevious ? 1 : 0);
                floorPrevious = floor;
            }
            double total = frames == 0 ? 0 : c[b * frames + frames - 1] / threshold;
            fireCounts[b] = (long) Math.floor(total);
            length = Math.max(length, Math.max(fireCounts[b], (long) Math.rint(total)));
        }
        DataType type = hidden.getDataType();
        NDArray fires = manager.create(fireTrace, new Shape(batch, frames)).toType(alphas.getDataType(), false);
        if (length == 0) {
            return new Result(manager.zeros(new Shape(batch, 0, width), type), fires, fireCounts);
        }

        // step 3: banded weights W (B, L, U) = max(0, min(c_t, (k+1)θ) − max(c_prev_t, kθ)) for k < fireCounts[b],
        //         written as relu(θ − relu((k+1)θ − c_t) − relu(c_prev_t − kθ)) (relu's gradient at a tie is 0, not
        //         split as min/max's) and computed relative to each frame's j_t·θ: the differentiable inputs are
        //         c − j·θ and c_prev − j·θ in [0, α+θ), precise in float32 too, so W is built in hidden's type
        NDArray base = manager.create(frameBase, new Shape(batch, frames));                       // (B, U) float64
        NDArray end = cast(cumulative.sub(base), type).expandDims(1);                             // (B, 1, U)
        NDArray start = cast(previous.sub(base), type).expandDims(1);                             // (B, 1, U)
        double[] tokenStarts = new double[(int) length];
        for (int k = 0; k < length; k++) tokenStarts[k] = k * threshold;
        NDArray tokenStart = manager.create(tokenStarts, new Shape(1, length, 1)).toType(type, false)
                .sub(base.expandDims(1).toType(type, false));                                     // (B, L, U) kθ − jθ
        double[] fired = new double[(int) (batch * length)];
        for (int b = 0; b < batch; b++) {
            for (int k = 0; k < Math.min(length, fireCounts[b]); k++) fired[(int) (b * length + k)] = 1;
        }
        NDArray tokenFired = manager.create(fired, new Shape(batch, length, 1)).toType(type, false); // (B, L, 1)
        NDArray endOverrun = Activation.relu(tokenStart.add(threshold).sub(end));               // (B, L, U)
        NDArray startOverrun = Activation.relu(start.sub(tokenStart));                          // (B, L, U)
        NDArray weights = Activation.relu(endOverrun.add(startOverrun).neg().add(threshold)).mul(tokenFired);

        // step 4: embeds = W @ hidden
        NDArray embeds = weights.matMul(hidden);                                                 // (B, L, D)
        return new Result(embeds, fires, fireCounts);
    }

    /**
     * A type conversion that autograd follows. DJL's {@code toType} detaches (its JNI conversion drops the graph:
     * "element 0 of tensors does not require grad"), so the cast is done as a cumulative product over a new axis of
     * length 1, which PyTorch computes in the requested type and differentiates.
     */
    static NDArray cast(NDArray x, DataType type) {
        if (x.getDataType() == type) return x;
        return x.expandDims(-1).cumProd(-1, type).squeeze(-1);
    }
}
