package xllm.llm;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;

import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Compares a greedy continuation with a reference one without hinging on a float32 near-tie. Where two candidate
 * tokens' logits are closer than the numerical error of the comparison, which one wins depends on the CPU's kernels
 * (reduction order, vector width), and every later token depends on that choice. So the reference continuation is
 * teacher-forced through the model in one forward pass. At each step, the reference token must be our top token or
 * trail it by no more than {@code tieMargin}. The first step where the top two are within {@code tieMargin} is a
 * near-tie: the generated tokens must equal the reference before it, and either side is accepted from there on.
 * Without a near-tie the whole continuation must be equal. The smallest margin seen is printed, so a test that only
 * passes by the tie rule shows it.
 */
public final class GreedyReference {

    private GreedyReference() {}

    /**
     * @param prompt    the prompt ids
     * @param reference the reference greedy continuation (from another implementation, or another batch shape)
     * @param generated ours
     * @param tieMargin logit gap below which two tokens count as tied: the logits' tolerance on each side
     * @return the steps before the first near-tie (reference.length when there is none)
     */
    public static int assertSameGreedy(LlamaModel model, long[] prompt, long[] reference, long[] generated,
                                        double tieMargin, String what) {
        int agreed = stepsBeforeNearTie(model, prompt, reference, tieMargin, what);
        if (agreed == reference.length) {
            assertArrayEquals(reference, generated, what + ": greedy continuation");
        } else {
            assertTrue(generated.length >= agreed, what + ": only " + generated.length + " tokens before the near-tie at step " + agreed);
            assertArrayEquals(Arrays.copyOf(reference, agreed), Arrays.copyOf(generated, agreed),
                    what + ": greedy continuation before the near-tie at step " + agreed);
        }
        return agreed;
    }

    /** The number of leading reference steps that are not near-ties; reference.length when there is none. */
    public static int stepsBeforeNearTie(LlamaModel model, long[] prompt, long[] reference, double tieMargin, String what) {
        if (reference.length == 0) return 0;
        long[] ids = new long[prompt.length + reference.length - 1];    // the last reference token is never fed
        System.arraycopy(prompt, 0, ids, 0, prompt.length);
        System.arraycopy(reference, 0, ids, prompt.length, reference.length - 1);
        int vocab = model.config().vocabSize();
        float[] logits;
        try (NDManager scope = model.manager().newSubManager()) {
            NDArray all = model.forwardTokens(scope.create(ids, new Shape(1, ids.length)), null);   // (1, T, V)
            logits = all.get("0, " + (prompt.length - 1) + ":, :").toFloatArray();                   // (steps, V)
        }
        double smallest = Double.POSITIVE_INFINITY;
        for (int step = 0; step < reference.length; step++) {
            int offset = step * vocab, top = 0;
            for (int v = 1; v < vocab; v++) if (logits[offset + v] > logits[offset + top]) top = v;
            double second = Double.NEGATIVE_INFINITY;
            for (int v = 0; v < vocab; v++) if (v != top) second = Math.max(second, logits[offset + v]);
            int expected = (int) reference[step];
            double gap = logits[offset + top] - logits[offset + expected];
            assertTrue(gap <= tieMargin, what + ": step " + step + ": the reference token " + expected + " trails our top token "
                    + top + " by " + gap + " > " + tieMargin);
            double margin = logits[offset + top] - second;
            smallest = Math.min(smallest, margin);
            if (top != expected || margin <= tieMargin) {
                System.out.printf("%s: near-tie at greedy step %d (top-2 margin %.3g <= %.3g)%n", what, step, margin, tieMargin);
                return step;
            }
        }
        System.out.printf("%s: no near-tie in %d greedy steps (smallest top-2 margin %.3g, tie margin %.3g)%n", what,
                reference.length, smallest, tieMargin);
        return reference.length;
    }
}
