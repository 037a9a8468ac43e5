package xllm.speech;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.*;

class ResamplerTest {

    static float[] tone(double frequency, double amplitude, int rate, int n) {
        float[] x = new float[n];
        for (int i = 0; i < n; i++) x[i] = (float) (amplitude * Math.sin(2 * Math.PI * frequency * i / rate));
        return x;
    }

    /** Amplitude of the component at {@code frequency} by correlation over the interior (skipping edges). */
    static double amplitudeAt(float[] x, double frequency, int rate) {
        int from = x.length / 8, to = x.length - x.length / 8;
        // whole number of periods keeps the estimate unbiased
        int periods = (int) Math.floor((to - from) * frequency / rate);
        if (periods > 0) to = from + (int) Math.round(periods * rate / frequency);
        double s = 0, c = 0;
        for (int i = from; i < to; i++) {
            double phase = 2 * Math.PI * frequency * i / rate;
            s += x[i] * Math.sin(phase);
            c += x[i] * Math.cos(phase);
        }
        return 2 * Math.hypot(s, c) / (to - from);
    }

    static double rms(float[] x) {
        int from = x.length / 8, to = x.length - x.length / 8;
        double sum = 0;
        for (int i = from; i < to; i++) sum += x[i] * (double) x[i];
        return Math.sqrt(sum / (to - from));
    }

    @Test
    void lengthIsCeilOfScaledLength() {
        int[][] cases = {{44100, 16000}, {8000, 16000}, {48000, 16000}, {22050, 16000}, {16000, 44100}};
        for (int[] rates : cases) {
            for (int n : new int[] {0, 1, 2, 441, 1000, 44101}) {
                long expected = (long) Math.ceil((double) n * rates[1] / rates[0]);
                assertEquals(expected, Resampler.resample(new float[n], rates[0], rates[1]).length,
                        n + " samples " + rates[0] + "→" + rates[1]);
            }
        }
    }

    @Test
    void oneKilohertzKeepsFrequencyAndAmplitude() {
        int[] fromRates = {44100, 48000, 8000, 22050};
        for (int from : fromRates) {
            float[] y = Resampler.resample(tone(1000, 0.5, from, from), from, 16000); // 1 s
            double amplitude = amplitudeAt(y, 1000, 16000);
            assertEquals(0.5, amplitude, 0.005, from + "→16000 amplitude");
            // frequency: the energy is at 1 kHz, not 1% off
            assertTrue(amplitudeAt(y, 1010, 16000) < 0.05, "energy at 1010 Hz");
            assertEquals(0.5 / Math.sqrt(2), rms(y), 0.005 * 0.5, "all energy sits in the 1 kHz tone");
        }
    }

    @Test
    void samplesMatchTheContinuousSine() {
        float[] y = Resampler.resample(tone(1000, 0.5, 44100, 44100), 44100, 16000);
        float[] expected = tone(1000, 0.5, 16000, y.length);
        double max = 0;
        for (int i = 1000; i < y.length - 1000; i++) max = Math.max(max, Math.abs(y[i] - expected[i]));
        assertTrue(max < 0.005, "max deviation " + max);
    }

    @Test
    void toneAboveNewNyquistIsRemoved() {
        // 8.5 kHz at 44.1 kHz would alias to 7.5 kHz at 16 kHz; 9 kHz to 7 kHz; 12 kHz to 4 kHz.
        // (A 7.5 kHz tone itself is below the new 8 kHz Nyquist frequency: it does not alias and is kept.)
        for (double frequency : new double[] {8500, 9000, 12000}) {
            float[] y = Resampler.resample(tone(frequency, 1.0, 44100, 44100), 44100, 16000);
            double attenuationDb = -20 * Math.log10(rms(y) / Math.sqrt(0.5));
            assertTrue(attenuationDb > 40, frequency + " Hz attenuated only " + attenuationDb + " dB");
        }
    }

    @Test
    void inBandToneNearTheCutoffPasses() {
        // 7 kHz is under the 0.95 · 8 kHz = 7.6 kHz cutoff
        float[] y = Resampler.resample(tone(7000, 1.0, 44100, 44100), 44100, 16000);
        assertEquals(1.0, amplitudeAt(y, 7000, 16000), 0.01);
    }

    @Test
    void upsamplingLeavesNoImages() {
        // 3 kHz at 8 kHz upsampled to 16 kHz: the image at 5 kHz must be gone
        float[] y = Resampler.resample(tone(3000, 1.0, 8000, 8000), 8000, 16000);
        assertEquals(1.0, amplitudeAt(y, 3000, 16000), 0.01);
        assertTrue(amplitudeAt(y, 5000, 16000) < 0.01);
    }

    @Test
    void constantStaysConstantAndSameRateIsACopy() {
        float[] ones = new float[4410];
        java.util.Arrays.fill(ones, 0.25f);
        float[] y = Resampler.resample(ones, 44100, 16000);
        for (int i = 200; i < y.length - 200; i++) assertEquals(0.25f, y[i], 1e-5f);
        float[] x = tone(440, 0.3, 16000, 100);
        float[] same = Resampler.resample(x, 16000, 16000);
        assertArrayEquals(x, same);
        assertNotSame(x, same);
    }

    @Test
    void ratesOutsideTheSupportedRangeAreRefusedBeforeTheFilterTable() {
        // 2^31-1 Hz → 16 kHz once asked for a 16000 × 9-million-tap table (out of memory)
        IllegalArgumentException huge = assertThrows(IllegalArgumentException.class,
                () -> Resampler.resample(new float[10], Integer.MAX_VALUE, 16000));
        assertEquals("sample rate 2147483647 Hz is outside 1..384000 Hz", huge.getMessage());
        IllegalArgumentException zero = assertThrows(IllegalArgumentException.class,
                () -> Resampler.resample(new float[10], 16000, 0));
        assertEquals("sample rate 0 Hz is outside 1..384000 Hz", zero.getMessage());
    }
}
