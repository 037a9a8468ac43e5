package xllm.eval;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import javax.imageio.ImageIO;
import java.awt.image.BufferedImage;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.HashSet;
import java.util.HexFormat;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The parts of {@code bench serve} that decide its numbers: media variants that defeat the encoder cache, percentiles. */
class ServeBenchmarkTest {

    @TempDir Path dir;

    /** A PCM16 mono WAV with a LIST chunk before its data, as some writers put one. */
    static byte[] wav(short[] samples) {
        ByteBuffer b = ByteBuffer.allocate(12 + 24 + 12 + 8 + samples.length * 2).order(ByteOrder.LITTLE_ENDIAN);
        b.put("RIFF".getBytes()).putInt(b.capacity() - 8).put("WAVE".getBytes());
        b.put("fmt ".getBytes()).putInt(16).putShort((short) 1).putShort((short) 1).putInt(16000).putInt(32000)
                .putShort((short) 2).putShort((short) 16);
        b.put("LIST".getBytes()).putInt(4).put("INFO".getBytes());
        b.put("data".getBytes()).putInt(samples.length * 2);
        for (short s : samples) b.putShort(s);
        return b.array();
    }

    @Test
    void everyRequestGetsMediaOfItsOwnThatDifferOnlyInOnePixelAndOneSample() throws Exception {
        BufferedImage image = new BufferedImage(8, 4, BufferedImage.TYPE_INT_RGB);
        for (int x = 0; x < 8; x++) for (int y = 0; y < 4; y++) image.setRGB(x, y, (x * 30) << 16 | (y * 60) << 8 | 90);
        ImageIO.write(image, "png", dir.resolve("i.png").toFile());
        short[] samples = {100, -200, 300, -400, 500};
        Files.write(dir.resolve("a.wav"), wav(samples));
        ServeBenchmark.Media media = new ServeBenchmark.Media(dir.resolve("i.png"), dir.resolve("a.wav"));

        Set<String> images = new HashSet<>(), sounds = new HashSet<>();
        for (int k = 0; k < 5; k++) {
            BufferedImage variant = ImageIO.read(new ByteArrayInputStream(media.png(k)));
            int changed = 0;
            for (int x = 0; x < 8; x++) {
                for (int y = 0; y < 4; y++) {
                    int diff = variant.getRGB(x, y) ^ image.getRGB(x, y);
                    assertTrue(diff == 0 || diff == 1, "only the lowest blue bit changes");
                    changed += diff;
                }
            }
            assertEquals(1, changed);
            images.add(sha256(media.png(k)));

            byte[] sound = media.wav(k);
            byte[] original = wav(samples);
            assertEquals(original.length, sound.length);
            int differing = 0;
            for (int i = 0; i < sound.length; i++) if (sound[i] != original[i]) differing++;
            assertEquals(1, differing, "one byte of one sample");
            assertArrayEquals(java.util.Arrays.copyOf(original, 56), java.util.Arrays.copyOf(sound, 56), "headers kept");
            sounds.add(sha256(sound));
        }
        assertEquals(5, images.size());
        assertEquals(5, sounds.size());
    }

    @Test
    void aFileThatIsNotAWavIsRefusedByName() throws Exception {
        ImageIO.write(new BufferedImage(2, 2, BufferedImage.TYPE_INT_RGB), "png", dir.resolve("i.png").toFile());
        Files.writeString(dir.resolve("a.wav"), "not a wav at all");
        IOException e = assertThrows(IOException.class,
                () -> new ServeBenchmark.Media(dir.resolve("i.png"), dir.resolve("a.wav")));
        assertTrue(e.getMessage().contains("a.wav") && e.getMessage().contains("RIFF"), e.getMessage());
    }

    @Test
    void percentilesAreNearestRank() {
        double[] values = {5, 1, 4, 2, 3, 6, 7, 8, 9, 10};
        assertEquals(5, ServeBenchmark.percentile(values, 50));
        assertEquals(10, ServeBenchmark.percentile(values, 95));
        assertEquals(1, ServeBenchmark.percentile(values, 1));
        assertTrue(Double.isNaN(ServeBenchmark.percentile(new double[0], 50)));
    }

    private static String sha256(byte[] bytes) throws Exception {
        return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(bytes));
    }
}
