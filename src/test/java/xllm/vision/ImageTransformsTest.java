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
}
