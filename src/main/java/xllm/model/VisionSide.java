package xllm.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import xllm.hub.ModelStore;
import xllm.tensor.Fingerprint;
import xllm.tensor.TrainableParameter;
import xllm.vision.ClipVisionEncoder;
import xllm.vision.EfficientNetLite0;
import xllm.vision.ImageLoader;
import xllm.vision.PatchEncoder;
import xllm.vision.VisionEncoder;
import xllm.x2l.QFormer;
import xllm.x2l.QFormerConfig;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * What the image and video interfaces share: the frozen vision encoder and the Q-Former that reads its features with
 * learned queries (BLIP-2), per image or per frame. Without a Q-Former (the tiny test encoder) the features pass
 * through unchanged.
 */
final class VisionSide implements AutoCloseable {

    private final String source;
    private final VisionEncoder encoder;
    private final QFormer qformer; // null: the adapter reads the encoder's features

    VisionSide(String source, VisionEncoder encoder, QFormer qformer) {
        if (qformer != null && qformer.config().encoderHiddenSize() != encoder.featureShape()[1]) {
            throw new IllegalArgumentException("Q-Former encoder_hidden_size " + qformer.config().encoderHiddenSize()
                    + " does not match the vision encoder's feature width " + encoder.featureShape()[1]);
        }
        this.source = source;
        this.encoder = encoder;
        this.qformer = qformer;
    }

    /**
     * The frozen encoder a name selects: {@code random} is {@link PatchEncoder}; otherwise a model-store name or
     * path, a directory with a CLIP vision config.json (ViT, penultimate layer as BLIP-2) or EfficientNet-Lite0's
     * {@code .pth}.
     */
    static VisionEncoder openEncoder(String source, NDManager manager) throws IOException {
        if ("random".equals(source)) return new PatchEncoder(manager);
        Path path = ModelStore.defaultStore().resolve(source);
        if (Files.isDirectory(path) && Files.exists(path.resolve("config.json"))) {
            return ClipVisionEncoder.load(path, ClipVisionEncoder.FeatureLayer.PENULTIMATE, manager);
        }
        return EfficientNetLite0.load(path, manager);
    }

    /**
     * @param qformer  the Q-Former shape (its encoder width is set to the encoder's), or null for none
     * @param bertInit BERT checkpoint the Q-Former starts from (BLIP-2), or null for BERT's random initialisation
     */
    static VisionSide create(String source, QFormerConfig qformer, Path bertInit, long seed, NDManager manager)
            throws IOException {
        VisionEncoder encoder = openEncoder(source, manager);
        try {
            if (qformer == null) return new VisionSide(source, encoder, null);
            QFormerConfig shaped = qformer.withEncoderHiddenSize(Math.toIntExact(encoder.featureShape()[1]));
            QFormer q = bertInit == null ? QFormer.initialise(shaped, seed, manager)
                    : QFormer.initialiseFromBert(bertInit, shaped, seed, manager);
            return new VisionSide(source, encoder, q);
        } catch (IOException | RuntimeException e) {
            encoder.close();
            throw e;
        }
    }

    /** Width of what the adapter reads: the Q-Former's hidden size, or the encoder's features. */
    int outputWidth() {
        return qformer != null ? qformer.config().hiddenSize() : Math.toIntExact(encoder.featureShape()[1]);
    }

    VisionEncoder encoder() {
        return encoder;
    }

    QFormer qformer() {
        return qformer;
    }

    float[] pixels(Path image) throws IOException {
        return encoder.transforms().toChw(ImageLoader.load(image));
    }

    float[] pixels(java.awt.image.BufferedImage image) {
        return encoder.transforms().toChw(image);
    }

    /** (K, 3, H, W) → (K, N, C), frozen. */
    NDArray features(NDArray images) {
        return encoder.features(images);
    }

    /** (K, N, C) features → (K, Q, H) query outputs (positions added first), or the features without a Q-Former. */
    NDArray queries(NDArray features) {
        NDArray positioned = encoder.withPositions(features);
        return qformer == null ? positioned : qformer.forward(positioned, null);
    }

    /** The interface's parameters: the Q-Former's under {@code <prefix>qformer.}, then its adapter's. */
    List<TrainableParameter> parameters(String prefix, List<TrainableParameter> adapter) {
        List<TrainableParameter> all = qformer == null ? new ArrayList<>() : new ArrayList<>(qformer.parameters(prefix + "qformer."));
        all.addAll(adapter);
        return all;
    }

    List<NDArray> frozenTensors() {
        return encoder instanceof PatchEncoder patch ? List.of(patch.projection()) : List.of();
    }

    /** The feature cache's identity of the encoder for inputs of {@code featureShape}. */
    String fingerprint(long[] featureShape) {
        return Fingerprint.of(encoder.identity() + " features " + Arrays.toString(featureShape), List.of());
    }

    InterfaceConfig.VisionEncoderRecord record() {
        return new InterfaceConfig.VisionEncoderRecord(source, encoder.identity(),
                Arrays.stream(encoder.featureShape()).boxed().toList(), encoder.positions() != null);
    }

    QFormerConfig qformerConfig() {
        return qformer == null ? null : qformer.config();
    }

    @Override
    public void close() {
        encoder.close();
    }
}
