package xllm.speech;

import xllm.tensor.InputFile;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * Reads a RIFF/WAVE file into mono float samples in [-1, 1].
 *
 * <p>Supported: PCM integers of 8 (unsigned, offset 128), 16, 24 and 32 bits, IEEE float of 32 and 64 bits,
 * and the same two encodings wrapped in WAVE_FORMAT_EXTENSIBLE. Several channels are averaged into one.
 * Chunks other than {@code fmt } and {@code data} (LIST, fact, cue, ...) are skipped, including the pad byte
 * that follows a chunk of odd size. Integers are scaled by 1 / 2^(bits-1), so a 16-bit sample s becomes
 * s / 32768 (the convention of torchaudio.load and soundfile); {@link Fbank} multiplies back by 32768.
 *
 * <p>The header is checked before anything is sized by it: sample rate within
 * {@value #MIN_SAMPLE_RATE}..{@value #MAX_SAMPLE_RATE} Hz, at most {@value #MAX_CHANNELS} channels, a supported sample
 * size, a data chunk that the file really holds. NaN and infinite float samples are refused. Every error is an
 * {@link IOException} whose message starts with the file's path (a missing file: "audio file not found: path").
 */
public final class WavReader {

    /** Longest audio {@link #read(Path)} accepts, in seconds; longer files are refused before decoding. */
    public static final double DEFAULT_MAX_SECONDS = 600.0;
    /** Lowest sample rate accepted: below it nothing of speech is left (and resampling up is all padding). */
    public static final int MIN_SAMPLE_RATE = 1_000;
    /** Highest sample rate accepted, the most any audio interface records at; the resampler's limit too. */
    public static final int MAX_SAMPLE_RATE = Resampler.MAX_RATE;
    /** Most channels accepted (third-order ambisonics has 16, a 22.2 layout 24). */
    public static final int MAX_CHANNELS = 64;

    private static final int FORMAT_PCM = 0x0001;
    private static final int FORMAT_IEEE_FLOAT = 0x0003;
    private static final int FORMAT_EXTENSIBLE = 0xFFFE;
    private static final int READ_BLOCK_FRAMES = 16_384; // the data chunk is decoded a block at a time

    /** Decoded audio: mono samples in [-1, 1] at {@code sampleRate} Hz. */
    public record Audio(float[] samples, int sampleRate) {
        public double seconds() {
            return samples.length / (double) sampleRate;
        }
    }

    /** What the header says, checked against the file's size: enough to judge a file before decoding it. */
    public record Info(int sampleRate, int channels, int bitsPerSample, long frames) {
        public double seconds() {
            return frames / (double) sampleRate;
        }
    }

    private WavReader() {}

    public static Audio read(Path path) throws IOException {
        return read(path, DEFAULT_MAX_SECONDS);
    }

    /** Reads {@code path}; refuses audio longer than {@code maxSeconds}. */
    public static Audio read(Path path, double maxSeconds) throws IOException {
        InputFile.require(path, "audio", null);
        try (FileChannel channel = FileChannel.open(path, StandardOpenOption.READ)) {
            Layout layout = layout(channel, path);
            double seconds = layout.info().seconds();
            if (seconds > maxSeconds) {
                throw error(path, String.format("audio lasts %.1f s, over the maximum of %.1f s", seconds, maxSeconds));
            }
            return decode(channel, layout, path);
        }
    }

    /** The header of {@code path} (format, rate, channels, length), validated as {@link #read} does; no sample is read. */
    public static Info info(Path path) throws IOException {
        InputFile.require(path, "audio", null);
        try (FileChannel channel = FileChannel.open(path, StandardOpenOption.READ)) {
            return layout(channel, path).info();
        }
    }

    /** The fields of the fmt chunk that decoding needs. */
    private record Format(int encoding, int channels, int sampleRate, int blockAlign, int bitsPerSample) {}

    /** Where the samples are: the format, the data chunk's first byte and its whole frames. */
    private record Layout(Format format, long dataStart, long frames) {
        Info info() {
            return new Info(format.sampleRate, format.channels, format.bitsPerSample, frames);
        }
    }

    private static Layout layout(FileChannel channel, Path path) throws IOException {
        long fileSize = channel.size();
        ByteBuffer riff = readAt(channel, 0, 12, path, "RIFF header");
        if (riff == null || !tag(riff, 0).equals("RIFF") || !tag(riff, 8).equals("WAVE")) {
            throw error(path, "not a RIFF/WAVE file");
        }
        Format format = null;
        long position = 12;
        while (true) {
            ByteBuffer chunkHeader = readAt(channel, position, 8, path, "chunk header");
            if (chunkHeader == null) {
                throw error(path, format == null ? "truncated header: no fmt chunk" : "no data chunk");
            }
            String id = tag(chunkHeader, 0);
            long size = Integer.toUnsignedLong(chunkHeader.getInt(4));
            long body = position + 8;
            if (id.equals("fmt ")) {
                if (size < 16 || body + size > fileSize) throw error(path, "truncated header: fmt chunk");
                if (size > 1024) throw error(path, "fmt chunk of " + size + " bytes (at most 1024 are read)");
                format = parseFormat(readAt(channel, body, (int) size, path, "fmt chunk"), path);
            } else if (id.equals("data")) {
                if (format == null) throw error(path, "truncated header: data chunk before fmt chunk");
                if (body + size > fileSize) {
                    throw error(path, "truncated data: chunk declares " + size + " bytes, file holds " + (fileSize - body));
                }
                long frames = size / format.blockAlign;
                if (frames == 0) throw error(path, "0-length audio (empty data chunk)");
                if (frames > Integer.MAX_VALUE - 8) throw error(path, "too many samples: " + frames);
                return new Layout(format, body, frames);
            }
            position = body + size + (size & 1); // chunks are padded to an even size
        }
    }

    private static Format parseFormat(ByteBuffer fmt, Path path) throws IOException {
        int tag = Short.toUnsignedInt(fmt.getShort(0));
        int channels = Short.toUnsignedInt(fmt.getShort(2));
        long sampleRate = Integer.toUnsignedLong(fmt.getInt(4));
        int blockAlign = Short.toUnsignedInt(fmt.getShort(12));
        int bits = Short.toUnsignedInt(fmt.getShort(14));
        int encoding = tag;
        if (tag == FORMAT_EXTENSIBLE) {
            // cbSize(2) validBits(2) channelMask(4) subFormat GUID(16): the GUID starts with the format tag
            if (fmt.limit() < 40) throw error(path, "truncated header: WAVE_FORMAT_EXTENSIBLE fmt chunk");
            encoding = Short.toUnsignedInt(fmt.getShort(24));
        }
        if (encoding != FORMAT_PCM && encoding != FORMAT_IEEE_FLOAT) {
            throw error(path, String.format("unsupported format tag 0x%04X (%s); only PCM and IEEE float are read",
                    encoding, formatName(encoding)));
        }
        boolean bitsOk = encoding == FORMAT_PCM ? (bits == 8 || bits == 16 || bits == 24 || bits == 32)
                : (bits == 32 || bits == 64);
        if (!bitsOk) throw error(path, "unsupported " + formatName(encoding) + " sample size of " + bits + " bits");
        if (channels < 1) throw error(path, "fmt chunk declares 0 channels");
        if (channels > MAX_CHANNELS) throw error(path, channels + " channels is over the limit of " + MAX_CHANNELS);
        // checked before anything is sized by it: 2^31-1 Hz once asked the resampler for a table of 576 GB
        if (sampleRate < MIN_SAMPLE_RATE || sampleRate > MAX_SAMPLE_RATE) {
            throw error(path, "sample rate " + sampleRate + " Hz is outside " + MIN_SAMPLE_RATE + ".." + MAX_SAMPLE_RATE + " Hz");
        }
        if (blockAlign != channels * (bits / 8)) {
            throw error(path, "block align " + blockAlign + " does not match " + channels + " channels of " + bits + " bits");
        }
        return new Format(encoding, channels, (int) sampleRate, blockAlign, bits);
    }

    /** Averages the channels into mono, a block of frames at a time; IEEE float samples must be finite. */
    private static Audio decode(FileChannel channel, Layout layout, Path path) throws IOException {
        Format format = layout.format();
        int channels = format.channels;
        int bytes = format.bitsPerSample / 8;
        float[] mono = new float[(int) layout.frames()];
        float channelWeight = 1f / channels;
        for (int first = 0; first < mono.length; first += READ_BLOCK_FRAMES) {
            int count = Math.min(READ_BLOCK_FRAMES, mono.length - first);
            ByteBuffer data = readAt(channel, layout.dataStart() + (long) first * format.blockAlign,
                    count * format.blockAlign, path, "data");
            if (data == null) throw error(path, "truncated data");
            int offset = 0;
            for (int frame = first; frame < first + count; frame++) {
                double sum = 0;
                for (int c = 0; c < channels; c++, offset += bytes) {
                    double value = sample(data, offset, format);
                    if (!Double.isFinite(value)) {
                        throw error(path, "sample " + frame + " is " + value + (channels > 1 ? " (channel " + (c + 1)
                                + " of " + channels + ")" : "") + "; audio samples must be finite");
                    }
                    sum += value;
                }
                mono[frame] = (float) (sum * channelWeight);
            }
        }
        return new Audio(mono, format.sampleRate);
    }

    private static double sample(ByteBuffer data, int offset, Format format) {
        if (format.encoding == FORMAT_IEEE_FLOAT) {
            return format.bitsPerSample == 32 ? data.getFloat(offset) : data.getDouble(offset);
        }
        return switch (format.bitsPerSample) {
            case 8 -> ((data.get(offset) & 0xFF) - 128) / 128.0;
            case 16 -> data.getShort(offset) / 32768.0;
            case 24 -> (((data.get(offset + 2) << 16) | ((data.get(offset + 1) & 0xFF) << 8)
                    | (data.get(offset) & 0xFF))) / 8388608.0;
            default -> data.getInt(offset) / 2147483648.0;
        };
    }

    /** Reads exactly {@code length} bytes at {@code position}, little-endian; null when the file ends first. */
    private static ByteBuffer readAt(FileChannel channel, long position, int length, Path path, String what)
            throws IOException {
        if (position + length > channel.size()) return null;
        ByteBuffer buffer = ByteBuffer.allocate(length).order(ByteOrder.LITTLE_ENDIAN);
        while (buffer.hasRemaining()) {
            int n = channel.read(buffer, position + buffer.position());
            if (n < 0) throw error(path, "truncated " + what);
        }
        return buffer.flip();
    }

    private static String tag(ByteBuffer buffer, int offset) {
        byte[] chars = new byte[4];
        buffer.get(offset, chars);
        return new String(chars, java.nio.charset.StandardCharsets.US_ASCII);
    }

    private static String formatName(int tag) {
        return switch (tag) {
            case FORMAT_PCM -> "PCM";
            case FORMAT_IEEE_FLOAT -> "IEEE float";
            case 0x0002 -> "Microsoft ADPCM";
            case 0x0006 -> "A-law";
            case 0x0007 -> "mu-law";
            case 0x0011 -> "IMA ADPCM";
            case 0x0055 -> "MPEG layer 3";
            default -> "unknown";
        };
    }

    private static IOException error(Path path, String message) {
        return new IOException(path + ": " + message);
    }
}
