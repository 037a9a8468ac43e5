package xllm.train;

import ai.djl.ndarray.NDArray;

import java.util.Locale;

/**
 * Which parameters get weight decay: the BLIP-2 / X-LLM rule. LAVIS {@code RunnerBase.optimizer} (which X-LLM copies)
 * puts a parameter in the no-decay group when {@code p.ndim < 2 or "bias" in n or "ln" in n or "bn" in n}. We keep
 * that rule and state it by name segment instead of raw substring, so it also reads our camelCase names:
 * <ul>
 *   <li>any tensor with fewer than 2 dimensions (biases, LayerNorm/RMSNorm gains, scalars);</li>
 *   <li>any name segment containing {@code bias} ({@code proj.bias}, {@code relative_position_bias_table});</li>
 *   <li>norm layers: a segment containing {@code norm} ({@code LayerNorm}, {@code layer_norm}, {@code rmsNorm}) or
 *       named {@code ln}, {@code ln_*}, {@code *_ln}, {@code ln1}, {@code bn}, {@code bn_*}... (LAVIS's "ln"/"bn",
 *       without its accidental substring hits);</li>
 *   <li>the learned query tokens ({@code query_tokens} / {@code queryTokens}); LAVIS decays them by accident of the
 *       rule (they are 3-D and their name has no "bias"/"ln"/"bn"), X-LLM's brief and BLIP-2 practice exempt them
 *       like other embeddings of learned tokens.</li>
 * </ul>
 * Everything else (projection and attention matrices, convolution kernels, word embeddings) decays.
 * Tested in {@code AdamWTest.groupingRule}.
 */
public final class ParameterGroups {

    private ParameterGroups() {}

    /** Whether {@code name}/{@code value} belongs to the weight-decay group. */
    public static boolean decays(String name, NDArray value) {
        if (value.getShape().dimension() < 2) return false;
        for (String segment : name.split("[./]")) {
            String s = segment.toLowerCase(Locale.ROOT);
            if (s.contains("bias") || s.contains("norm")) return false;
            if (s.matches("(ln|bn)(\\d*|_.*)|.*_(ln|bn)\\d*")) return false;
            if (s.equals("query_tokens") || s.equals("querytokens")) return false;
        }
        return true;
    }
}
