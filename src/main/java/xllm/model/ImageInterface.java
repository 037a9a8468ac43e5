package xllm.model;

import ai.djl.ndarray.NDArray;
import xllm.tensor.TrainableParameter;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;

/**
 * An image interface of X-LLM (paper §3.1): a frozen image encoder followed by the trainable X2L part (Q-Former
 * and/or adapter) that turns an image into a few vectors in the LLM's embedding space. Split in three so training
 * can prepare pixels off the training thread and cache the frozen encoder's output.
 */
public interface ImageInterface {

    /** The prompt tag around this interface's vectors: {@code Image} → {@code <Image>…</Image>}, {@code Video}. */
    default String tag() {
        return "Image";
    }

    /** Pixels for the encoder, as a flat float array; CPU only and safe to call from a loader thread. */
    float[] preprocess(Path image) throws IOException;

    /** Shape of one preprocessed input, e.g. (3, 224, 224). */
    long[] inputShape();

    /** Shape of one image's frozen features, e.g. (49, 1280); what the feature cache stores. */
    long[] featureShape();

    /** Frozen encoder: (B, inputShape…) → (B, featureShape…). */
    NDArray encode(NDArray inputs);

    /**
     * What the trainable part reads: the frozen features (B, featureShape…) plus the encoder's fixed position
     * embeddings where its tokens carry none ({@code VisionEncoder#positions}); the features themselves otherwise.
     * Kept out of {@link #encode} so the feature cache stores the encoder's own output.
     */
    default NDArray withPositions(NDArray features) {
        return features;
    }

    /** Trainable part: (B, featureShape…) → (B, Q, D) LLM embeddings, positions added as {@link #withPositions}. */
    NDArray adapt(NDArray features);

    /** The parameters recipes may train, named as in checkpoints ({@code imageInterface.…}). */
    List<TrainableParameter> parameters();

    /** Frozen tensors (tests check they never change). */
    List<NDArray> frozenTensors();

    /** Identity of the frozen encoder for the feature cache. */
    String fingerprint();

    /** One line for checkpoints' config.json. */
    String describe();
}
