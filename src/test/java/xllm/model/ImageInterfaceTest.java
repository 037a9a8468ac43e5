package xllm.model;

import ai.djl.ndarray.NDManager;
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
import java.util.List;
import java.util.Random;
import java.util.zip.CRC32;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The image interface's contract on the tiny patch encoder: prepare reads through the guarded loader (no truncated
 * files, no decompression bombs), encode and adapt give one (Q, D) per image, and its record names what it was built
 * from.
 */
class ImageInterfaceTest {

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
    void prepareEncodeAdaptGiveOneRowOfLlmVectorsPerImage() throws IOException {
        Path jpeg = Files.write(dir.resolve("whole.jpg"), noiseJpeg());
        try (NDManager manager = NDManager.newBaseManager();
             ImageInterface image = ImageInterface.create("random", null, null, 24, 1, manager)) {
            Features pixels = image.prepare(jpeg);
            assertArrayEquals(new long[] {3, 8, 8}, pixels.shape());
            for (float v : pixels.values()) assertTrue(v >= 0 && v <= 1, "value " + v);
            List<Features> encoded = image.encode(List.of(pixels, pixels), manager);
            assertArrayEquals(new long[] {4, 32}, encoded.get(1).shape());
            var vectors = image.adapt(encoded, manager);
            assertEquals(2, vectors.size());
            assertArrayEquals(new long[] {4, 24}, vectors.get(0).getShape().getShape());
            assertArrayEquals(vectors.get(0).toFloatArray(), vectors.get(1).toFloatArray(), 0f);
            InterfaceConfig.Image record = image.config();
            assertEquals("random", record.encoder().source());
            assertEquals(List.of(4L, 32L), record.encoder().featureShape());
            assertNull(record.qformer(), "the tiny patch encoder has no Q-Former");
            assertEquals(24, record.llmWidth());
            assertTrue(image.parameters().stream().allMatch(p -> p.name().startsWith("imageInterface.adapter.")));
        }
    }

    @Test
    void theQFormerInterfaceNamesItsParametersAsHuggingFaceDoes() throws IOException {
        try (NDManager manager = NDManager.newBaseManager();
             ImageInterface image = ImageInterface.create("random", ImageInterface.qformerConfig("tiny"), null, 24, 1, manager)) {
            var names = image.parameters().stream().map(p -> p.name()).toList();
            assertTrue(names.contains("imageInterface.qformer.query_tokens"), names.toString());
            assertTrue(names.contains("imageInterface.adapter.weight"), names.toString());
            assertEquals(32, image.config().qformer().encoderHiddenSize(), "the Q-Former reads the encoder's width");
            var out = image.adapt(image.encode(List.of(image.prepare(writeJpeg())), manager), manager);
            assertArrayEquals(new long[] {ImageInterface.qformerConfig("tiny").numQueryTokens(), 24},
                    out.get(0).getShape().getShape());
        }
    }

    /** model.visionEncoder may name a CLIP vision directory: the Q-Former then cross-attends to its ViT tokens. */
    @Test
    void aClipDirectorySelectsTheVitEncoder() throws IOException {
        Path clip = Path.of("src/test/resources/fixtures/clip/gelu");
        try (NDManager manager = NDManager.newBaseManager();
             ImageInterface image = ImageInterface.create(clip.toString(), ImageInterface.qformerConfig("tiny"), null, 24, 1,
                     manager);
             xllm.vision.ClipVisionEncoder direct = xllm.vision.ClipVisionEncoder.load(clip,
                     xllm.vision.ClipVisionEncoder.FeatureLayer.PENULTIMATE, manager)) {
            InterfaceConfig.Image record = image.config();
            assertEquals(direct.identity(), record.encoder().identity());
            assertEquals(Arrays.stream(direct.featureShape()).boxed().toList(), record.encoder().featureShape());
            assertEquals(direct.featureShape()[1], record.qformer().encoderHiddenSize());
            assertTrue(!record.encoder().positions(), "ViT tokens carry their own positions");
            var out = image.adapt(image.encode(List.of(image.prepare(writeJpeg())), manager), manager);
            assertArrayEquals(new long[] {ImageInterface.qformerConfig("tiny").numQueryTokens(), 24},
                    out.get(0).getShape().getShape());
        }
    }

    private Path writeJpeg() throws IOException {
        return Files.write(dir.resolve("q.jpg"), noiseJpeg());
    }

    @Test
    void truncatedJpegIsRefusedNotPaintedGrey() throws IOException {
        byte[] jpeg = noiseJpeg();
        Path truncated = Files.write(dir.resolve("truncated.jpg"), Arrays.copyOf(jpeg, jpeg.length / 2));
        try (NDManager manager = NDManager.newBaseManager();
             ImageInterface image = ImageInterface.create("random", null, null, 24, 1, manager)) {
            IOException error = assertThrows(IOException.class, () -> image.prepare(truncated));
            assertTrue(error.getMessage().startsWith(truncated.toString()), error.getMessage());
            assertTrue(error.getMessage().contains("truncated"), error.getMessage());
            // a PNG header declaring 25000 × 25000 pixels (once decoded: 3.1 GB resident)
            Path bomb = Files.write(dir.resolve("bomb.png"), pngHeader(25_000, 25_000));
            IOException refused = assertThrows(IOException.class, () -> image.prepare(bomb));
            assertTrue(refused.getMessage().startsWith(bomb.toString()), refused.getMessage());
            assertTrue(refused.getMessage().contains("625000000 pixels exceeds the limit of 40000000"), refused.getMessage());
            Path missing = dir.resolve("missing.png");
            IOException absent = assertThrows(IOException.class, () -> image.prepare(missing));
            assertEquals("image file not found: " + missing, absent.getMessage());
        }
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
