package xllm.vision;

import ai.djl.ndarray.NDArray;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;

/**
 * A frozen image encoder as the image interfaces see it (DESIGN.md §3): a batch of preprocessed images
 * (B, 3, H, W) becomes a sequence of feature vectors (B, N, D) that a Q-Former cross-attends to. Implemented by
 * {@link EfficientNetLite0} (the 7×7 head feature map as 49 tokens) and {@link ClipVisionEncoder} (ViT patch
 * tokens of the penultimate layer, as BLIP-2).
 *
 * <p>{@link #identity()} names the weights and every choice that changes the features (which layer, input size),
 * so a feature cache keyed by it is invalidated when any of them changes.
 */
public interface VisionEncoder extends AutoCloseable {

    /**
     * Images (B, 3, H, W), preprocessed as {@link #transforms()} does, → features (B, N, D). The result belongs to
     * the images' manager; intermediates are freed before returning.
     */
    NDArray features(NDArray images);

    /** Shape of one preprocessed input, (3, H, W). */
    long[] inputShape();

    /** Shape of one image's features, (N, D), for {@link #inputShape()}. */
    long[] featureShape();

    /**
     * Fixed position embeddings (N·D floats, one row per feature token) that the image interface adds to the
     * features before the Q-Former, or null when the features already carry position (ViT patch tokens).
     */
    default float[] positions() {
        return null;
    }

    /**
     * {@code features} (…, N, D) plus {@link #positions()} broadcast over the leading dimensions (images, frames);
     * the features themselves when the encoder has no fixed positions to add.
     */
    default NDArray withPositions(NDArray features) {
        float[] positions = positions();
        if (positions == null) return features;
        return features.add(features.getManager().create(positions, new ai.djl.ndarray.types.Shape(featureShape())));
    }

    /** The evaluation-time preprocessing the encoder was trained with (resize, crop, mean/std). */
    ImageTransforms transforms();

    /** Weights and feature choices, e.g. {@code "efficientnet-lite0 sha256=…"}; stable across runs. */
    String identity();

    /** Frees the weights. */
    @Override
    void close();

}
