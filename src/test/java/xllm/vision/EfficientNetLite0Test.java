package xllm.vision;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import xllm.RealWeights;

import java.awt.image.BufferedImage;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static xllm.vision.VisionFixtures.argmax;
import static xllm.vision.VisionFixtures.maxAbsDiff;
import static xllm.vision.VisionFixtures.reference;

/**
 * The real EfficientNet-Lite0 checkpoint against efficientnet-lite-pytorch 0.1.0 (make_efficientnet_fixtures.py):
 * logits and a feature-map slice from the same preprocessed tensor, top-1 labels end to end, batch = single.
 */
class EfficientNetLite0Test {

    /** ImageNet classes that count as right for each photo. */
    private static final Map<String, Set<Integer>> ACCEPTED = Map.of(
            "cat", Set.of(281, 282, 283, 284, 285),   // tabby, tiger cat, Persian, Siamese, Egyptian cat
            "espresso", Set.of(967),                  // espresso
            "tripod", Set.of(872));                   // tripod

    private static NDManager manager;
    private static EfficientNetLite0 model;

    @BeforeAll
    static void load() throws Exception {
        manager = NDManager.newBaseManager();
        model = EfficientNetLite0.load(RealWeights.require("efficientnet-lite0"), manager);
    }

    @AfterAll
    static void close() {
        model.close();
        manager.close();
    }

    @Test
    void logitsMatchPyTorchOnReferenceInput() {
        for (String key : VisionFixtures.PHOTOS) {
            try (NDManager scope = manager.newSubManager()) {
                NDArray input = scope.create(reference(key + ".bilinear"), new Shape(1, 3, 224, 224));
                float[] logits = model.logits(input).toFloatArray();
                double diff = maxAbsDiff(logits, reference(key + ".logits"));
                System.out.printf("logits %s: max |java - torch| = %.3g%n", key, diff);
                assertTrue(diff <= 1e-3, key + ": " + diff);
                float[] tokens = model.features(input).toFloatArray(); // (1, 49, 1280)
                float[] head = new float[8 * 64];
                for (int t = 0; t < 8; t++) {
                    System.arraycopy(tokens, t * 1280, head, t * 64, 64);
                }
                double featureDiff = maxAbsDiff(head, reference(key + ".features_head"));
                System.out.printf("features %s: max |java - torch| = %.3g%n", key, featureDiff);
                assertTrue(featureDiff <= 1e-3, key + ": " + featureDiff);
            }
        }
    }

    @Test
    void topOneLabelsEndToEnd() throws Exception {
        JsonNode expected = VisionFixtures.expected().get("photos");
        ImageTransforms transforms = ImageTransforms.efficientNetLite();
        List<BufferedImage> images = new ArrayList<>();
        for (String key : VisionFixtures.PHOTOS) {
            images.add(ImageLoader.load(VisionFixtures.photo(key)));
        }
        try (NDManager scope = manager.newSubManager()) {
            NDArray logits = model.logits(transforms.batch(images, scope)); // (3, 1000)
            for (int i = 0; i < images.size(); i++) {
                String key = VisionFixtures.PHOTOS[i];
                int top1 = argmax(logits.get(i).toFloatArray());
                System.out.printf("top-1 %s: %d (reference %d)%n", key, top1,
                        expected.get(key).get("top5").get(0).asInt());
                assertTrue(ACCEPTED.get(key).contains(top1), key + " predicted " + top1);
                assertEquals(expected.get(key).get("top5").get(0).asInt(), top1, key);
            }
        }
    }

    @Test
    void featuresAreTokensAndBatchEqualsSingles() throws Exception {
        ImageTransforms transforms = ImageTransforms.efficientNetLite();
        List<BufferedImage> images = new ArrayList<>();
        for (String key : VisionFixtures.PHOTOS) {
            images.add(ImageLoader.load(VisionFixtures.photo(key)));
        }
        try (NDManager scope = manager.newSubManager()) {
            NDArray batch = transforms.batch(images, scope);
            NDArray features = model.features(batch);
            assertEquals(new Shape(3, 49, EfficientNetLite0.FEATURE_CHANNELS), features.getShape());
            assertEquals(scope, features.getManager());
            for (int i = 0; i < images.size(); i++) {
                NDArray single = model.features(transforms.batch(List.of(images.get(i)), scope));
                double diff = maxAbsDiff(single.toFloatArray(), features.get(i).toFloatArray());
                assertTrue(diff <= 1e-4, "image " + i + ": " + diff);
                assertTrue(single.toFloatArray()[0] >= 0f, "ReLU6 output");
            }
        }
    }

    @Test
    void asVisionEncoderItDescribesItsShapesAndWeights() throws Exception {
        VisionEncoder encoder = model;
        org.junit.jupiter.api.Assertions.assertArrayEquals(new long[] {3, 224, 224}, encoder.inputShape());
        org.junit.jupiter.api.Assertions.assertArrayEquals(new long[] {49, 1280}, encoder.featureShape());
        // the same string the image interface's feature cache keyed on before the interface existed
        String expected = "efficientnet-lite0 sha256="
                + xllm.tensor.FileDigest.sha256(RealWeights.require("efficientnet-lite0"));
        assertEquals(expected, encoder.identity());
        assertEquals(ImageTransforms.efficientNetLite().crop(), encoder.transforms().crop());
    }
}
