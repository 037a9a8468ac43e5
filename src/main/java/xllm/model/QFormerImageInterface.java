package xllm.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import xllm.data.FeatureCache;
import xllm.tensor.TrainableParameter;
import xllm.vision.EfficientNetLite0;
import xllm.vision.ImageLoader;
import xllm.vision.VideoReader;
import xllm.vision.VisionEncoder;
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
 * {@code imageInterface.qformer.query_tokens}, {@code imageInterface.adapter.{weight,bias}}. The CNN's feature
 * tokens carry no position, so the encoder's fixed 2-D sinusoids are added before the Q-Former
 * ({@link #withPositions}): without them cross-attention cannot tell left from right, nor, across video frames,
 * which way something moved.
 *
 * <p>The same class is the video interface (paper §3.1, DESIGN.md §3 "Video"): with {@code frames} = T > 0 a
 * sample is a video file, T frames are sampled uniformly ({@link VideoReader}), each frame goes through the encoder
 * and the Q-Former on its own, and the T×Q query outputs are concatenated in time order before the V-adapter
 * (T×32 LLM tokens). Its parameters are named {@code videoInterface.*}, so a stage-2 video recipe starts from the
 * image interface with {@code initRename: {"imageInterface.": "videoInterface."}}.
 */
public final class QFormerImageInterface implements ImageInterface {

    private final VisionEncoder encoder;
    private final QFormer qformer;
    private final LinearAdapter adapter; // null in stage 1 (convert-qformer): no LLM to adapt to yet
    private final String prefix;   // "imageInterface" or "videoInterface"
    private final int frames;      // 0: one still image per sample; T > 0: T frames of a video
    private final float[] positions; // (N, D) fixed positions added to every image's / frame's features, or null

    /** The image interface; {@code qformer}'s encoder_hidden_size must be the encoder's feature width. */
    public QFormerImageInterface(VisionEncoder encoder, QFormer qformer, LinearAdapter adapter) {
        this(encoder, qformer, adapter, 0);
    }

    /**
     * {@code frames} = 0: the image interface; T > 0: the video interface sampling T frames per video.
     * {@code adapter} null: stage 1, where only the encoder side and the Q-Former are used.
     */
    public QFormerImageInterface(VisionEncoder encoder, QFormer qformer, LinearAdapter adapter, int frames) {
        if (frames < 0) throw new IllegalArgumentException("frames must be >= 0 (0 = still images), got " + frames);
        if (qformer.config().encoderHiddenSize() != encoder.featureShape()[1]) {
            throw new IllegalArgumentException("Q-Former encoder_hidden_size " + qformer.config().encoderHiddenSize()
                    + " does not match the vision encoder's feature width " + encoder.featureShape()[1]);
        }
        this.encoder = encoder;
        this.qformer = qformer;
        this.adapter = adapter;
        this.prefix = frames == 0 ? "imageInterface" : "videoInterface";
        this.frames = frames;
        this.positions = encoder.positions();
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

    /** A fresh image interface: Q-Former initialised BERT-style from {@code seed}, adapter random. */
    public static QFormerImageInterface create(Path encoderWeights, String size, int llmWidth, long seed, NDManager manager)
            throws IOException {
        return create(encoderWeights, size, null, llmWidth, seed, 0, manager);
    }

    /**
     * @param bertInit a BERT checkpoint the Q-Former starts from ({@link QFormer#initialiseFromBert}, as BLIP-2), or
     *                 null for the random BERT initialisation; the adapter is random either way
     * @param frames   0: the image interface; T > 0: the video interface sampling T frames per video
     */
    public static QFormerImageInterface create(Path encoderWeights, String size, Path bertInit, int llmWidth, long seed,
                                               int frames, NDManager manager) throws IOException {
        EfficientNetLite0 encoder = EfficientNetLite0.load(encoderWeights, manager);
        QFormerConfig config = qformerConfig(size);
        QFormer qformer = bertInit == null ? QFormer.initialise(config, seed, manager)
                : QFormer.initialiseFromBert(bertInit, config, seed, manager);
        manager.getEngine().setRandomSeed((int) seed);
        LinearAdapter adapter = LinearAdapter.initialise((frames == 0 ? "imageInterface" : "videoInterface") + ".adapter",
                config.hiddenSize(), llmWidth, manager, DataType.FLOAT32);
        return new QFormerImageInterface(encoder, qformer, adapter, frames);
    }

    /**
     * Stage 1 ({@code convert-qformer}): encoder → the given Q-Former, no adapter ({@link #adapt} is unavailable and
     * {@link #parameters} lists the Q-Former only).
     */
    public static QFormerImageInterface withoutAdapter(Path encoderWeights, QFormer qformer, NDManager manager)
            throws IOException {
        return new QFormerImageInterface(EfficientNetLite0.load(encoderWeights, manager), qformer, null, 0);
    }

    public QFormer qformer() {
        return qformer;
    }

    @Override
    public float[] preprocess(Path media) throws IOException {
        if (frames == 0) return encoder.transforms().toChw(ImageLoader.load(media));
        List<java.awt.image.BufferedImage> sampled = VideoReader.read(media, frames).frames();
        int per = (int) (encoder.inputShape()[0] * encoder.inputShape()[1] * encoder.inputShape()[2]);
        float[] out = new float[frames * per];
        for (int t = 0; t < frames; t++) System.arraycopy(encoder.transforms().toChw(sampled.get(t)), 0, out, t * per, per);
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
        return frames == 0 ? encoder.inputShape() : prepend(frames, encoder.inputShape());
    }

    @Override
    public long[] featureShape() {
        return frames == 0 ? encoder.featureShape() : prepend(frames, encoder.featureShape());
    }

    private static long[] prepend(long first, long[] rest) {
        long[] out = new long[rest.length + 1];
        out[0] = first;
        System.arraycopy(rest, 0, out, 1, rest.length);
        return out;
    }

    @Override
    public NDArray encode(NDArray inputs) {
        if (frames == 0) return encoder.features(inputs); // (B, N, D), (B, 49, 1280) for EfficientNet-Lite0
        long batch = inputs.getShape().get(0);
        long[] image = encoder.inputShape();
        NDArray perFrame = encoder.features(inputs.reshape(batch * frames, image[0], image[1], image[2]));
        return perFrame.reshape(batch, frames, perFrame.getShape().get(1), perFrame.getShape().get(2)); // (B, T, N, D)
    }

    @Override
    public NDArray withPositions(NDArray features) {
        if (positions == null) return features;
        long[] shape = encoder.featureShape();
        return features.add(features.getManager().create(positions, new Shape(shape))); // (N, D) broadcast over B (and T)
    }

    @Override
    public NDArray adapt(NDArray features) {
        if (adapter == null) throw new IllegalStateException("this image interface has no adapter (built for convert-qformer)");
        features = withPositions(features);
        if (frames == 0) return adapter.forward(qformer.forward(features, null)); // (B, Q, H) → (B, Q, D)
        long batch = features.getShape().get(0);
        NDArray queries = qformer.forward(features.reshape(batch * frames, features.getShape().get(2),
                features.getShape().get(3)), null);                                  // (B·T, Q, H), frame by frame
        NDArray inTimeOrder = queries.reshape(batch, frames * queries.getShape().get(1), queries.getShape().get(2));
        return adapter.forward(inTimeOrder);                                          // (B, T·Q, D)
    }

    @Override
    public List<TrainableParameter> parameters() {
        List<TrainableParameter> all = new ArrayList<>(qformer.parameters(prefix + ".qformer."));
        if (adapter != null) all.addAll(adapter.parameters());
        return all;
    }

    @Override
    public List<NDArray> frozenTensors() {
        return List.of();
    }

    @Override
    public String fingerprint() {
        return xllm.tensor.Fingerprint.of(encoder.identity() + " features " + java.util.Arrays.toString(featureShape()), List.of());
    }

    @Override
    public String describe() {
        return encoder.identity() + (frames == 0 ? "" : " on " + frames + " uniformly sampled video frames")
                + (positions == null ? "" : " + 2-D sinusoidal positions")
                + " → Q-Former " + qformer.config() + (adapter == null ? "" : " → linear adapter");
    }
}
