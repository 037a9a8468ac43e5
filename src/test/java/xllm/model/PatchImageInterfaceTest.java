package xllm.model;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import javax.imageio.ImageIO;
import java.awt.image.BufferedImage;
import java.io.ByteArrayOutputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Random;
import java.util.zip.CRC32;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The tiny patch interface reads images through the guarded loader: no truncated files, no decompression bombs. */
class PatchImageInterfaceTest {

    @TempDir
    Path dir;

    /** A 96×64 JPEG of noise, so its scan data is most of the file. */
    private static byte[] noiseJpeg() throws IOException {
        BufferedImage image = new BufferedImage(96, 64, BufferedImage.TYPE_INT_RGB);
        Random random = new Random(5);
        for (int y = 0; y < image.getHeight(); y++) {
            for (int x = 0; x < image.getWidth(); x++) image.setRGB(x, y, random.nextInt(1 << 24));
        }
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        ImageIO.write(image, "jpg", bytes);
        return bytes.toByteArray();
    }

    @Test
    void wholeImageGivesPatchValuesInTheUnitRange() throws IOException {
        Path jpeg = Files.write(dir.resolve("whole.jpg"), noiseJpeg());
        float[] patches = PatchImageInterface.patches(jpeg);
        assertEquals(PatchImageInterface.TOKENS * PatchImageInterface.PATCH_VALUES, patches.length);
        for (float v : patches) assertTrue(v >= 0 && v <= 1, "value " + v);
    }

    @Test
    void truncatedJpegIsRefusedNotPaintedGrey() throws IOException {
        byte[] jpeg = noiseJpeg();
        Path truncated = Files.write(dir.resolve("truncated.jpg"), Arrays.copyOf(jpeg, jpeg.length / 2));
        IOException error = assertThrows(IOException.class, () -> PatchImageInterface.patches(truncated));
        assertTrue(error.getMessage().startsWith(truncated.toString()), error.getMessage());
        assertTrue(error.getMessage().contains("truncated"), error.getMessage());
    }

    @Test
    void decompressionBombIsRefusedFromTheHeader() throws IOException {
        // a PNG header declaring 25000 × 25000 pixels (once decoded: 3.1 GB resident)
        Path bomb = Files.write(dir.resolve("bomb.png"), pngHeader(25_000, 25_000));
        IOException error = assertThrows(IOException.class, () -> PatchImageInterface.patches(bomb));
        assertTrue(error.getMessage().startsWith(bomb.toString()), error.getMessage());
        assertTrue(error.getMessage().contains("625000000 pixels exceeds the limit of 40000000"), error.getMessage());
    }

    @Test
    void directoryAndMissingFileAreNamedAsSuch() throws IOException {
        Path folder = Files.createDirectory(dir.resolve("photo.png"));
        IOException directory = assertThrows(IOException.class, () -> PatchImageInterface.patches(folder));
        assertEquals(folder + ": is a directory, not an image file", directory.getMessage());
        Path missing = dir.resolve("missing.png");
        IOException absent = assertThrows(IOException.class, () -> PatchImageInterface.patches(missing));
        assertEquals("image file not found: " + missing, absent.getMessage());
    }

    /** Signature and IHDR chunk only: 8-bit RGB of the given size. */
    private static byte[] pngHeader(int width, int height) throws IOException {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        DataOutputStream out = new DataOutputStream(bytes);
        out.write(new byte[] {(byte) 0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'});
        ByteArrayOutputStream chunk = new ByteArrayOutputStream();
        DataOutputStream body = new DataOutputStream(chunk);
        body.writeBytes("IHDR");
        body.writeInt(width);
        body.writeInt(height);
        body.write(new byte[] {8, 2, 0, 0, 0}); // bit depth, colour type RGB, compression, filter, interlace
        out.writeInt(13);
        out.write(chunk.toByteArray());
        CRC32 crc = new CRC32();
        crc.update(chunk.toByteArray());
        out.writeInt((int) crc.getValue());
        return bytes.toByteArray();
    }
}
