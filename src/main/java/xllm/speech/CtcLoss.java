package xllm.speech;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;

/**
 * Connectionist temporal classification loss (Graves et al. 2006), which DJL lacks: the forward (α) recursion over
 * the blank-interleaved label sequence in log space, written as a handful of (B, S) tensor ops per frame so that
 * autograd gives the gradient. Equals {@code torch.nn.functional.ctc_loss(..., reduction="mean",
 * zero_infinity=True)}: each row's −log p(y|x) divided by its target length, rows that cannot be aligned (too few
 * frames) counted as 0, averaged over the batch ({@code CtcLossTest}, fixtures of
 * tools/reference/make_ctc_fixtures.py, loss and gradients to the logits).
 *
 * <p>Cost: about a dozen small ops per frame (U ≈ 75 for 3 s at 4× subsampling), forward and backward each a few ms.
 * "−∞" is {@link #NEGATIVE} (finite, so that log-sum-exp over impossible paths stays finite and its gradient 0).
 */
public final class CtcLoss {

    static final float NEGATIVE = -1e30f;
    /** A row whose log-likelihood is below this could not be aligned (zero_infinity). */
    private static final double IMPOSSIBLE = -1e29;

    private CtcLoss() {}

    /**
     * @param logProbs (B, U, C) log-probabilities (log_softmax), frames past lengths[b] ignored
     * @param lengths  valid frames per row
     * @param targets  label ids per row (non-empty, none equal to blank)
     * @param blank    the blank class id
     * @return scalar mean over rows of −log p(targets_b) / |targets_b|, 0 for unalignable rows
     */
    public static NDArray loss(NDArray logProbs, long[] lengths, long[][] targets, int blank) {
        NDManager manager = logProbs.getManager();
        Shape shape = logProbs.getShape();
        int batch = (int) shape.get(0), frames = (int) shape.get(1), classes = (int) shape.get(2);
        int longest = 0;
        for (long[] t : targets) longest = Math.max(longest, t.length);
        int states = 2 * longest + 1;

        // step 1: on the host: the extended labels (blank, y1, blank, y2, …, blank) as a (B, C, S) one-hot, the
        //         additive masks of the skip transition (s−2 → s allowed when y_s is not blank and differs from
        //         y_{s−2}), of the start states {0, 1} and of the end states {S_b−1, S_b−2}
        float[] oneHot = new float[batch * classes * states];
        float[] skip = new float[batch * states], start = new float[batch * states], end = new float[batch * states];
        java.util.Arrays.fill(skip, NEGATIVE);
        java.util.Arrays.fill(start, NEGATIVE);
        java.util.Arrays.fill(end, NEGATIVE);
        for (int b = 0; b < batch; b++) {
            int[] labels = new int[states];
            java.util.Arrays.fill(labels, blank);
            for (int k = 0; k < targets[b].length; k++) {
                if (targets[b][k] == blank || targets[b][k] < 0 || targets[b][k] >= classes) {
                    throw new IllegalArgumentException("row " + b + ": label " + targets[b][k] + " is blank or out of range");
                }
                labels[2 * k + 1] = (int) targets[b][k];
            }
            int used = 2 * targets[b].length + 1;
            for (int s = 0; s < states; s++) {
                oneHot[(b * classes + labels[s]) * states + s] = 1f;
                if (s >= 2 && s < used && labels[s] != blank && labels[s] != labels[s - 2]) skip[b * states + s] = 0f;
            }
            start[b * states] = 0f;
            start[b * states + 1] = 0f;
            end[b * states + used - 1] = 0f;
            end[b * states + used - 2] = 0f;
        }
        NDArray emissions = logProbs.matMul(manager.create(oneHot, new Shape(batch, classes, states)));    // (B, U, S)
        NDArray skipMask = manager.create(skip, new Shape(batch, states));
        NDArray negativeColumns = manager.full(new Shape(batch, 2), NEGATIVE);

        // step 2: α_0 = start + e_0; α_t = lse(α_{t−1}[s], α_{t−1}[s−1], α_{t−1}[s−2] + skip) + e_t. Rows shorter than
        //         the batch keep recursing over their padding; their α at t = U_b − 1 is picked out afterwards
        NDArray alpha = emissions.get(":, 0, :").add(manager.create(start, new Shape(batch, states)));      // (B, S)
        NDList history = new NDList(alpha);
        for (int t = 1; t < frames; t++) {
            NDArray shift1 = NDArrays.concat(new NDList(negativeColumns.get(":, :1"), alpha.get(":, :-1")), 1);
            NDArray shift2 = states > 2
                    ? NDArrays.concat(new NDList(negativeColumns, alpha.get(":, :-2")), 1).add(skipMask)
                    : negativeColumns.get(":, :" + states);
            alpha = logSumExp(NDArrays.stack(new NDList(alpha, shift1, shift2), 2)).add(emissions.get(":, " + t + ", :"));
            history.add(alpha);
        }
        float[] last = new float[frames * batch];
        for (int b = 0; b < batch; b++) {
            if (lengths[b] < 1 || lengths[b] > frames) throw new IllegalArgumentException("row " + b + ": length " + lengths[b]);
            last[(int) (lengths[b] - 1) * batch + b] = 1f;
        }
        alpha = NDArrays.stack(history, 0).mul(manager.create(last, new Shape(frames, batch, 1))).sum(new int[] {0}); // (B, S)

        // step 3: log p = lse over the two end states; rows that cannot be aligned get weight 0
        NDArray logLikelihood = logSumExp(alpha.add(manager.create(end, new Shape(batch, states))));          // (B)
        float[] values = logLikelihood.toFloatArray();
        float[] weights = new float[batch];
        for (int b = 0; b < batch; b++) {
            weights[b] = values[b] < IMPOSSIBLE || !Float.isFinite(values[b]) ? 0f : 1f / (targets[b].length * (float) batch);
        }
        return logLikelihood.mul(manager.create(weights, new Shape(batch))).sum().neg();
    }

    /** log Σ exp over the last axis, with the (detached) maximum subtracted first. */
    private static NDArray logSumExp(NDArray x) {
        NDArray max = x.max(new int[] {-1}, true).stopGradient();
        return x.sub(max).exp().sum(new int[] {-1}).log().add(max.squeeze(-1));
    }
}
