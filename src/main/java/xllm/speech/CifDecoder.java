package xllm.speech;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Activation;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The CIF ASR model's decoder (paper Appendix A.3): a linear from the CIF token vectors to the decoder width, sinusoidal
 * positions, pre-norm transformer blocks, a final LayerNorm and the vocabulary projection. It is non-autoregressive
 * (Paraformer-style, Gao et al. 2022): all L token positions are decoded at once from the fired CIF vectors, with
 * bidirectional self-attention masked to each row's token count — no previous-token input, so greedy decoding is one
 * argmax per fired token. Blocks whose {@link CifAsrConfig#decoderCrossAttention()} entry is "visual" or "linguistic"
 * cross-attend to that memory (multimodal ASR: blocks 3–4 and 5–6 in the full size); an absent memory is one zero
 * vector, as the paper sets missing visual/linguistic features to zero vectors.
 *
 * <p>Tensors (under {@code asr.decoder.}): {@code input.*}, {@code layers.N.self_attention.{norm,query,key,value,
 * output}.*}, {@code layers.N.cross_attention.*} (cross blocks only; key/value read the memory width),
 * {@code layers.N.ffn.{norm,linear1,linear2}.*}, {@code final_norm.*}, {@code output.*} (vocabulary × width).
 */
public final class CifDecoder {

    /** @param features (B, N, width) memory vectors; @param lengths valid vectors per row, or null when all are */
    public record Memory(NDArray features, long[] lengths) {}

    private final CifAsrConfig config;
    private final Map<String, NDArray> tensors;
    private final NDArray attentionScale;

    CifDecoder(CifAsrConfig config, Map<String, NDArray> tensors, NDManager manager) {
        this.config = config;
        this.tensors = Collections.unmodifiableMap(tensors);
        this.attentionScale = manager.create((float) (1.0 / Math.sqrt((double) config.decoderDim() / config.decoderHeads())));
    }

    static Map<String, Shape> expectedShapes(CifAsrConfig config, int vocabulary) {
        Map<String, Shape> shapes = new LinkedHashMap<>();
        long d = config.decoderDim();
        AsrLayers.linearShapes(shapes, "input", d, config.modelDim());
        for (int layer = 0; layer < config.decoderLayers(); layer++) {
            String p = "layers." + layer + ".";
            AsrLayers.normShapes(shapes, p + "self_attention.norm", d);
            AsrLayers.attentionShapes(shapes, p + "self_attention.", d, d);
            String kind = config.decoderCrossAttention().get(layer);
            if (!kind.equals(CifAsrConfig.NONE)) {
                AsrLayers.normShapes(shapes, p + "cross_attention.norm", d);
                AsrLayers.attentionShapes(shapes, p + "cross_attention.", d, config.memoryWidth(kind));
            }
            AsrLayers.normShapes(shapes, p + "ffn.norm", d);
            AsrLayers.linearShapes(shapes, p + "ffn.linear1", config.decoderFfnDim(), d);
            AsrLayers.linearShapes(shapes, p + "ffn.linear2", d, config.decoderFfnDim());
        }
        AsrLayers.normShapes(shapes, "final_norm", d);
        AsrLayers.linearShapes(shapes, "output", vocabulary, d);
        return shapes;
    }

    /**
     * @param tokens     (B, L, modelDim) CIF token vectors; positions past counts[b] are ignored
     * @param counts     tokens per row
     * @param visual     visual memory or null (zero vector)
     * @param linguistic linguistic memory or null (zero vector)
     * @return logits (B, L, vocabulary)
     */
    public NDArray forward(NDArray tokens, long[] counts, Memory visual, Memory linguistic) {
        NDManager manager = tokens.getManager();
        long batch = tokens.getShape().get(0), length = tokens.getShape().get(1);
        // step 1: into the decoder width, with positions
        NDArray x = AsrLayers.linear(tokens, tensors, "input")
                .add(AsrLayers.sinusoidalPositions(length, config.decoderDim(), manager));       // (B, L, d)
        NDArray keyMask = AsrLayers.keyMask(counts, length, manager);                           // (B, 1, 1, L)
        NDArray visualMask = null, linguisticMask = null;
        NDArray visualFeatures = memoryFeatures(visual, batch, config.visualWidth(), manager);
        NDArray linguisticFeatures = memoryFeatures(linguistic, batch, config.linguisticWidth(), manager);
        if (visual != null && visual.lengths() != null) visualMask = AsrLayers.keyMask(visual.lengths(), visualFeatures.getShape().get(1), manager);
        if (linguistic != null && linguistic.lengths() != null) {
            linguisticMask = AsrLayers.keyMask(linguistic.lengths(), linguisticFeatures.getShape().get(1), manager);
        }
        // step 2: pre-norm blocks: self-attention over the row's tokens, optional cross-attention, FFN
        for (int layer = 0; layer < config.decoderLayers(); layer++) {
            String p = "layers." + layer + ".";
            NDArray normed = AsrLayers.layerNorm(x, tensors, p + "self_attention.norm");
            x = x.add(AsrLayers.attention(normed, normed, keyMask, tensors, p + "self_attention.", config.decoderHeads(),
                    attentionScale));
            String kind = config.decoderCrossAttention().get(layer);
            if (!kind.equals(CifAsrConfig.NONE)) {
                boolean isVisual = kind.equals(CifAsrConfig.VISUAL);
                x = x.add(AsrLayers.attention(AsrLayers.layerNorm(x, tensors, p + "cross_attention.norm"),
                        isVisual ? visualFeatures : linguisticFeatures, isVisual ? visualMask : linguisticMask, tensors,
                        p + "cross_attention.", config.decoderHeads(), attentionScale));
            }
            NDArray inner = Activation.relu(AsrLayers.linear(AsrLayers.layerNorm(x, tensors, p + "ffn.norm"), tensors,
                    p + "ffn.linear1"));
            x = x.add(AsrLayers.linear(inner, tensors, p + "ffn.linear2"));
        }
        // step 3: vocabulary logits
        return AsrLayers.linear(AsrLayers.layerNorm(x, tensors, "final_norm"), tensors, "output");
    }

    private static NDArray memoryFeatures(Memory memory, long batch, int width, NDManager manager) {
        if (memory == null) return manager.zeros(new Shape(batch, 1, width));
        Shape shape = memory.features().getShape();
        if (shape.dimension() != 3 || shape.get(0) != batch || shape.get(2) != width) {
            throw new IllegalArgumentException("memory must be (" + batch + ", N, " + width + "), got " + shape);
        }
        return memory.features();
    }
}
