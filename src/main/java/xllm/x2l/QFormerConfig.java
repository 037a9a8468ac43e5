package xllm.x2l;

import com.fasterxml.jackson.annotation.JsonIgnoreProperties;
import com.fasterxml.jackson.annotation.JsonProperty;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.nio.file.Path;

/**
 * Hyper-parameters of the BLIP-2 Q-Former under the names of transformers' {@code Blip2QFormerConfig}
 * ({@code num_query_tokens} lives in {@code Blip2Config} there; xllm keeps it here because the Q-Former owns its
 * learned queries). A field missing from a {@code config.json} takes the transformers default (the full-size
 * BLIP-2 Q-Former, {@link #fullSize()}).
 */
@JsonIgnoreProperties(ignoreUnknown = true)
public record QFormerConfig(
        @JsonProperty("hidden_size") int hiddenSize,                            // H, query width (768 full size)
        @JsonProperty("num_hidden_layers") int numHiddenLayers,                 // BERT layers (12)
        @JsonProperty("num_attention_heads") int numAttentionHeads,             // heads; head width H / heads
        @JsonProperty("intermediate_size") int intermediateSize,                // FFN hidden width (3072)
        @JsonProperty("cross_attention_frequency") int crossAttentionFrequency, // layer i cross-attends when i % f == 0
        @JsonProperty("encoder_hidden_size") int encoderHiddenSize,             // width of the image features (1408 EVA ViT-g)
        @JsonProperty("layer_norm_eps") double layerNormEps,                    // 1e-12, as BERT
        @JsonProperty("num_query_tokens") int numQueryTokens,                   // learned queries (32)
        @JsonProperty("hidden_act") String hiddenAct) {                         // only "gelu" (exact, erf) is implemented

    private static final ObjectMapper JSON = new ObjectMapper();

    public QFormerConfig {
        if (hiddenSize <= 0 || numHiddenLayers <= 0 || numAttentionHeads <= 0 || intermediateSize <= 0
                || crossAttentionFrequency <= 0 || encoderHiddenSize <= 0 || numQueryTokens <= 0 || layerNormEps <= 0) {
            throw new IllegalArgumentException("Q-Former config needs positive sizes, got " + summary(hiddenSize,
                    numHiddenLayers, numAttentionHeads, intermediateSize, crossAttentionFrequency, encoderHiddenSize,
                    numQueryTokens, layerNormEps));
        }
        if (hiddenSize % numAttentionHeads != 0) {
            throw new IllegalArgumentException("hidden_size " + hiddenSize + " is not a multiple of num_attention_heads "
                    + numAttentionHeads);
        }
        if (hiddenAct == null) hiddenAct = "gelu";
        if (!hiddenAct.equals("gelu")) {
            throw new IllegalArgumentException("hidden_act '" + hiddenAct + "' is not supported (only \"gelu\")");
        }
    }

    /** The BLIP-2 Q-Former (transformers' defaults; 32 queries over EVA ViT-g features). */
    public static QFormerConfig fullSize() {
        return new QFormerConfig(768, 12, 12, 3072, 2, 1408, 1e-12, 32, "gelu");
    }

    /** Reads a {@code config.json}; fields it lacks keep their {@link #fullSize()} values. */
    public static QFormerConfig read(Path configJson) throws IOException {
        try {
            ObjectNode merged = JSON.valueToTree(fullSize());
            JsonNode file = JSON.readTree(configJson.toFile());
            if (file == null || !file.isObject()) throw new IOException("not a JSON object");
            merged.setAll((ObjectNode) file);
            return JSON.treeToValue(merged, QFormerConfig.class);
        } catch (IOException | IllegalArgumentException e) {
            throw new IOException(configJson + ": cannot read Q-Former config: " + e.getMessage(), e);
        }
    }

    /**
     * Reads the Q-Former part of a transformers BLIP-2 {@code config.json}: its {@code qformer_config} object (fields
     * it lacks keep transformers' defaults) and the top-level {@code num_query_tokens}.
     */
    public static QFormerConfig readFromBlip2(Path configJson) throws IOException {
        try {
            JsonNode file = JSON.readTree(configJson.toFile());
            if (file == null || !file.isObject()) throw new IOException("not a JSON object");
            ObjectNode merged = JSON.valueToTree(fullSize());
            JsonNode qformer = file.get("qformer_config");
            if (qformer != null && qformer.isObject()) merged.setAll((ObjectNode) qformer);
            if (file.has("num_query_tokens")) merged.set("num_query_tokens", file.get("num_query_tokens"));
            return JSON.treeToValue(merged, QFormerConfig.class);
        } catch (IOException | IllegalArgumentException e) {
            throw new IOException(configJson + ": cannot read BLIP-2 Q-Former config: " + e.getMessage(), e);
        }
    }

    /** This config cross-attending to features of another width (the frozen encoder decides it). */
    public QFormerConfig withEncoderHiddenSize(int width) {
        return new QFormerConfig(hiddenSize, numHiddenLayers, numAttentionHeads, intermediateSize, crossAttentionFrequency,
                width, layerNormEps, numQueryTokens, hiddenAct);
    }

    public int headDim() {
        return hiddenSize / numAttentionHeads;
    }

    /** As transformers' {@code Blip2QFormerLayer}: {@code layer_idx % cross_attention_frequency == 0}. */
    public boolean hasCrossAttention(int layer) {
        return layer % crossAttentionFrequency == 0;
    }

    private static String summary(Object... values) {
        return java.util.Arrays.toString(values);
    }
}
