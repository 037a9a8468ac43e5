package xllm.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import xllm.tensor.TrainableParameter;
import xllm.vision.ImageLoader;
import xllm.x2l.LinearAdapter;

import java.awt.Graphics2D;
import java.awt.RenderingHints;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;

/**
 * The tiny image interface of the test recipes ({@code model.size: tiny}, {@code visionEncoder: random}): the image
 * is scaled to 8×8, cut into a 2×2 grid of 4×4 RGB patches, each patch goes through a frozen random projection
 * (seeded, 48 → 32, tanh) standing in for a pretrained encoder, and the trainable I-Adapter maps the 4 patch tokens
 * to the LLM width. Parameter names: {@code imageInterface.adapter.{weight,bias}}. It exists so the training engine
 * is exercised end to end on 2 cores in seconds; the full interface (vision encoder + Q-Former) replaces it.
 */
public final class PatchImageInterface implements ImageInterface {

    public static final int SIDE = 8;
    public static final int PATCH = 4;
    public static final int TOKENS = (SIDE / PATCH) * (SIDE / PATCH);
    public static final int PATCH_VALUES = PATCH * PATCH * 3;
    public static final int FEATURES = 32;

    private final NDArray projection; // (48, 32), frozen
    private final LinearAdapter adapter;

    public PatchImageInterface(int llmWidth, long seed, NDManager manager) {
        manager.getEngine().setRandomSeed((int) seed);
        this.projection = manager.randomNormal(0, (float) (1 / Math.sqrt(PATCH_VALUES)), new Shape(PATCH_VALUES, FEATURES),
                DataType.FLOAT32);
        this.adapter = LinearAdapter.initialise("imageInterface.adapter", FEATURES, llmWidth, manager, DataType.FLOAT32);
    }

    @Override
    public float[] preprocess(Path image) throws IOException {
        return patches(image);
    }

    @Override
    public long[] inputShape() {
        return new long[] {TOKENS * PATCH_VALUES};
    }

    @Override
    public long[] featureShape() {
        return new long[] {TOKENS, FEATURES};
    }

    @Override
    public String describe() {
        return "patch-8x8 (frozen random projection " + PATCH_VALUES + "->" + FEATURES + ", tanh) + linear adapter";
    }

    @Override
    public List<NDArray> frozenTensors() {
        return List.of(projection);
    }

    @Override
    public List<TrainableParameter> parameters() {
        return adapter.parameters();
    }

    /** Patch values (TOKENS × 48, row-major) of an image file in [0, 1], read by {@link ImageLoader}. */
    public static float[] patches(Path file) throws IOException {
        // the guarded loader: pixel limit from the header before decoding, truncated data refused (ImageIO.read
        // painted a truncated JPEG's missing rows grey and decoded a 25000 x 25000 PNG into 3.1 GB)
        BufferedImage image = ImageLoader.load(file);
        BufferedImage small = new BufferedImage(SIDE, SIDE, BufferedImage.TYPE_INT_RGB);
        Graphics2D g = small.createGraphics();
        g.setRenderingHint(RenderingHints.KEY_INTERPOLATION, RenderingHints.VALUE_INTERPOLATION_BILINEAR);
        g.drawImage(image, 0, 0, SIDE, SIDE, null);
        g.dispose();
        float[] out = new float[TOKENS * PATCH_VALUES];
        int i = 0;
        for (int py = 0; py < SIDE; py += PATCH) {
            for (int px = 0; px < SIDE; px += PATCH) {
                for (int y = py; y < py + PATCH; y++) {
                    for (int x = px; x < px + PATCH; x++) {
                        int rgb = small.getRGB(x, y);
                        out[i++] = ((rgb >> 16) & 0xff) / 255f;
                        out[i++] = ((rgb >> 8) & 0xff) / 255f;
                        out[i++] = (rgb & 0xff) / 255f;
                    }
                }
            }
        }
        return out;
    }

    /** The frozen encoder: (B, TOKENS·48) patch values → (B, TOKENS, 32) features (what the feature cache stores). */
    @Override
    public NDArray encode(NDArray patchValues) {
        long batch = patchValues.getShape().get(0);
        return patchValues.reshape(batch, TOKENS, PATCH_VALUES).matMul(projection).tanh();
    }

    /** The trainable adapter: (B, TOKENS, 32) features → (B, TOKENS, D) LLM embeddings. */
    @Override
    public NDArray adapt(NDArray features) {
        return adapter.forward(features);
    }

    /** Identity of the frozen encoder for the feature cache: its description and projection weights. */
    @Override
    public String fingerprint() {
        return xllm.tensor.Fingerprint.of("patch-8x8 " + PATCH + "px tanh(x @ P) " + PATCH_VALUES + "->" + FEATURES,
                List.of(xllm.tensor.SafetensorsWriter.fromNDArray("projection", projection)));
    }
}
