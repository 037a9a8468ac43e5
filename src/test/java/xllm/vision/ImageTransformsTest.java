package xllm.vision;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import org.junit.jupiter.api.Test;

import java.awt.image.BufferedImage;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static xllm.vision.VisionFixtures.maxAbsDiff;
import static xllm.vision.VisionFixtures.reference;

/**
 * Java preprocessing against torch's F.interpolate(antialias=True) + center crop + normalisation
 * (make_efficientnet_fixtures.py), on pixels decoded by ImageLoader.
 */
class ImageTransformsTest {

    private final ImageTransforms transforms = ImageTransforms.efficientNetLite();

    @Test
    void bilinearMatchesTorchOnLosslessPhotos() throws Exception {
        for (String key : new String[] {"cat", "tripod"}) {
            float[] java = transforms.toChw(ImageLoader.load(VisionFixtures.photo(key)));
            double diff = maxAbsDiff(java, reference(key + ".bilinear"));
            System.out.printf("preprocess %s: max |java - torch| = %.3g%n", key, diff);
            assertTrue(diff <= 1e-4, key + ": " + diff);
        }
    }

    @Test
    void jpegMatchesTorchToo() throws Exception {
        // PIL's libjpeg-turbo and the JDK's libjpeg 6b both default to the accurate integer IDCT: on this file the
        // decoded pixels agree exactly (3.6e-7 here). Other encoders' files (progressive, 4:2:0 upsampling
        // variants) may differ by a grey level; the resampling itself is what this compares.
        float[] java = transforms.toChw(ImageLoader.load(VisionFixtures.photo("espresso")));
        double diff = maxAbsDiff(java, reference("espresso.bilinear"));
        System.out.printf("preprocess espresso (JPEG): max |java - torch| = %.3g%n", diff);
        assertTrue(diff <= 1e-4, "espresso: " + diff);
    }

    @Test
    void bicubicMatchesTorch() throws Exception {
        ImageTransforms bicubic = new ImageTransforms(256, 224, new float[] {0.5f, 0.5f, 0.5f},
                new float[] {0.5f, 0.5f, 0.5f}, ImageTransforms.Filter.BICUBIC);
        float[] java = bicubic.toChw(ImageLoader.load(VisionFixtures.photo("cat")));
        float[] head = Arrays.copyOf(java, 64 * 224); // red channel, first 64 rows
        double diff = maxAbsDiff(head, reference("cat.bicubic_head"));
        System.out.printf("preprocess cat bicubic: max |java - torch| = %.3g%n", diff);
        assertTrue(diff <= 1e-4, "bicubic: " + diff);
    }

    @Test
    void constantImageStaysConstantAndNormalised() {
        BufferedImage gray = new BufferedImage(300, 500, BufferedImage.TYPE_INT_RGB);
        for (int y = 0; y < 500; y++) {
            for (int x = 0; x < 300; x++) {
                gray.setRGB(x, y, 0xFF8000);
            }
        }
        float[] chw = transforms.toChw(gray);
        assertEquals(3 * 224 * 224, chw.length);
        assertEquals(1f, chw[0], 1e-6);                          // red 255 -> 1
        assertEquals(128 / 255f * 2 - 1, chw[224 * 224], 1e-6);  // green 128
        assertEquals(-1f, chw[2 * 224 * 224 + 5], 1e-6);          // blue 0 -> -1
    }

    @Test
    void batchStacksImages() throws Exception {
        BufferedImage cat = ImageLoader.load(VisionFixtures.photo("cat"));
        BufferedImage tripod = ImageLoader.load(VisionFixtures.photo("tripod"));
        try (NDManager manager = NDManager.newBaseManager()) {
            NDArray batch = transforms.batch(List.of(cat, tripod), manager);
            assertEquals(new Shape(2, 3, 224, 224), batch.getShape());
            assertArrayEquals(transforms.toChw(tripod), batch.get(1).toFloatArray());
        }
    }

    /** A gradient image so crops and flips are visible: red grows with x, green with y, blue is a checker. */
    private static BufferedImage gradient(int width, int height) {
        BufferedImage image = new BufferedImage(width, height, BufferedImage.TYPE_INT_RGB);
        for (int y = 0; y < height; y++) {
            for (int x = 0; x < width; x++) {
                image.setRGB(x, y, (x * 255 / (width - 1)) << 16 | (y * 255 / (height - 1)) << 8 | ((x / 8 + y / 8) % 2) * 255);
            }
        }
        return image;
    }

    @Test
    void clipPreprocessingUsesClipMeanStdAndBicubic() {
        ImageTransforms clip = ImageTransforms.clip(224);
        assertEquals(224, clip.crop());
        assertEquals(224, clip.resizeShorter());
        assertEquals(ImageTransforms.Filter.BICUBIC, clip.filter());
        BufferedImage white = new BufferedImage(300, 224, BufferedImage.TYPE_INT_RGB);
        for (int y = 0; y < 224; y++) for (int x = 0; x < 300; x++) white.setRGB(x, y, 0xFFFFFF);
        float[] chw = clip.toChw(white);
        for (int c = 0; c < 3; c++) {
            float expected = (1f - ImageTransforms.CLIP_MEAN[c]) / ImageTransforms.CLIP_STD[c];
            assertEquals(expected, chw[c * 224 * 224 + 1000], 1e-5f);
        }
    }

    @Test
    void augmentationIsSeededAndDeterministic() {
        ImageTransforms clip = ImageTransforms.clip(32);
        BufferedImage image = gradient(80, 60);
        ImageTransforms.Augmentation augmentation = ImageTransforms.Augmentation.blip2();
        float[] first = clip.toChwAugmented(image, augmentation, new java.util.Random(11));
        float[] again = clip.toChwAugmented(image, augmentation, new java.util.Random(11));
        assertArrayEquals(first, again);
        int distinct = 0;
        for (int seed = 0; seed < 8; seed++) {
            if (!Arrays.equals(first, clip.toChwAugmented(image, augmentation, new java.util.Random(100 + seed)))) distinct++;
        }
        assertEquals(8, distinct, "different seeds give different crops");
    }

    @Test
    void cropBoxesStayInsideTheImageWithinScaleAndRatio() {
        ImageTransforms.Augmentation augmentation = ImageTransforms.Augmentation.standard();
        java.util.Random random = new java.util.Random(5);
        int flips = 0;
        for (int i = 0; i < 2000; i++) {
            int[] box = augmentation.cropBox(200, 120, random);
            assertTrue(box[0] >= 0 && box[1] >= 0 && box[0] + box[2] <= 200 && box[1] + box[3] <= 120, Arrays.toString(box));
            double area = (double) box[2] * box[3] / (200 * 120);
            double ratio = (double) box[2] / box[3];
            // rounding to whole pixels moves area and ratio slightly outside the drawn range
            assertTrue(area > 0.07 && area <= 1.0, "area " + area);
            assertTrue(ratio > 0.7 && ratio < 1.42, "ratio " + ratio);
        }
        // a square image with scale and ratio pinned to 1: the whole image, so augmentation = resize (+ flip)
        ImageTransforms small = ImageTransforms.clip(16);
        BufferedImage image = gradient(48, 48);
        float[] plain = small.toChw(image);
        float[] kept = small.toChwAugmented(image, new ImageTransforms.Augmentation(1, 1, 1, 1, 0), random);
        float[] flipped = small.toChwAugmented(image, new ImageTransforms.Augmentation(1, 1, 1, 1, 1), random);
        assertArrayEquals(plain, kept);
        for (int c = 0; c < 3; c++) {
            for (int y = 0; y < 16; y++) {
                for (int x = 0; x < 16; x++) {
                    assertEquals(plain[(c * 16 + y) * 16 + x], flipped[(c * 16 + y) * 16 + 15 - x], 0f);
                }
            }
        }
        // flip probability 0.5 flips about half the time
        ImageTransforms.Augmentation half = new ImageTransforms.Augmentation(1, 1, 1, 1, 0.5);
        for (int i = 0; i < 400; i++) {
            if (!Arrays.equals(plain, small.toChwAugmented(image, half, random))) flips++;
        }
        assertTrue(flips > 160 && flips < 240, "flips " + flips);
    }
}
