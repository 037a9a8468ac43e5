package xllm.vision;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import javax.imageio.ImageIO;
import java.awt.image.BufferedImage;
import java.io.ByteArrayOutputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;
import java.util.Random;
import java.util.zip.CRC32;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Formats, colour conversion, EXIF orientation, and the errors for bad files. */
class ImageLoaderTest {

    private static final Path FORMATS = VisionFixtures.ROOT.resolve("formats");

    @TempDir
    Path temp;

    @Test
    void loadsPngJpegAndGrayscaleAsRgb() throws Exception {
        BufferedImage cat = ImageLoader.load(VisionFixtures.photo("cat"));
        assertEquals(BufferedImage.TYPE_INT_RGB, cat.getType());
        assertEquals(380, cat.getWidth());
        assertEquals(300, cat.getHeight());
        BufferedImage espresso = ImageLoader.load(VisionFixtures.photo("espresso"));
        assertEquals(600, espresso.getWidth());
        BufferedImage tripod = ImageLoader.load(VisionFixtures.photo("tripod"));
        int pixel = tripod.getRGB(100, 100) & 0xFFFFFF;
        assertEquals(pixel >>> 16, pixel & 0xFF, "gray copied to R, G, B");
        assertEquals(pixel >>> 16, (pixel >>> 8) & 0xFF);
    }

    @Test
    void bmpAndGifRoundTrip() throws Exception {
        BufferedImage image = new BufferedImage(17, 9, BufferedImage.TYPE_INT_RGB);
        int[] palette = {0xFF0000, 0x00FF00, 0x0000FF, 0x102030};
        for (int y = 0; y < 9; y++) {
            for (int x = 0; x < 17; x++) {
                image.setRGB(x, y, palette[(x + 2 * y) % 4]);
            }
        }
        for (String format : new String[] {"bmp", "gif"}) {
            Path file = temp.resolve("image." + format);
            assertTrue(ImageIO.write(image, format, file.toFile()), format);
            BufferedImage loaded = ImageLoader.load(file);
            assertEquals(17, loaded.getWidth(), format);
            for (int y = 0; y < 9; y++) {
                for (int x = 0; x < 17; x++) {
                    assertEquals(image.getRGB(x, y) & 0xFFFFFF, loaded.getRGB(x, y) & 0xFFFFFF, format);
                }
            }
        }
    }

    @Test
    void pngAlphaIsDroppedNotComposited() throws Exception {
        BufferedImage image = new BufferedImage(4, 4, BufferedImage.TYPE_INT_ARGB);
        image.setRGB(1, 1, 0x40C08020);
        Path file = temp.resolve("alpha.png");
        ImageIO.write(image, "png", file.toFile());
        assertEquals(0xC08020, ImageLoader.load(file).getRGB(1, 1) & 0xFFFFFF);
    }

    @Test
    void exifOrientationSixIsRotatedClockwise() throws Exception {
        Path file = VisionFixtures.ROOT.resolve("exif_rotate6.jpg");
        BufferedImage stored = ImageIO.read(file.toFile()); // 60 x 40 as stored, orientation ignored
        BufferedImage upright = ImageLoader.load(file);
        assertEquals(60, stored.getWidth());
        assertEquals(40, upright.getWidth());
        assertEquals(60, upright.getHeight());
        for (int y = 0; y < 40; y++) {
            for (int x = 0; x < 60; x++) {
                assertEquals(stored.getRGB(x, y) & 0xFFFFFF, upright.getRGB(39 - y, x) & 0xFFFFFF);
            }
        }
    }

    @Test
    void zeroByteFileNamesTheFile() throws Exception {
        Path file = Files.createFile(temp.resolve("empty.jpg"));
        assertMessage(file, "empty");
    }

    @Test
    void directoryAndMissingFileAreNamedAsSuch() throws Exception {
        Path folder = Files.createDirectory(temp.resolve("photo.jpg"));
        IOException directory = assertThrows(IOException.class, () -> ImageLoader.load(folder));
        assertEquals(folder + ": is a directory, not an image file", directory.getMessage());
        Path missing = temp.resolve("missing.jpg");
        IOException absent = assertThrows(IOException.class, () -> ImageLoader.load(missing));
        assertEquals("image file not found: " + missing, absent.getMessage());
    }

    @Test
    void jpegCutAnywhereInItsScanIsRefused() throws Exception {
        // ImageIO paints the missing rows grey and only tells warning listeners; every cut must be an error
        byte[] jpeg = Files.readAllBytes(VisionFixtures.photo("espresso"));
        for (int percent = 10; percent < 100; percent += 10) {
            Path file = temp.resolve("cut" + percent + ".jpg");
            Files.write(file, Arrays.copyOf(jpeg, jpeg.length * percent / 100));
            IOException e = assertThrows(IOException.class, () -> ImageLoader.load(file), percent + "%");
            assertTrue(e.getMessage().startsWith(file.toString()), e.getMessage());
        }
        Path noEnd = temp.resolve("no-eoi.jpg");
        Files.write(noEnd, Arrays.copyOf(jpeg, jpeg.length - 2)); // only the end-of-image marker missing
        IOException e = assertThrows(IOException.class, () -> ImageLoader.load(noEnd));
        assertTrue(e.getMessage().contains("truncated"), e.getMessage());
    }

    @Test
    void truncatedJpegNamesTheFile() throws Exception {
        byte[] jpeg = Files.readAllBytes(VisionFixtures.photo("espresso"));
        Path file = temp.resolve("truncated.jpg");
        Files.write(file, Arrays.copyOf(jpeg, jpeg.length / 2));
        assertMessage(file, "truncated");
    }

    @Test
    void truncatedPngNamesTheFile() throws Exception {
        byte[] png = Files.readAllBytes(VisionFixtures.photo("cat"));
        Path file = temp.resolve("truncated.png");
        Files.write(file, Arrays.copyOf(png, png.length / 3));
        assertMessage(file, "truncated");
    }

    @Test
    void randomBytesNameTheFile() throws Exception {
        byte[] noise = new byte[4096];
        new Random(7).nextBytes(noise);
        Path file = temp.resolve("noise.jpg");
        Files.write(file, noise);
        assertMessage(file, "unrecognised");
    }

    @Test
    void heicIsRefusedAsUnsupported() throws Exception {
        byte[] ftyp = "\0\0\0\u0018ftypheic\0\0\0\0mif1heic".getBytes(StandardCharsets.US_ASCII);
        Path file = temp.resolve("photo.heic");
        Files.write(file, Arrays.copyOf(ftyp, 64));
        assertMessage(file, "unsupported");
    }

    /** Pillow-made fixtures (make_image_format_fixtures.py): four quadrants of known colour. */
    @Test
    void webpLossyLosslessAndCmykJpegDecodeToTheQuadrantColours() throws Exception {
        JsonNode formats = new ObjectMapper().readTree(FORMATS.resolve("formats.json").toFile());
        // lossy codecs: Java's and libwebp/libjpeg's decoders differ by a level or two at the quadrant centres
        Map<String, Integer> tolerance = Map.of("quadrants_lossy.webp", 3, "quadrants_lossless.webp", 0,
                "quadrants_cmyk.jpg", 3);
        for (String name : tolerance.keySet()) {
            BufferedImage image = ImageLoader.load(FORMATS.resolve(name));
            assertEquals(BufferedImage.TYPE_INT_RGB, image.getType(), name);
            assertEquals(formats.get("width").asInt(), image.getWidth(), name);
            assertEquals(formats.get("height").asInt(), image.getHeight(), name);
            JsonNode expected = formats.get("files").get(name).get("pil_rgb_at_centres");
            for (int q = 0; q < 4; q++) {
                JsonNode centre = formats.get("centres").get(q);
                int pixel = image.getRGB(centre.get(0).asInt(), centre.get(1).asInt());
                int[] actual = {(pixel >>> 16) & 0xFF, (pixel >>> 8) & 0xFF, pixel & 0xFF};
                for (int c = 0; c < 3; c++) {
                    int want = expected.get(q).get(c).asInt();
                    assertTrue(Math.abs(actual[c] - want) <= tolerance.get(name), name + " quadrant " + q
                            + " channel " + c + ": " + actual[c] + " vs PIL " + want);
                }
            }
        }
        // lossless WebP: every pixel is exactly its quadrant's colour (the alpha-128 quadrant included)
        BufferedImage lossless = ImageLoader.load(FORMATS.resolve("quadrants_lossless.webp"));
        JsonNode drawn = formats.get("files").get("quadrants_lossless.webp").get("drawn_rgb");
        for (int y = 0; y < lossless.getHeight(); y++) {
            for (int x = 0; x < lossless.getWidth(); x++) {
                JsonNode colour = drawn.get((y < lossless.getHeight() / 2 ? 0 : 2) + (x < lossless.getWidth() / 2 ? 0 : 1));
                int want = colour.get(0).asInt() << 16 | colour.get(1).asInt() << 8 | colour.get(2).asInt();
                assertEquals(want, lossless.getRGB(x, y) & 0xFFFFFF, "lossless pixel " + x + "," + y);
            }
        }
    }

    @Test
    void truncatedWebpAndCmykJpegNameTheFile() throws Exception {
        for (String name : new String[] {"quadrants_lossy.webp", "quadrants_lossless.webp", "quadrants_cmyk.jpg"}) {
            byte[] webp = Files.readAllBytes(FORMATS.resolve(name));
            Path file = temp.resolve("truncated_" + name);
            Files.write(file, Arrays.copyOf(webp, webp.length * 2 / 3));
            IOException e = assertThrows(IOException.class, () -> ImageLoader.load(file));
            System.out.println(e.getMessage());
            assertTrue(e.getMessage().contains(file.getFileName().toString()), e.getMessage());
            assertTrue(e.getMessage().contains("truncated"), e.getMessage());
        }
    }

    @Test
    void webpAndCmykPixelLimitIsCheckedFromTheHeader() {
        for (String name : new String[] {"quadrants_lossy.webp", "quadrants_lossless.webp", "quadrants_cmyk.jpg"}) {
            IOException e = assertThrows(IOException.class, () -> ImageLoader.load(FORMATS.resolve(name), 1000));
            assertTrue(e.getMessage().contains(name) && e.getMessage().contains("exceeds the limit"), e.getMessage());
        }
    }

    @Test
    void hugeDimensionsAreRefusedBeforeDecoding() throws Exception {
        // a valid PNG header declaring 100,000 x 100,000 pixels (10 gigapixels) and no pixel data
        Path file = temp.resolve("bomb.png");
        Files.write(file, pngHeader(100_000, 100_000));
        assertMessage(file, "exceeds the limit");
        // and a small limit applies to a real photo
        IOException e = assertThrows(IOException.class, () -> ImageLoader.load(VisionFixtures.photo("cat"), 1000));
        assertTrue(e.getMessage().contains("cat.png"), e.getMessage());
    }

    private static void assertMessage(Path file, String problem) {
        IOException e = assertThrows(IOException.class, () -> ImageLoader.load(file));
        System.out.println(e.getMessage());
        assertTrue(e.getMessage().contains(file.getFileName().toString()), e.getMessage());
        assertTrue(e.getMessage().toLowerCase().contains(problem), e.getMessage());
    }

    private static byte[] pngHeader(int width, int height) throws IOException {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        DataOutputStream out = new DataOutputStream(bytes);
        out.write(new byte[] {(byte) 0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'});
        ByteArrayOutputStream chunk = new ByteArrayOutputStream();
        DataOutputStream data = new DataOutputStream(chunk);
        data.writeBytes("IHDR");
        data.writeInt(width);
        data.writeInt(height);
        data.write(new byte[] {8, 2, 0, 0, 0}); // 8-bit RGB
        byte[] body = chunk.toByteArray();
        out.writeInt(body.length - 4);
        out.write(body);
        CRC32 crc = new CRC32();
        crc.update(body);
        out.writeInt((int) crc.getValue());
        return bytes.toByteArray();
    }
}
