package xllm.speech;

import org.junit.jupiter.api.Test;
import xllm.tensor.Safetensors;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Parity with torchaudio.compliance.kaldi.fbank on the fixtures of tools/reference/make_fbank_fixtures.py
 * (torch 2.11, torchaudio 2.11): at most 1e-3 absolute on every log-mel value against torchaudio run in
 * float64, and within torchaudio's own float32 rounding of its float32 output (see assertParity). The 44.1 kHz
 * stereo file goes through WavReader, Resampler and Fbank; its reference ran torchaudio.functional.resample
 * with Resampler's filter parameters, so the resampled samples are compared too.
 */
class FbankTest {

    static final Path FIXTURES = Path.of("src/test/resources/fixtures/fbank");

    static float[][] reference(String stem) throws IOException {
        try (Safetensors file = Safetensors.open(FIXTURES.resolve("fbank.safetensors"))) {
            long[] shape = file.shape(stem);
            float[] flat = file.get(stem).toFloats();
            float[][] rows = new float[(int) shape[0]][(int) shape[1]];
            for (int f = 0; f < rows.length; f++) System.arraycopy(flat, f * rows[f].length, rows[f], 0, rows[f].length);
            return rows;
        }
    }

    static float maxAbsDifference(float[][] a, float[][] b, int fromBin, int toBin) {
        assertEquals(a.length, b.length, "frames");
        float max = 0;
        for (int f = 0; f < a.length; f++) {
            for (int m = fromBin; m < toBin; m++) max = Math.max(max, Math.abs(a[f][m] - b[f][m]));
        }
        return max;
    }

    static float[][] fbankOfFile(String stem) throws IOException {
        WavReader.Audio audio = WavReader.read(FIXTURES.resolve(stem + ".wav"));
        float[] samples = Resampler.resample(audio.samples(), audio.sampleRate(), Fbank.SAMPLE_RATE);
        return Fbank.compute(samples);
    }

    /**
     * Checks {@code stem} against both references. torchaudio computes in the waveform's dtype; in float32 its
     * result drifts from its own float64 result (up to 1.7e-3 on the 16 kHz files, in low-energy mel bins of
     * loud frames: energy ~10 beside a frame power ~1e9). Java computes in double and matches the float64
     * reference within 1e-3 (in practice ~1e-6); against the float32 output the bound is torchaudio's own drift
     * plus 1e-4.
     */
    static void assertParity(String stem) throws IOException {
        float[][] ours = fbankOfFile(stem);
        float[][] exact = reference(stem + ".float64"), float32 = reference(stem);
        float errorExact = maxAbsDifference(ours, exact, 0, Fbank.MEL_BINS);
        float errorFloat32 = maxAbsDifference(ours, float32, 0, Fbank.MEL_BINS);
        float drift = maxAbsDifference(float32, exact, 0, Fbank.MEL_BINS);
        System.out.printf("fbank parity %s: max abs error %.2e vs torchaudio float64, %.2e vs torchaudio float32"
                + " (whose own float32-vs-float64 drift is %.2e)%n", stem, errorExact, errorFloat32, drift);
        assertTrue(errorExact <= 1e-3f, "vs float64 reference: " + errorExact);
        assertTrue(errorFloat32 <= drift + 1e-4f, "vs float32 reference: " + errorFloat32 + ", drift " + drift);
    }

    @Test
    void matchesTorchaudioOnSixteenKilohertzSpeech() throws IOException {
        assertParity("speech_16k");
    }

    @Test
    void matchesTorchaudioOnSixteenKilohertzChirpAndNoise() throws IOException {
        assertParity("chirp_noise_16k");
    }

    @Test
    void resampledFileMatchesTorchaudioResampleWithTheSameFilter() throws IOException {
        // 44.1 kHz stereo → mono → Resampler → fbank; the reference ran torchaudio.functional.resample with
        // Resampler's parameters (32 zero crossings, rolloff 0.95, Kaiser beta 8.6) in float64
        WavReader.Audio audio = WavReader.read(FIXTURES.resolve("chirp_44k_stereo.wav"));
        float[] ours = Resampler.resample(audio.samples(), audio.sampleRate(), Fbank.SAMPLE_RATE);
        float[] theirs;
        try (Safetensors file = Safetensors.open(FIXTURES.resolve("fbank.safetensors"))) {
            theirs = file.get("chirp_44k_stereo.resampled").toFloats();
        }
        assertEquals(theirs.length, ours.length);
        float sampleError = 0;
        for (int i = 0; i < ours.length; i++) sampleError = Math.max(sampleError, Math.abs(ours[i] - theirs[i]));
        System.out.printf("resampled 44.1k stereo: max abs sample error %.2e%n", sampleError);
        assertTrue(sampleError <= 1e-6f, "resampled samples: " + sampleError);
        assertParity("chirp_44k_stereo");
    }

    @Test
    void frameCountSnipsEdges() {
        assertEquals(0, Fbank.frameCount(399));
        assertEquals(1, Fbank.frameCount(400));
        assertEquals(1, Fbank.frameCount(559));
        assertEquals(2, Fbank.frameCount(560));
        assertEquals(98, Fbank.compute(new float[16000]).length);
        assertEquals(0, Fbank.compute(new float[100]).length);
    }

    @Test
    void silenceIsTheLogFloor() {
        float[][] features = Fbank.compute(new float[1000]);
        for (float[] frame : features) for (float v : frame) assertEquals((float) Math.log(Math.ulp(1.0f)), v, 1e-6f);
    }

    @Test
    void realFftMatchesNaiveDft() {
        Random random = new Random(7);
        double[] frame = new double[512];
        for (int i = 0; i < 512; i++) frame[i] = random.nextGaussian();
        double[] power = new double[257];
        Fbank.powerSpectrum(frame, new double[256], new double[256], power);
        for (int k = 0; k <= 256; k++) {
            double re = 0, im = 0;
            for (int n = 0; n < 512; n++) {
                re += frame[n] * Math.cos(2 * Math.PI * k * n / 512);
                im -= frame[n] * Math.sin(2 * Math.PI * k * n / 512);
            }
            double expected = re * re + im * im;
            assertEquals(expected, power[k], 1e-9 * Math.max(1, expected), "bin " + k);
        }
    }

    @Test
    void runsFasterThanFiveHundredTimesRealTime() {
        float[] tenSeconds = new float[160_000];
        Random random = new Random(3);
        for (int i = 0; i < tenSeconds.length; i++) tenSeconds[i] = (float) (0.1 * random.nextGaussian());
        for (int i = 0; i < 20; i++) Fbank.compute(tenSeconds); // JIT warm-up
        long best = Long.MAX_VALUE;
        for (int i = 0; i < 10; i++) {
            long start = System.nanoTime();
            Fbank.compute(tenSeconds);
            best = Math.min(best, System.nanoTime() - start);
        }
        double realTimeFactor = 10.0 / (best / 1e9);
        System.out.printf("fbank of 10 s: %.2f ms, %.0fx real time (one thread)%n", best / 1e6, realTimeFactor);
        assertTrue(realTimeFactor >= 500, "only " + realTimeFactor + "x real time");
    }
}
