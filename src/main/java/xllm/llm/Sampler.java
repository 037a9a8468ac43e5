package xllm.llm;

import java.util.Arrays;
import java.util.SplittableRandom;

/**
 * Picks the next token from one row of logits, with the processors of transformers' {@code generate} in its order:
 * repetition penalty, temperature, top-k, top-p, then argmax (temperature 0) or a seeded categorical draw.
 * Tested in {@code SamplerTest}.
 */
public final class Sampler {

    public record Options(float temperature, int topK, float topP, float repetitionPenalty, long seed) {
        public static Options greedy() {
            return new Options(0f, 0, 1f, 1f, 0L);
        }

        /** Each message starts with the option's name as the CLI spells it (without "--"), so the CLI can prefix it. */
        public Options {
            // written so that NaN fails every check: a NaN or infinite score would make every token equally (un)likely
            if (!(temperature >= 0 && temperature < Float.POSITIVE_INFINITY)) {
                throw new IllegalArgumentException("temperature must be a finite number >= 0, got " + temperature);
            }
            if (!(topP > 0 && topP <= 1)) throw new IllegalArgumentException("top-p must be in (0, 1], got " + topP);
            if (topK < 0) throw new IllegalArgumentException("top-k must be >= 0 (0 = off), got " + topK);
            if (!(repetitionPenalty > 0 && repetitionPenalty < Float.POSITIVE_INFINITY)) {
                throw new IllegalArgumentException("repetition-penalty must be a finite number > 0, got " + repetitionPenalty);
            }
        }
    }

    private final Options options;
    private final SplittableRandom random;

    public Sampler(Options options) {
        this.options = options;
        this.random = new SplittableRandom(options.seed());
    }

    /** @param seen token ids already in the sequence (prompt and generated), for the repetition penalty */
    public int next(float[] logits, long[] seen, int seenCount) {
        float[] scores = logits.clone();
        if (options.repetitionPenalty() != 1f) {
            boolean[] done = new boolean[scores.length];
            for (int i = 0; i < seenCount; i++) {
                int id = (int) seen[i];
                if (id < 0 || id >= scores.length || done[id]) continue;
                done[id] = true;
                scores[id] = scores[id] < 0 ? scores[id] * options.repetitionPenalty() : scores[id] / options.repetitionPenalty();
            }
        }
        if (options.temperature() == 0f) return argmax(scores);
        for (int i = 0; i < scores.length; i++) scores[i] /= options.temperature();
        Integer[] order = null;
        if (options.topK() > 0 && options.topK() < scores.length) {
            float kth = kthLargest(scores, options.topK());
            for (int i = 0; i < scores.length; i++) if (scores[i] < kth) scores[i] = Float.NEGATIVE_INFINITY;
        }
        double max = Double.NEGATIVE_INFINITY;
        for (float s : scores) max = Math.max(max, s);
        double[] probabilities = new double[scores.length];
        double total = 0;
        for (int i = 0; i < scores.length; i++) {
            probabilities[i] = Math.exp(scores[i] - max);
            total += probabilities[i];
        }
        for (int i = 0; i < scores.length; i++) probabilities[i] /= total;
        if (options.topP() < 1f) {
            // Keep the smallest set of most likely tokens whose mass reaches top-p (always at least one).
            order = new Integer[scores.length];
            for (int i = 0; i < order.length; i++) order[i] = i;
            final double[] p = probabilities;
            Arrays.sort(order, (a, b) -> Double.compare(p[b], p[a]));
            double cumulative = 0;
            int keep = 0;
            while (keep < order.length && (keep == 0 || cumulative < options.topP())) {
                cumulative += probabilities[order[keep]];
                keep++;
            }
            double kept = 0;
            for (int r = keep; r < order.length; r++) probabilities[order[r]] = 0;
            for (double v : probabilities) kept += v;
            for (int i = 0; i < probabilities.length; i++) probabilities[i] /= kept;
        }
        double u = random.nextDouble();
        double cumulative = 0;
        int last = 0;
        for (int i = 0; i < probabilities.length; i++) {
            if (probabilities[i] == 0) continue;
            last = i;
            cumulative += probabilities[i];
            if (u < cumulative) return i;
        }
        return last;
    }

    static int argmax(float[] scores) {
        int best = 0;
        for (int i = 1; i < scores.length; i++) if (scores[i] > scores[best]) best = i;
        return best;
    }

    private static float kthLargest(float[] scores, int k) {
        float[] copy = scores.clone();
        Arrays.sort(copy);
        return copy[copy.length - k];
    }
}
