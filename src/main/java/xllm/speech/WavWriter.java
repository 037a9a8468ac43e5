package xllm.speech;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;

/**
 * Writes mono float samples as a 16-bit PCM RIFF/WAVE file (the format of our ASR corpora, DESIGN.md §4).
 * Samples are scaled by 32768 and rounded, the inverse of {@link WavReader}'s 1/32768, and clipped to the 16-bit
 * range, so a read-write-read round trip is exact for audio that came from 16-bit PCM. The file is written to a
 * temporary sibling and renamed, so a killed run never leaves a truncated WAV behind a finished name.
 */
public final class WavWriter {

    private WavWriter() {}

    /** The complete file's bytes: 44-byte header, then little-endian 16-bit samples. */
    public static byte[] encode(float[] samples, int sampleRate) {
        if (sampleRate <= 0) throw new IllegalArgumentException("sample rate must be positive, got " + sampleRate);
        int dataBytes = samples.length * 2;
        ByteBuffer out = ByteBuffer.allocate(44 + dataBytes).order(ByteOrder.LITTLE_ENDIAN);
        out.put(new byte[]{'R', 'I', 'F', 'F'}).putInt(36 + dataBytes).put(new byte[]{'W', 'A', 'V', 'E'});
        out.put(new byte[]{'f', 'm', 't', ' '}).putInt(16)
                .putShort((short) 1)             // PCM
                .putShort((short) 1)             // mono
                .putInt(sampleRate)
                .putInt(sampleRate * 2)          // bytes per second
                .putShort((short) 2)             // block align
                .putShort((short) 16);           // bits per sample
        out.put(new byte[]{'d', 'a', 't', 'a'}).putInt(dataBytes);
        for (float s : samples) {
            long v = Math.round(s * 32768.0);
            out.putShort((short) Math.max(-32768, Math.min(32767, v)));
        }
        return out.array();
    }

    /** Writes {@code path} atomically (temp file + rename). */
    public static void write(Path path, float[] samples, int sampleRate) throws IOException {
        Path temp = path.resolveSibling(path.getFileName() + ".tmp");
        Files.write(temp, encode(samples, sampleRate));
        Files.move(temp, path, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    }
}
