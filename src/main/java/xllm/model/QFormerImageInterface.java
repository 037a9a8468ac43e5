package xllm.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import xllm.train.FeatureCache;
import xllm.train.TrainableParameter;
import xllm.vision.EfficientNetLite0;
import xllm.vision.ImageLoader;
import xllm.vision.ImageTransforms;
import xllm.x2l.LinearAdapter;
import xllm.x2l.QFormer;
import xllm.x2l.QFormerConfig;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * The paper's image interface (§3.1, Fig. 1): frozen image encoder → Q-Former (learned queries cross-attending to
 * the image features) → I-Adapter (linear to the LLM width). Here the frozen encoder is EfficientNet-Lite0, the
 * pretrained vision model we can get offline (DESIGN.md §5); its 7×7×1280 head feature map is the Q-Former's
 * cross-attention memory. Parameter names: {@code imageInterface.qformer.<HF Blip2QFormerModel name>},
 * {@code imageInterface.qformer.query_tokens}, {@code imageInterface.adapter.{weight,bias}}.
 */
public final class QFormerImageInterface implements ImageInterface {

    private final EfficientNetLite0 encoder;
    private final String encoderIdentity;
    private final QFormer qformer;
    private final LinearAdapter adapter; // null in stage 1 (convert-qformer): no LLM to adapt to yet
    private final ImageTransforms transforms = ImageTransforms.efficientNetLite();

    /** @param adapter the I-Adapter, or null for stage 1, where only the encoder side and the Q-Former are used */
    public QFormerImageInterface(EfficientNetLite0 encoder, String encoderIdentity, QFormer qformer, LinearAdapter adapter) {
        this.encoder = encoder;
        this.encoderIdentity = encoderIdentity;
        this.qformer = qformer;
        this.adapter = adapter;
    }

    /** Q-Former sizes by recipe size: tiny for tests, demo = the shape of all-MiniLM-L6-v2 (so it can start from it), full = paper (BERT-base). */
    public static QFormerConfig qformerConfig(String size) {
        return switch (size) {
            case "tiny" -> new QFormerConfig(64, 2, 4, 128, 2, EfficientNetLite0.FEATURE_CHANNELS, 1e-12, 8, "gelu");
            case "demo" -> new QFormerConfig(384, 6, 12, 1536, 2, EfficientNetLite0.FEATURE_CHANNELS, 1e-12, 32, "gelu");
            case "full" -> new QFormerConfig(768, 12, 12, 3072, 2, EfficientNetLite0.FEATURE_CHANNELS, 1e-12, 32, "gelu");
            default -> throw new IllegalArgumentException("unknown interface size '" + size + "'");
        };
    }

    /** A fresh interface: Q-Former initialised BERT-style from {@code seed}, adapter random. */
    public static QFormerImageInterface create(Path encoderWeights, String size, int llmWidth, long seed, NDManager manager)
            throws IOException {
        return create(encoderWeights, size, null, llmWidth, seed, manager);
    }

    /**
     * @param bertInit a BERT checkpoint the Q-Former starts from ({@link QFormer#initialiseFromBert}, as BLIP-2), or
     *                 null for the random BERT initialisation; the adapter is random either way
     */
    public static QFormerImageInterface create(Path encoderWeights, String size, Path bertInit, int llmWidth, long seed,
                                               NDManager manager) throws IOException {
        EfficientNetLite0 encoder = EfficientNetLite0.load(encoderWeights, manager);
        QFormerConfig config = qformerConfig(size);
        QFormer qformer = bertInit == null ? QFormer.initialise(config, seed, manager)
                : QFormer.initialiseFromBert(bertInit, config, seed, manager);
        manager.getEngine().setRandomSeed((int) seed);
        LinearAdapter adapter = LinearAdapter.initialise("imageInterface.adapter", config.hiddenSize(), llmWidth, manager,
                DataType.FLOAT32);
        String identity = "efficientnet-lite0 sha256=" + xllm.train.CheckpointStore.sha256(encoderWeights);
        return new QFormerImageInterface(encoder, identity, qformer, adapter);
    }

    /**
     * Stage 1 ({@code convert-qformer}): encoder → the given Q-Former, no adapter ({@link #adapt} is unavailable and
     * {@link #parameters} lists the Q-Former only).
     */
    public static QFormerImageInterface withoutAdapter(Path encoderWeights, QFormer qformer, NDManager manager)
            throws IOException {
        EfficientNetLite0 encoder = EfficientNetLite0.load(encoderWeights, manager);
        String identity = "efficientnet-lite0 sha256=" + xllm.train.CheckpointStore.sha256(encoderWeights);
        return new QFormerImageInterface(encoder, identity, qformer, null);
    }

    public QFormer qformer() {
        return qformer;
    }

    @Override
    public float[] preprocess(Path image) throws IOException {
        return transforms.toChw(ImageLoader.load(image));
    }

    @Override
    public long[] inputShape() {
        return new long[] {3, transforms.crop(), transforms.crop()};
    }

    @Override
    public long[] featureShape() {
        long side = transforms.crop() / 32;
        return new long[] {side * side, EfficientNetLite0.FEATURE_CHANNELS};
    }

    @Override
    public NDArray encode(NDArray inputs) {
        return encoder.features(inputs); // (B, 49, 1280)
    }

    @Override
    public NDArray adapt(NDArray features) {
        if (adapter == null) throw new IllegalStateException("this image interface has no adapter (built for convert-qformer)");
        return adapter.forward(qformer.forward(features, null)); // (B, Q, H) → (B, Q, D)
    }

    @Override
    public List<TrainableParameter> parameters() {
        List<TrainableParameter> all = new ArrayList<>(qformer.parameters("imageInterface.qformer."));
        if (adapter != null) all.addAll(adapter.parameters());
        return all;
    }

    @Override
    public List<NDArray> frozenTensors() {
        return List.of();
    }

    @Override
    public String fingerprint() {
        return FeatureCache.fingerprint(encoderIdentity + " features " + java.util.Arrays.toString(featureShape()), List.of());
    }

    @Override
    public String describe() {
        return encoderIdentity + " → Q-Former " + qformer.config() + (adapter == null ? "" : " → linear adapter");
    }
}
