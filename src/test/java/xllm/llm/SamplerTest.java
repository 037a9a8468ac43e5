package xllm.llm;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.*;

/** Sampling processors: greedy, repetition penalty, top-k, top-p, seeded determinism and empirical frequencies. */
class SamplerTest {

    static final float[] LOGITS = {2.0f, 1.0f, 0.5f, -1.0f, 3.0f};

    @Test
    void temperatureZeroIsArgmax() {
        assertEquals(4, new Sampler(Sampler.Options.greedy()).next(LOGITS, new long[0], 0));
    }

    @Test
    void repetitionPenaltyDividesPositiveAndMultipliesNegativeScores() {
        // token 4 (3.0) penalised by 2 → 1.5 < token 0 (2.0)
        Sampler sampler = new Sampler(new Sampler.Options(0f, 0, 1f, 2f, 0));
        assertEquals(0, sampler.next(LOGITS, new long[] {4}, 1));
        // penalty 4 on tokens 0 and 4 (repeated ids count once): 3.0 → 0.75, 2.0 → 0.5, so token 1 (1.0) wins
        assertEquals(1, new Sampler(new Sampler.Options(0f, 0, 1f, 4f, 0)).next(LOGITS, new long[] {4, 0, 4}, 3));
        // a negative score is multiplied: -1 → -2 falls below -1.5
        assertEquals(1, sampler.next(new float[] {-1f, -1.5f}, new long[] {0}, 1));
    }

    @Test
    void topKOneAndTinyTopPAreGreedy() {
        for (long seed = 0; seed < 20; seed++) {
            assertEquals(4, new Sampler(new Sampler.Options(1f, 1, 1f, 1f, seed)).next(LOGITS, new long[0], 0));
            assertEquals(4, new Sampler(new Sampler.Options(1f, 0, 0.01f, 1f, seed)).next(LOGITS, new long[0], 0));
        }
    }

    @Test
    void samplingFollowsSoftmaxAndIsSeeded() {
        Sampler a = new Sampler(new Sampler.Options(1f, 0, 1f, 1f, 42));
        Sampler b = new Sampler(new Sampler.Options(1f, 0, 1f, 1f, 42));
        int[] counts = new int[LOGITS.length];
        int draws = 40000;
        for (int i = 0; i < draws; i++) {
            int x = a.next(LOGITS, new long[0], 0);
            assertEquals(x, b.next(LOGITS, new long[0], 0), "same seed, same sequence");
            counts[x]++;
        }
        double total = 0;
        for (float l : LOGITS) total += Math.exp(l);
        for (int i = 0; i < LOGITS.length; i++) {
            double p = Math.exp(LOGITS[i]) / total;
            double standardError = Math.sqrt(p * (1 - p) / draws);
            assertEquals(p, counts[i] / (double) draws, 5 * standardError, "token " + i);
        }
    }

    @Test
    void topPKeepsTheSmallestNucleus() {
        // probabilities ≈ [0.23, 0.08, 0.05, 0.01, 0.63]; top-p 0.8 keeps tokens 4 and 0 only
        Sampler sampler = new Sampler(new Sampler.Options(1f, 0, 0.8f, 1f, 9));
        for (int i = 0; i < 2000; i++) {
            int x = sampler.next(LOGITS, new long[0], 0);
            assertTrue(x == 4 || x == 0, "drew " + x);
        }
    }

    @Test
    void invalidOptionsAreRejected() {
        assertThrows(IllegalArgumentException.class, () -> new Sampler.Options(-1f, 0, 1f, 1f, 0));
        assertThrows(IllegalArgumentException.class, () -> new Sampler.Options(1f, 0, 0f, 1f, 0));
        assertThrows(IllegalArgumentException.class, () -> new Sampler.Options(1f, -2, 1f, 1f, 0));
    }

    @Test
    void nonFiniteAndOutOfRangeOptionsNameTheOptionAndTheRange() {
        assertEquals("temperature must be a finite number >= 0, got NaN",
                assertThrows(IllegalArgumentException.class, () -> new Sampler.Options(Float.NaN, 0, 1f, 1f, 0)).getMessage());
        assertEquals("temperature must be a finite number >= 0, got Infinity", assertThrows(IllegalArgumentException.class,
                () -> new Sampler.Options(Float.POSITIVE_INFINITY, 0, 1f, 1f, 0)).getMessage());
        assertEquals("top-p must be in (0, 1], got NaN",
                assertThrows(IllegalArgumentException.class, () -> new Sampler.Options(1f, 0, Float.NaN, 1f, 0)).getMessage());
        assertEquals("top-p must be in (0, 1], got 1.5",
                assertThrows(IllegalArgumentException.class, () -> new Sampler.Options(1f, 0, 1.5f, 1f, 0)).getMessage());
        assertEquals("top-k must be >= 0 (0 = off), got -1",
                assertThrows(IllegalArgumentException.class, () -> new Sampler.Options(1f, -1, 1f, 1f, 0)).getMessage());
        for (float penalty : new float[] {0f, -1f, Float.NaN, Float.POSITIVE_INFINITY}) {
            assertEquals("repetition-penalty must be a finite number > 0, got " + penalty, assertThrows(
                    IllegalArgumentException.class, () -> new Sampler.Options(1f, 0, 1f, penalty, 0)).getMessage());
        }
    }
}
