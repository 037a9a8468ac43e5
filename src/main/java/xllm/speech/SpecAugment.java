package xllm.speech;

import java.util.Random;

/**
 * SpecAugment (Park et al., Interspeech 2019; the CIF ASR model's augmentation, paper A.3 [39]) without time warping:
 * {@code frequencyMasks} bands of up to {@code maxFrequencyWidth} mel bins and {@code timeMasks} spans of up to
 * {@code min(maxTimeWidth, maxTimeRatio · frames)} frames are set to 0. It runs on the CPU side, on CMVN-normalised
 * frames (so 0 is the global mean), during {@code prepare} of training batches only. A seed gives the same masks.
 *
 * @param frequencyMasks    F: number of frequency masks
 * @param maxFrequencyWidth f: a frequency mask covers 0..f bins (uniform)
 * @param timeMasks         T: number of time masks
 * @param maxTimeWidth      t: a time mask covers 0..min(t, p·frames) frames (uniform)
 * @param maxTimeRatio      p: upper bound of a time mask as a fraction of the utterance
 */
public record SpecAugment(int frequencyMasks, int maxFrequencyWidth, int timeMasks, int maxTimeWidth,
                          double maxTimeRatio) {

    /** No masking. */
    public static final SpecAugment NONE = new SpecAugment(0, 0, 0, 0, 0);

    /**
     * What convert-asr uses: two frequency masks of ≤ 15 of the 80 bins and two time masks of ≤ 40 frames and ≤ 10% of
     * the utterance (ESPnet's conformer recipes use 2 × 30 bins / 2 × 40 frames on long LibriSpeech utterances; the
     * synthetic utterances here are 1–4 s, so the frequency bands are halved and the time masks capped by p).
     */
    public static final SpecAugment DEFAULT = new SpecAugment(2, 15, 2, 40, 0.1);

    public SpecAugment {
        if (frequencyMasks < 0 || maxFrequencyWidth < 0 || timeMasks < 0 || maxTimeWidth < 0
                || !(maxTimeRatio >= 0 && maxTimeRatio <= 1)) {
            throw new IllegalArgumentException("SpecAugment: counts and widths must be >= 0 and the time ratio in [0, 1], got "
                    + this);
        }
    }

    /** A masked copy of {@code frames} (frames, bins); the input is not changed. */
    public float[][] apply(float[][] frames, long seed) {
        Random random = new Random(seed);
        int length = frames.length;
        float[][] out = new float[length][];
        for (int t = 0; t < length; t++) out[t] = frames[t].clone();
        if (length == 0) return out;
        int bins = frames[0].length;
        for (int m = 0; m < frequencyMasks; m++) {
            int width = random.nextInt(Math.min(maxFrequencyWidth, bins) + 1);
            int start = random.nextInt(bins - width + 1);
            for (float[] frame : out) java.util.Arrays.fill(frame, start, start + width, 0f);
        }
        int timeLimit = (int) Math.min(maxTimeWidth, Math.floor(maxTimeRatio * length));
        for (int m = 0; m < timeMasks; m++) {
            int width = random.nextInt(timeLimit + 1);
            int start = random.nextInt(length - width + 1);
            for (int t = start; t < start + width; t++) java.util.Arrays.fill(out[t], 0f);
        }
        return out;
    }
}
