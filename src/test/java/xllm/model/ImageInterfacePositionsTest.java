package xllm.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import org.junit.jupiter.api.Test;
import xllm.vision.GridPositions;
import xllm.vision.ImageTransforms;
import xllm.vision.VisionEncoder;
import xllm.x2l.LinearAdapter;
import xllm.x2l.QFormer;
import xllm.x2l.QFormerConfig;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Why the CNN tokens get positions: a Q-Former's cross-attention over position-free tokens is permutation
 * invariant, so an image and its mirror (the same tokens, columns reversed) give the same queries and the LLM
 * cannot be told left from right. With {@code VisionEncoder#withPositions} they differ.
 */
class ImageInterfacePositionsTest {

    private static final int SIDE = 3, WIDTH = 16;

    /** A 3×3 feature grid of width 16 whose tokens carry no position (as EfficientNet's), with grid positions. */
    private record GridEncoder(float[] positions) implements VisionEncoder {
        public NDArray features(NDArray images) { throw new UnsupportedOperationException("features come from the test"); }
        public long[] inputShape() { return new long[] {3, 32, 32}; }
        public long[] featureShape() { return new long[] {SIDE * SIDE, WIDTH}; }
        public ImageTransforms transforms() { return ImageTransforms.efficientNetLite(); }
        public String identity() { return "grid-test"; }
        public void close() {}
    }

    private static float[] mirrored(float[] tokens) {
        float[] out = new float[tokens.length];
        for (int r = 0; r < SIDE; r++) {
            for (int c = 0; c < SIDE; c++) {
                System.arraycopy(tokens, (r * SIDE + c) * WIDTH, out, (r * SIDE + (SIDE - 1 - c)) * WIDTH, WIDTH);
            }
        }
        return out;
    }

    private static double largestDifference(NDArray a, NDArray b) {
        return a.sub(b).abs().max().getFloat();
    }

    @Test
    void aMirroredImageIsTellableOnlyWithPositions() {
        try (NDManager manager = NDManager.newBaseManager()) {
            QFormerConfig config = ImageInterface.qformerConfig("tiny").withEncoderHiddenSize(WIDTH);
            QFormer qformer = QFormer.initialise(config, 5, manager);
            float[] tokens = new float[SIDE * SIDE * WIDTH];
            Random random = new Random(3);
            for (int i = 0; i < tokens.length; i++) tokens[i] = random.nextFloat() * 6; // ReLU6-like activations
            NDArray image = manager.create(tokens, new Shape(1, SIDE * SIDE, WIDTH));
            NDArray mirror = manager.create(mirrored(tokens), new Shape(1, SIDE * SIDE, WIDTH));

            // without positions: the same queries either way (up to float rounding of the reordered sums)
            VisionSide blind = new VisionSide("grid", new GridEncoder(null), qformer);
            double rounding = largestDifference(blind.queries(image), blind.queries(mirror));
            assertTrue(rounding < 1e-6, "without positions the mirror is invisible: " + rounding);

            float[] positions = GridPositions.sinusoid(SIDE, SIDE, WIDTH);
            GridEncoder grid = new GridEncoder(positions);
            VisionSide seeing = new VisionSide("grid", grid, qformer);
            NDArray withPositions = grid.withPositions(image);
            assertEquals(tokens[WIDTH] + positions[WIDTH], withPositions.get(0, 1, 0).getFloat(), 1e-6);
            // a freshly initialised Q-Former attends almost uniformly (weights ~ N(0, 0.02)), and uniform attention
            // averages the centred positions away, so the effect starts small; training sharpens it
            double difference = largestDifference(seeing.queries(image), seeing.queries(mirror));
            assertTrue(difference > 100 * Math.max(rounding, 1e-8), "mirrored image gives different LLM tokens: "
                    + difference + " (rounding " + rounding + ")");
        }
    }
}
