package xllm.speech;

/**
 * Kaldi log-mel filterbank features, 80 bins, 25 ms frames every 10 ms, at 16 kHz.
 *
 * <p>Matches {@code torchaudio.compliance.kaldi.fbank(waveform * 32768, num_mel_bins=80, frame_length=25,
 * frame_shift=10, dither=0.0, energy_floor=0.0, sample_frequency=16000)} with its other defaults:
 * snip_edges (frames = 1 + (n - 400) / 160, none when n &lt; 400), DC offset removed per frame, pre-emphasis 0.97
 * (the first sample uses itself as predecessor), povey window (Hann, non-periodic, to the power 0.85), zero
 * padding to a 512-point FFT, power spectrum, triangular mel filters on the Kaldi mel scale
 * 1127·ln(1 + f/700) between 20 Hz and the Nyquist frequency (the Nyquist bin itself gets weight 0, as in
 * torchaudio), and log(max(energy, float32 epsilon)).
 *
 * <p>The ×32768 scaling: Kaldi works on 16-bit integer sample values, while {@link WavReader} (like
 * torchaudio.load) gives samples in [-1, 1]. Speech models trained on Kaldi fbank (Whisper-style encoders
 * aside) feed it {@code waveform * 32768}, so {@link #compute} multiplies by 32768 before anything else. The
 * scale only adds log(32768²) ≈ 20.79 to every (non-floored) log energy, but the floor makes it matter.
 *
 * <p>Parity (FbankTest, fixtures of tools/reference/make_fbank_fixtures.py, torchaudio 2.11): identical to
 * torchaudio run on a float64 waveform (max abs error 0 on the 16 kHz files, whose log energies are rounded to
 * float32 either way); torchaudio's usual float32 run itself drifts from that by up to 1.7e-3. Computation is
 * in double except the mel weights, built in float32 as torchaudio builds them. Window, twiddles and mel
 * weights are computed once; the FFT is a 256-point complex radix-2 FFT of the packed real frame plus a split
 * step. 10 s of audio takes 6-10 ms on one core (1000-1700× real time).
 */
public final class Fbank {

    public static final int SAMPLE_RATE = 16_000;
    public static final int MEL_BINS = 80;
    public static final int FRAME_LENGTH = 400; // 25 ms
    public static final int FRAME_SHIFT = 160;  // 10 ms
    public static final float WAVEFORM_SCALE = 32768f;

    private static final int FFT_SIZE = 512;
    private static final int HALF = FFT_SIZE / 2;        // complex FFT length of the packed real frame
    private static final int SPECTRUM_BINS = HALF + 1;   // 257 power-spectrum bins
    private static final double PREEMPHASIS = 0.97;
    private static final double LOW_FREQUENCY = 20.0;
    private static final double LOG_FLOOR = Math.ulp(1.0f); // torch.finfo(torch.float32).eps

    private static final double[] WINDOW = poveyWindow();
    private static final double[] COS = new double[HALF / 2], SIN = new double[HALF / 2]; // 256-point twiddles
    private static final double[] SPLIT_COS = new double[HALF], SPLIT_SIN = new double[HALF]; // 512-point
    private static final int[] BIT_REVERSE = new int[HALF];
    // mel filters stored sparsely: filter m covers spectrum bins [MEL_FIRST[m], MEL_FIRST[m] + MEL_WEIGHTS[m].length)
    private static final int[] MEL_FIRST = new int[MEL_BINS];
    private static final double[][] MEL_WEIGHTS = new double[MEL_BINS][];

    static {
        for (int k = 0; k < HALF / 2; k++) {
            COS[k] = Math.cos(2 * Math.PI * k / HALF);
            SIN[k] = -Math.sin(2 * Math.PI * k / HALF);
        }
        for (int k = 0; k < HALF; k++) {
            SPLIT_COS[k] = Math.cos(2 * Math.PI * k / FFT_SIZE);
            SPLIT_SIN[k] = -Math.sin(2 * Math.PI * k / FFT_SIZE);
        }
        int bits = Integer.numberOfTrailingZeros(HALF);
        for (int i = 0; i < HALF; i++) BIT_REVERSE[i] = Integer.reverse(i) >>> (32 - bits);
        melBanks();
    }

    private Fbank() {}

    /** Number of frames for {@code sampleCount} samples (snip_edges). */
    public static int frameCount(int sampleCount) {
        return sampleCount < FRAME_LENGTH ? 0 : 1 + (sampleCount - FRAME_LENGTH) / FRAME_SHIFT;
    }

    /** Log-mel features of 16 kHz samples in [-1, 1]; shape (frames, 80). */
    public static float[][] compute(float[] samples16k) {
        int frames = frameCount(samples16k.length);
        float[][] features = new float[frames][MEL_BINS];
        double[] frame = new double[FFT_SIZE];
        double[] real = new double[HALF], imaginary = new double[HALF];
        double[] power = new double[SPECTRUM_BINS];
        for (int f = 0; f < frames; f++) {
            int start = f * FRAME_SHIFT;
            // step 1: scale to 16-bit integer range and remove the frame's DC offset
            double mean = 0;
            for (int i = 0; i < FRAME_LENGTH; i++) {
                frame[i] = samples16k[start + i] * (double) WAVEFORM_SCALE;
                mean += frame[i];
            }
            mean /= FRAME_LENGTH;
            for (int i = 0; i < FRAME_LENGTH; i++) frame[i] -= mean;
            // step 2: pre-emphasis, backwards so each sample still sees its original predecessor
            for (int i = FRAME_LENGTH - 1; i > 0; i--) frame[i] -= PREEMPHASIS * frame[i - 1];
            frame[0] -= PREEMPHASIS * frame[0];
            // step 3: povey window; samples 400..511 stay zero (padding)
            for (int i = 0; i < FRAME_LENGTH; i++) frame[i] *= WINDOW[i];
            // step 4: power spectrum of the 512-point real frame
            powerSpectrum(frame, real, imaginary, power);
            // step 5: mel filters and log
            float[] out = features[f];
            for (int m = 0; m < MEL_BINS; m++) {
                double[] weights = MEL_WEIGHTS[m];
                int first = MEL_FIRST[m];
                double energy = 0;
                for (int j = 0; j < weights.length; j++) energy += weights[j] * power[first + j];
                out[m] = (float) Math.log(Math.max(energy, LOG_FLOOR));
            }
        }
        return features;
    }

    /**
     * |FFT(frame)|² for bins 0..256. The real frame x is packed as z[n] = x[2n] + i·x[2n+1]; with Z = FFT_256(z),
     * X[k] = (Z[k] + conj Z[256-k]) / 2 + e^{-2πik/512} (Z[k] - conj Z[256-k]) / 2i.
     */
    static void powerSpectrum(double[] frame, double[] real, double[] imaginary, double[] power) {
        for (int n = 0; n < HALF; n++) {
            int r = BIT_REVERSE[n];
            real[r] = frame[2 * n];
            imaginary[r] = frame[2 * n + 1];
        }
        for (int size = 2; size <= HALF; size <<= 1) {
            int halfSize = size >> 1, stride = HALF / size;
            for (int block = 0; block < HALF; block += size) {
                for (int j = 0; j < halfSize; j++) {
                    double wr = COS[j * stride], wi = SIN[j * stride];
                    int a = block + j, b = a + halfSize;
                    double tr = real[b] * wr - imaginary[b] * wi;
                    double ti = real[b] * wi + imaginary[b] * wr;
                    real[b] = real[a] - tr;
                    imaginary[b] = imaginary[a] - ti;
                    real[a] += tr;
                    imaginary[a] += ti;
                }
            }
        }
        for (int k = 0; k <= HALF; k++) {
            int k1 = k % HALF, k2 = (HALF - k) % HALF;
            double zr = real[k1], zi = imaginary[k1], cr = real[k2], ci = -imaginary[k2]; // Z[k], conj Z[256-k]
            double evenR = 0.5 * (zr + cr), evenI = 0.5 * (zi + ci);
            // (Z[k] - conj Z[256-k]) / 2i = (d_i - i·d_r) / 2
            double oddR = 0.5 * (zi - ci), oddI = -0.5 * (zr - cr);
            double wr = k == HALF ? -1 : SPLIT_COS[k], wi = k == HALF ? 0 : SPLIT_SIN[k];
            double xr = evenR + wr * oddR - wi * oddI;
            double xi = evenI + wr * oddI + wi * oddR;
            power[k] = xr * xr + xi * xi;
        }
    }

    private static double[] poveyWindow() {
        double[] window = new double[FRAME_LENGTH];
        for (int i = 0; i < FRAME_LENGTH; i++) {
            window[i] = Math.pow(0.5 - 0.5 * Math.cos(2 * Math.PI * i / (FRAME_LENGTH - 1)), 0.85);
        }
        return window;
    }

    private static double mel(double frequency) {
        return 1127.0 * Math.log(1.0 + frequency / 700.0);
    }

    /**
     * Triangles as torchaudio's get_mel_banks: equal widths on the mel scale, evaluated at bins 0..255. The
     * weights are computed in float32 step by step as torchaudio does (it builds them with float32 tensors
     * whatever the waveform's dtype); in double they would differ by up to 2.6e-4 in the log energies.
     */
    private static void melBanks() {
        float binWidth = (float) SAMPLE_RATE / FFT_SIZE;
        float melLow = (float) mel(LOW_FREQUENCY);
        float melDelta = (float) ((mel(SAMPLE_RATE / 2.0) - mel(LOW_FREQUENCY)) / (MEL_BINS + 1));
        float[] binMel = new float[HALF]; // bin 256 (Nyquist) is never weighted
        for (int k = 0; k < HALF; k++) {
            float frequency = k * binWidth;
            binMel[k] = 1127.0f * (float) Math.log(1.0f + frequency / 700.0f);
        }
        for (int m = 0; m < MEL_BINS; m++) {
            float left = melLow + m * melDelta;
            float centre = melLow + (m + 1.0f) * melDelta;
            float right = melLow + (m + 2.0f) * melDelta;
            double[] dense = new double[HALF];
            int first = -1, last = -1;
            for (int k = 0; k < HALF; k++) {
                float up = (binMel[k] - left) / (centre - left), down = (right - binMel[k]) / (right - centre);
                dense[k] = Math.max(0.0f, Math.min(up, down));
                if (dense[k] > 0) {
                    if (first < 0) first = k;
                    last = k;
                }
            }
            MEL_FIRST[m] = first;
            MEL_WEIGHTS[m] = java.util.Arrays.copyOfRange(dense, first, last + 1);
        }
    }
}
