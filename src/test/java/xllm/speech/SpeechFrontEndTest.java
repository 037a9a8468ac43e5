package xllm.speech;

import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** CMVN statistics, SpecAugment masks and the character vocabulary. */
class SpeechFrontEndTest {

    @Test
    void cmvnNormalisesToZeroMeanUnitVarianceAndRoundTripsThroughJson() {
        float[][] a = {{1, 10}, {3, 10}}, b = {{5, 10}};
        Cmvn cmvn = Cmvn.compute(List.of(a, b));
        assertArrayEquals(new float[] {3, 10}, cmvn.mean());
        assertEquals(Math.sqrt(8.0 / 3), cmvn.std()[0], 1e-6);
        assertEquals(Cmvn.MIN_STD, cmvn.std()[1], 1e-12, "a constant dimension gets the floor, not 0");
        float[][] normalised = cmvn.apply(a);
        assertEquals(-2 / Math.sqrt(8.0 / 3), normalised[0][0], 1e-6);
        Cmvn back = Cmvn.fromJson(cmvn.toJson(), "test");
        assertArrayEquals(cmvn.mean(), back.mean());
        assertArrayEquals(cmvn.std(), back.std());
        assertThrows(IllegalArgumentException.class, () -> cmvn.apply(new float[][] {{1, 2, 3}}));
    }

    @Test
    void specAugmentMasksWithinItsBoundsAndRepeatsPerSeed() {
        float[][] frames = new float[200][80];
        for (float[] f : frames) java.util.Arrays.fill(f, 1f);
        SpecAugment augment = new SpecAugment(2, 15, 2, 40, 0.1);
        for (long seed = 0; seed < 50; seed++) {
            float[][] masked = augment.apply(frames, seed);
            assertArrayEquals(masked, augment.apply(frames, seed));
            int zeroBins = 0, zeroFrames = 0;
            for (int d = 0; d < 80; d++) {
                boolean all = true;
                for (float[] f : masked) all &= f[d] == 0f;
                if (all) zeroBins++;
            }
            for (float[] f : masked) {
                boolean all = true;
                for (float v : f) all &= v == 0f;
                if (all) zeroFrames++;
            }
            assertTrue(zeroBins <= 30, "≤ 2 × 15 bins, got " + zeroBins);
            assertTrue(zeroFrames <= 40, "≤ 2 × min(40, 0.1 × 200) frames, got " + zeroFrames);
        }
        assertEquals(1f, frames[0][0], "the input is not changed");
        assertArrayEquals(frames, SpecAugment.NONE.apply(frames, 3));
    }

    @Test
    void vocabularyNormalisesEncodesAndDecodes() {
        assertEquals("it's a red circle", CharVocabulary.normalise("  It’s a  RED circle!\n"));
        CharVocabulary vocabulary = CharVocabulary.build(List.of("Red circle.", "蓝色 square 2"));
        assertEquals(List.of("<unk>", " ", "2", "a", "c", "d", "e", "i", "l", "q", "r", "s", "u", "色", "蓝"),
                vocabulary.tokens());
        long[] ids = vocabulary.encode("red zebra");
        assertEquals("red \u2047e\u2047ra", vocabulary.decode(ids), "z and b are not in the vocabulary");
        assertEquals(vocabulary.tokens(), CharVocabulary.fromJson(vocabulary.toJson(), "test").tokens());
    }
}
