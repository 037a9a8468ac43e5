package xllm.vision;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import xllm.tensor.Fingerprint;
import xllm.tensor.SafetensorsWriter;

import java.util.List;

/**
 * The tiny stand-in for a pretrained image encoder that test recipes use ({@code visionEncoder: random}): the image
 * is scaled to 8×8, cut into a 2×2 grid of 4×4 RGB patches, and each patch goes through a frozen random projection
 * (48 → 32, tanh) drawn from a fixed seed, so every machine builds the same encoder. It exists so the whole
 * training and inference path runs on 2 cores in seconds; its 4 tokens carry no position of their own.
 */
public final class PatchEncoder implements VisionEncoder {

    public static final int SIDE = 8;
    public static final int PATCH = 4;
    public static final int TOKENS = (SIDE / PATCH) * (SIDE / PATCH);
    public static final int PATCH_VALUES = PATCH * PATCH * 3;
    public static final int FEATURES = 32;
    /** The projection's seed: part of what "random" means, so a checkpoint's encoder can be rebuilt anywhere. */
    public static final int SEED = 20_240_601;

    private static final ImageTransforms TRANSFORMS = new ImageTransforms(SIDE, SIDE, new float[] {0, 0, 0},
            new float[] {1, 1, 1}, ImageTransforms.Filter.BILINEAR);

    private final NDManager weights;
    private final NDArray projection; // (48, 32), frozen

    public PatchEncoder(NDManager manager) {
        this.weights = manager.newSubManager();
        weights.getEngine().setRandomSeed(SEED);
        this.projection = weights.randomNormal(0, (float) (1 / Math.sqrt(PATCH_VALUES)), new Shape(PATCH_VALUES, FEATURES),
                DataType.FLOAT32);
    }

    /** (B, 3, 8, 8) → (B, 4, 32): patches in row-major order, each patch's values (y, x, rgb), projected, tanh. */
    @Override
    public NDArray features(NDArray images) {
        long batch = images.getShape().get(0);
        int grid = SIDE / PATCH;
        NDArray patches = images.reshape(batch, 3, grid, PATCH, grid, PATCH) // (B, c, py, y, px, x)
                .transpose(0, 2, 4, 3, 5, 1)                                  // (B, py, px, y, x, c)
                .reshape(batch, TOKENS, PATCH_VALUES);
        return patches.matMul(projection).tanh();
    }

    @Override
    public long[] inputShape() {
        return new long[] {3, SIDE, SIDE};
    }

    @Override
    public long[] featureShape() {
        return new long[] {TOKENS, FEATURES};
    }

    @Override
    public ImageTransforms transforms() {
        return TRANSFORMS;
    }

    /** The frozen projection, for tests that check it never changes. */
    public NDArray projection() {
        return projection;
    }

    @Override
    public String identity() {
        return "patch-8x8 random projection " + PATCH_VALUES + "->" + FEATURES + " tanh fingerprint="
                + Fingerprint.of("patch-8x8", List.of(SafetensorsWriter.fromNDArray("projection", projection)));
    }

    @Override
    public void close() {
        weights.close();
    }
}
