package xllm.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import xllm.tensor.TrainableParameter;
import xllm.x2l.IAdapter;
import xllm.x2l.QFormerConfig;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;

/**
 * The paper's image interface (§3.1, Fig. 1): frozen image encoder → Q-Former (learned queries cross-attending to the
 * image features) → I-Adapter. The encoder is chosen by configuration: EfficientNet-Lite0 (the pretrained encoder a
 * registry carries here; its 7×7 feature map gets fixed 2-D positions, without which cross-attention cannot tell
 * left from right) or a CLIP ViT (BLIP-2's kind). Parameters {@code imageInterface.qformer.<HF Blip2QFormerModel
 * name>}, {@code imageInterface.qformer.query_tokens}, {@code imageInterface.adapter.{weight,bias}}.
 */
public final class ImageInterface implements ModalityInterface {

    static final String PREFIX = Modality.IMAGE.parameterPrefix();

    private final VisionSide side;
    private final IAdapter adapter;

    private ImageInterface(VisionSide side, IAdapter adapter) {
        this.side = side;
        this.adapter = adapter;
    }

    /**
     * @param encoder  vision encoder name ({@link VisionSide#openEncoder})
     * @param qformer  Q-Former shape, or null for none (the tiny test encoder)
     * @param bertInit BERT checkpoint the Q-Former starts from, or null
     */
    public static ImageInterface create(String encoder, QFormerConfig qformer, Path bertInit, int llmWidth, long seed,
                                        NDManager manager) throws IOException {
        VisionSide side = VisionSide.create(encoder, qformer, bertInit, seed, manager);
        manager.getEngine().setRandomSeed((int) seed);
        return new ImageInterface(side, IAdapter.initialise(PREFIX + "adapter", side.outputWidth(), llmWidth, manager));
    }

    static ImageInterface create(InterfaceConfig.Image config, NDManager manager) throws IOException {
        return create(config.encoder().source(), config.qformer(), null, config.llmWidth(), 0, manager);
    }

    @Override
    public Modality modality() {
        return Modality.IMAGE;
    }

    @Override
    public Features prepare(Path image) throws IOException {
        return new Features(side.pixels(image), side.encoder().inputShape());
    }

    @Override
    public List<Features> encode(List<Features> prepared, NDManager scope) {
        try (NDManager local = scope.newSubManager()) {
            return Features.unstack(side.features(Features.stack(prepared, local)), side.encoder().featureShape());
        }
    }

    @Override
    public List<NDArray> adapt(List<Features> encoded, NDManager scope) {
        NDArray features = Features.stack(encoded, scope);                 // (B, N, C)
        return Features.rows(adapter.forward(side.queries(features)));     // (B, Q, H) → (B, Q, D)
    }

    /**
     * The encoder's features (B, N, C) with its fixed positions added, as the Q-Former reads them; for stage 1
     * ({@code convert-qformer}), which trains a Q-Former of its own on them.
     */
    public NDArray positioned(NDArray features) {
        return side.encoder().withPositions(features);
    }

    /** Q-Former sizes by recipe size: tiny for tests, demo = the shape of all-MiniLM-L6-v2, full = BERT-base (paper). */
    public static QFormerConfig qformerConfig(String size) {
        int width = xllm.vision.EfficientNetLite0.FEATURE_CHANNELS; // VisionSide sets the encoder's own width
        return switch (size) {
            case "tiny" -> new QFormerConfig(64, 2, 4, 128, 2, width, 1e-12, 8, "gelu");
            case "demo" -> new QFormerConfig(384, 6, 12, 1536, 2, width, 1e-12, 32, "gelu");
            case "full" -> new QFormerConfig(768, 12, 12, 3072, 2, width, 1e-12, 32, "gelu");
            default -> throw new IllegalArgumentException("unknown interface size '" + size + "'");
        };
    }

    @Override
    public List<TrainableParameter> parameters() {
        return side.parameters(PREFIX, adapter.parameters());
    }

    @Override
    public List<NDArray> frozenTensors() {
        return side.frozenTensors();
    }

    @Override
    public String fingerprint() {
        return side.fingerprint(side.encoder().featureShape());
    }

    @Override
    public InterfaceConfig.Image config() {
        return new InterfaceConfig.Image(side.record(), side.qformerConfig(), adapter.outputWidth());
    }

    @Override
    public void close() {
        side.close();
    }
}
