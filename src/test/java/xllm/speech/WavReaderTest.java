package xllm.speech;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.*;

class WavReaderTest {

    @TempDir
    Path dir;

    static final int RATE = 8000;
    // writer scales by 2^(b-1) - 1, reader divides by 2^(b-1): half a step of rounding plus |x| ≤ 1 step of scale
    static final double STEP8 = 1.5 / 128, STEP16 = 1.5 / 32768, STEP24 = 1.5 / 8388608 + 1e-7;

    /** A 440 Hz sine at 0.7 on channel 0 and a 1 kHz cosine at -0.4..0.4 on the others, 100 ms. */
    static double[][] signal(int channels) {
        double[][] x = new double[channels][800];
        for (int i = 0; i < 800; i++) {
            x[0][i] = 0.7 * Math.sin(2 * Math.PI * 440 * i / RATE);
            for (int c = 1; c < channels; c++) x[c][i] = 0.4 * Math.cos(2 * Math.PI * 1000 * i / RATE + c);
        }
        return x;
    }

    static float[] monoAverage(double[][] x) {
        float[] mono = new float[x[0].length];
        for (int i = 0; i < mono.length; i++) {
            double sum = 0;
            for (double[] channel : x) sum += channel[i];
            mono[i] = (float) (sum / x.length);
        }
        return mono;
    }

    /** Encodes interleaved samples: tag 1 (PCM) or 3 (float); extensible wraps the tag in a GUID. */
    static byte[] encode(double[][] x, int tag, int bits, boolean extensible, boolean withListChunk) {
        int channels = x.length, n = x[0].length, bytes = bits / 8;
        ByteBuffer data = ByteBuffer.allocate(n * channels * bytes).order(ByteOrder.LITTLE_ENDIAN);
        for (int i = 0; i < n; i++) {
            for (double[] channel : x) {
                double v = channel[i];
                if (tag == 3 && bits == 32) data.putFloat((float) v);
                else if (tag == 3) data.putDouble(v);
                else if (bits == 8) data.put((byte) (Math.round(v * 127) + 128));
                else if (bits == 16) data.putShort((short) Math.round(v * 32767));
                else if (bits == 24) {
                    int s = (int) Math.round(v * 8388607);
                    data.put((byte) s).put((byte) (s >> 8)).put((byte) (s >> 16));
                } else data.putInt((int) Math.round(v * 2147483647.0));
            }
        }
        ByteBuffer fmt = ByteBuffer.allocate(extensible ? 40 : 16).order(ByteOrder.LITTLE_ENDIAN);
        fmt.putShort((short) (extensible ? 0xFFFE : tag)).putShort((short) channels).putInt(RATE)
                .putInt(RATE * channels * bytes).putShort((short) (channels * bytes)).putShort((short) bits);
        if (extensible) {
            fmt.putShort((short) 22).putShort((short) bits).putInt(channels == 1 ? 4 : 3).putShort((short) tag)
                    .put(new byte[] {0, 0, 0, 0, 0x10, 0, (byte) 0x80, 0, 0, (byte) 0xAA, 0, 0x38, (byte) 0x9B, 0x71});
        }
        ByteArrayOutputStream chunks = new ByteArrayOutputStream();
        chunks.writeBytes("WAVE".getBytes(StandardCharsets.US_ASCII));
        chunk(chunks, "fmt ", fmt.array());
        if (withListChunk) chunk(chunks, "LIST", "INFOISFT\u0005\0\0\0xllm\0".getBytes(StandardCharsets.ISO_8859_1)); // odd size 17
        chunk(chunks, "data", data.array());
        ByteArrayOutputStream file = new ByteArrayOutputStream();
        file.writeBytes("RIFF".getBytes(StandardCharsets.US_ASCII));
        file.writeBytes(le32(chunks.size()));
        file.writeBytes(chunks.toByteArray());
        return file.toByteArray();
    }

    static void chunk(ByteArrayOutputStream out, String id, byte[] body) {
        out.writeBytes(id.getBytes(StandardCharsets.US_ASCII));
        out.writeBytes(le32(body.length));
        out.writeBytes(body);
        if ((body.length & 1) == 1) out.write(0);
    }

    static byte[] le32(int v) {
        return ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putInt(v).array();
    }

    Path write(String name, byte[] bytes) throws IOException {
        Path path = dir.resolve(name);
        Files.write(path, bytes);
        return path;
    }

    void assertRoundTrip(int tag, int bits, int channels, boolean extensible, double tolerance) throws IOException {
        double[][] x = signal(channels);
        Path path = write("t.wav", encode(x, tag, bits, extensible, true));
        WavReader.Audio audio = WavReader.read(path);
        assertEquals(RATE, audio.sampleRate());
        float[] expected = monoAverage(x);
        assertEquals(expected.length, audio.samples().length);
        double max = 0;
        for (int i = 0; i < expected.length; i++) max = Math.max(max, Math.abs(expected[i] - audio.samples()[i]));
        assertTrue(max <= tolerance, "tag " + tag + " bits " + bits + " channels " + channels + ": error " + max);
    }

    @Test
    void pcmIntegersRoundTripWithinQuantisation() throws IOException {
        assertRoundTrip(1, 8, 1, false, STEP8);
        assertRoundTrip(1, 16, 1, false, STEP16);
        assertRoundTrip(1, 24, 1, false, STEP24);
        assertRoundTrip(1, 32, 1, false, 1e-7);
    }

    @Test
    void floatsRoundTrip() throws IOException {
        assertRoundTrip(3, 32, 1, false, 1e-7);
        assertRoundTrip(3, 64, 1, false, 1e-7);
    }

    @Test
    void multiChannelIsAveragedToMono() throws IOException {
        assertRoundTrip(1, 16, 2, false, STEP16);
        assertRoundTrip(3, 32, 6, false, 1e-7);
    }

    @Test
    void extensibleFormatIsRead() throws IOException {
        assertRoundTrip(1, 24, 2, true, STEP24);
        assertRoundTrip(3, 32, 1, true, 1e-7);
        assertRoundTrip(1, 16, 1, true, STEP16);
    }

    @Test
    void eightBitIsUnsignedAroundMidpoint() throws IOException {
        double[][] x = {{0.0, 1.0, -1.0}};
        float[] samples = WavReader.read(write("u8.wav", encode(x, 1, 8, false, false))).samples();
        assertArrayEquals(new float[] {0f, 127f / 128, -127f / 128}, samples, 1e-7f);
    }

    void assertFailsNamingFile(String name, byte[] bytes, String reason) throws IOException {
        Path path = write(name, bytes);
        IOException error = assertThrows(IOException.class, () -> WavReader.read(path, 60));
        assertTrue(error.getMessage().contains(path.toString()), error.getMessage());
        assertTrue(error.getMessage().contains(reason), error.getMessage());
    }

    @Test
    void errorsNameTheFile() throws IOException {
        byte[] good = encode(signal(1), 1, 16, false, false);
        byte[] notRiff = good.clone();
        notRiff[0] = 'X';
        assertFailsNamingFile("not-riff.wav", notRiff, "not a RIFF/WAVE");
        byte[] notWave = good.clone();
        notWave[8] = 'A';
        assertFailsNamingFile("not-wave.wav", notWave, "not a RIFF/WAVE");
        assertFailsNamingFile("tiny.wav", Arrays.copyOf(good, 6), "not a RIFF/WAVE");
        assertFailsNamingFile("header.wav", Arrays.copyOf(good, 30), "truncated header");
        assertFailsNamingFile("data.wav", Arrays.copyOf(good, good.length - 100), "truncated data");
        assertFailsNamingFile("empty.wav", encode(new double[][] {{}}, 1, 16, false, false), "0-length audio");
        byte[] mulaw = encode(signal(1), 1, 8, false, false);
        mulaw[20] = 7;
        assertFailsNamingFile("mulaw.wav", mulaw, "mu-law");
        byte[] adpcm = encode(signal(1), 1, 16, true, false);
        adpcm[20 + 24] = 2; // the GUID's format tag inside WAVE_FORMAT_EXTENSIBLE
        assertFailsNamingFile("adpcm.wav", adpcm, "ADPCM");
        byte[] noData = Arrays.copyOf(good, 36); // RIFF header and fmt chunk only
        assertFailsNamingFile("nodata.wav", noData, "no data chunk");
    }

    @Test
    void durationOverTheMaximumIsRefused() throws IOException {
        Path path = write("long.wav", encode(signal(1), 1, 16, false, false)); // 0.1 s
        assertEquals(800, WavReader.read(path, 0.1).samples().length);
        IOException error = assertThrows(IOException.class, () -> WavReader.read(path, 0.05));
        assertTrue(error.getMessage().startsWith(path.toString()), error.getMessage());
        assertTrue(error.getMessage().contains("over the maximum"), error.getMessage());
    }

    /** {@code wav} with the fmt chunk's sample rate (bytes 24..27 of a canonical header) replaced. */
    static byte[] withSampleRate(byte[] wav, int rate) {
        byte[] copy = wav.clone();
        ByteBuffer.wrap(copy).order(ByteOrder.LITTLE_ENDIAN).putInt(24, rate);
        return copy;
    }

    @Test
    void sampleRateOutsideTheSupportedRangeIsRefusedBeforeDecoding() throws IOException {
        byte[] good = encode(signal(1), 1, 16, false, false);
        // 2^31-1 Hz once reached the resampler, whose filter table for it does not fit in any memory
        assertFailsNamingFile("huge-rate.wav", withSampleRate(good, Integer.MAX_VALUE),
                "sample rate 2147483647 Hz is outside 1000..384000 Hz");
        assertFailsNamingFile("negative-rate.wav", withSampleRate(good, 0x80000000),
                "sample rate 2147483648 Hz is outside 1000..384000 Hz");
        assertFailsNamingFile("low-rate.wav", withSampleRate(good, 999), "sample rate 999 Hz is outside 1000..384000 Hz");
        assertEquals(384000, WavReader.read(write("high-rate.wav", withSampleRate(good, 384000))).sampleRate());
    }

    @Test
    void channelCountOverTheLimitIsRefused() throws IOException {
        assertFailsNamingFile("many-channels.wav", encode(signal(65), 1, 8, false, false),
                "65 channels is over the limit of 64");
        assertEquals(800, WavReader.read(write("64.wav", encode(signal(64), 1, 8, false, false))).samples().length);
    }

    @Test
    void fmtChunkDeclaringMoreThanAHeaderIsRefused() throws IOException {
        byte[] good = encode(signal(1), 1, 16, false, false);
        byte[] huge = Arrays.copyOf(good, good.length + 2000); // the file really holds the bytes it declares
        ByteBuffer.wrap(huge).order(ByteOrder.LITTLE_ENDIAN).putInt(16, 2000);
        assertFailsNamingFile("big-fmt.wav", huge, "fmt chunk of 2000 bytes (at most 1024 are read)");
    }

    @Test
    void nonFiniteFloatSamplesAreRefused() throws IOException {
        double[][] nan = signal(1);
        nan[0][5] = Double.NaN;
        assertFailsNamingFile("nan.wav", encode(nan, 3, 32, false, false), "sample 5 is NaN");
        double[][] infinite = signal(2);
        infinite[1][700] = Double.POSITIVE_INFINITY;
        assertFailsNamingFile("inf.wav", encode(infinite, 3, 64, false, false), "sample 700 is Infinity");
    }

    @Test
    void aDirectoryOrAMissingFileIsNamedAsSuch() throws IOException {
        Path folder = Files.createDirectory(dir.resolve("clip.wav"));
        IOException directory = assertThrows(IOException.class, () -> WavReader.read(folder));
        assertEquals(folder + ": is a directory, not an audio file", directory.getMessage());
        Path missing = dir.resolve("missing.wav");
        IOException absent = assertThrows(IOException.class, () -> WavReader.read(missing));
        assertEquals("audio file not found: " + missing, absent.getMessage());
    }
}
