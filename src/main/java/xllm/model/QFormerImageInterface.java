package xllm.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import xllm.train.FeatureCache;
import xllm.train.TrainableParameter;
import xllm.vision.EfficientNetLite0;
import xllm.vision.ImageLoader;
import xllm.vision.ImageTransforms;
import xllm.vision.VideoReader;
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
 *
 * <p>The same class is the video interface (paper §3.1, DESIGN.md §3 "Video"): with {@code frames} = T > 0 a
 * sample is a video file, T frames are sampled uniformly ({@link VideoReader}), each frame goes through the encoder
 * and the Q-Former on its own, and the T×Q query outputs are concatenated in time order before the V-adapter
 * (T×32 LLM tokens). Its parameters are named {@code videoInterface.*}, so a stage-2 video recipe starts from the
 * image interface with {@code initRename: {"imageInterface.": "videoInterface."}}.
 */
public final class QFormerImageInterface implements ImageInterface {

    private final EfficientNetLite0 encoder;
    private final String encoderIdentity;
    private final QFormer qformer;
    private final LinearAdapter adapter;
    private final ImageTransforms transforms = ImageTransforms.efficientNetLite();
    private final String prefix;   // "imageInterface" or "videoInterface"
    private final int frames;      // 0: one still image per sample; T > 0: T frames of a video

    public QFormerImageInterface(EfficientNetLite0 encoder, String encoderIdentity, QFormer qformer, LinearAdapter adapter) {
        this(encoder, encoderIdentity, qformer, adapter, "imageInterface", 0);
    }

    private QFormerImageInterface(EfficientNetLite0 encoder, String encoderIdentity, QFormer qformer, LinearAdapter adapter,
                                  String prefix, int frames) {
        this.encoder = encoder;
        this.encoderIdentity = encoderIdentity;
        this.qformer = qformer;
        this.adapter = adapter;
        this.prefix = prefix;
        this.frames = frames;
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

    public static QFormerImageInterface create(Path encoderWeights, String size, int llmWidth, long seed, NDManager manager)
            throws IOException {
        return create(encoderWeights, size, llmWidth, seed, 0, manager);
    }

    /** {@code frames} = 0: the image interface; T > 0: the video interface sampling T frames per video. */
    public static QFormerImageInterface create(Path encoderWeights, String size, int llmWidth, long seed, int frames,
                                               NDManager manager) throws IOException {
        if (frames < 0) throw new IllegalArgumentException("frames must be >= 0 (0 = still images), got " + frames);
        String prefix = frames == 0 ? "imageInterface" : "videoInterface";
        EfficientNetLite0 encoder = EfficientNetLite0.load(encoderWeights, manager);
        QFormerConfig config = qformerConfig(size);
        QFormer qformer = QFormer.initialise(config, seed, manager);
        manager.getEngine().setRandomSeed((int) seed);
        LinearAdapter adapter = LinearAdapter.initialise(prefix + ".adapter", config.hiddenSize(), llmWidth, manager,
                DataType.FLOAT32);
        String identity = "efficientnet-lite0 sha256=" + xllm.train.CheckpointStore.sha256(encoderWeights);
        return new QFormerImageInterface(encoder, identity, qformer, adapter, prefix, frames);
    }

    @Override
    public float[] preprocess(Path media) throws IOException {
        if (frames == 0) return transforms.toChw(ImageLoader.load(media));
        List<java.awt.image.BufferedImage> sampled = VideoReader.read(media, frames).frames();
        int per = 3 * transforms.crop() * transforms.crop();
        float[] out = new float[frames * per];
        for (int t = 0; t < frames; t++) System.arraycopy(transforms.toChw(sampled.get(t)), 0, out, t * per, per);
        return out;
    }

    /** Frames per video sample (0 for the image interface). */
    public int frames() {
        return frames;
    }

    @Override
    public String tag() {
        return frames == 0 ? "Image" : "Video";
    }

    @Override
    public long[] inputShape() {
        long[] image = {3, transforms.crop(), transforms.crop()};
        return frames == 0 ? image : new long[] {frames, 3, transforms.crop(), transforms.crop()};
    }

    @Override
    public long[] featureShape() {
        long side = transforms.crop() / 32;
        long[] image = {side * side, EfficientNetLite0.FEATURE_CHANNELS};
        return frames == 0 ? image : new long[] {frames, side * side, EfficientNetLite0.FEATURE_CHANNELS};
    }

    @Override
    public NDArray encode(NDArray inputs) {
        if (frames == 0) return encoder.features(inputs); // (B, 49, 1280)
        long batch = inputs.getShape().get(0);
        NDArray perFrame = encoder.features(inputs.reshape(batch * frames, 3, transforms.crop(), transforms.crop()));
        return perFrame.reshape(batch, frames, perFrame.getShape().get(1), perFrame.getShape().get(2)); // (B, T, 49, 1280)
    }

    @Override
    public NDArray adapt(NDArray features) {
        if (frames == 0) return adapter.forward(qformer.forward(features, null)); // (B, Q, H) → (B, Q, D)
        long batch = features.getShape().get(0);
        NDArray queries = qformer.forward(features.reshape(batch * frames, features.getShape().get(2),
                features.getShape().get(3)), null);                                  // (B·T, Q, H), frames one by one
        NDArray inTimeOrder = queries.reshape(batch, frames * queries.getShape().get(1), queries.getShape().get(2));
        return adapter.forward(inTimeOrder);                                          // (B, T·Q, D)
    }

    @Override
    public List<TrainableParameter> parameters() {
        List<TrainableParameter> all = new ArrayList<>(qformer.parameters(prefix + ".qformer."));
        all.addAll(adapter.parameters());
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
        return encoderIdentity + (frames == 0 ? "" : " on " + frames + " uniformly sampled video frames")
                + " → Q-Former " + qformer.config() + " → linear adapter";
    }
}
