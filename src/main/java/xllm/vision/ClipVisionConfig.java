package xllm.vision;

import com.fasterxml.jackson.annotation.JsonIgnoreProperties;
import com.fasterxml.jackson.annotation.JsonProperty;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.util.Set;

/**
 * Hyper-parameters of a CLIP-style ViT under the names of transformers' {@code CLIPVisionConfig}. A field missing
 * from a {@code config.json} takes transformers' default (ViT-B/32: {@link #vitBase32()}).
 */
@JsonIgnoreProperties(ignoreUnknown = true)
public record ClipVisionConfig(
        @JsonProperty("hidden_size") int hiddenSize,               // D, token width (768 ViT-B, 1024 ViT-L, 1408 EVA ViT-g)
        @JsonProperty("intermediate_size") int intermediateSize,   // MLP hidden width (4·D, 6144 for EVA ViT-g)
        @JsonProperty("num_hidden_layers") int numHiddenLayers,    // transformer layers (12 / 24 / 39)
        @JsonProperty("num_attention_heads") int numAttentionHeads, // heads; head width D / heads
        @JsonProperty("num_channels") int numChannels,             // 3 (RGB)
        @JsonProperty("image_size") int imageSize,                 // input side in pixels (224)
        @JsonProperty("patch_size") int patchSize,                 // patch side (32, 14 for ViT-L/14)
        @JsonProperty("hidden_act") String hiddenAct,              // "quick_gelu" (OpenAI CLIP) or "gelu" (exact erf)
        @JsonProperty("layer_norm_eps") double layerNormEps) {     // 1e-5

    /** The activations implemented: x·σ(1.702x) and the exact (erf) GELU. */
    public static final Set<String> ACTIVATIONS = Set.of("quick_gelu", "gelu");

    private static final ObjectMapper JSON = new ObjectMapper();

    public ClipVisionConfig {
        if (hiddenSize <= 0 || intermediateSize <= 0 || numHiddenLayers <= 0 || numAttentionHeads <= 0
                || numChannels <= 0 || imageSize <= 0 || patchSize <= 0 || layerNormEps <= 0) {
            throw new IllegalArgumentException("CLIP vision config needs positive sizes, got hidden_size=" + hiddenSize
                    + " intermediate_size=" + intermediateSize + " num_hidden_layers=" + numHiddenLayers
                    + " num_attention_heads=" + numAttentionHeads + " num_channels=" + numChannels + " image_size="
                    + imageSize + " patch_size=" + patchSize + " layer_norm_eps=" + layerNormEps);
        }
        if (hiddenSize % numAttentionHeads != 0) {
            throw new IllegalArgumentException("hidden_size " + hiddenSize + " is not a multiple of num_attention_heads "
                    + numAttentionHeads);
        }
        if (imageSize % patchSize != 0) {
            throw new IllegalArgumentException("image_size " + imageSize + " is not a multiple of patch_size " + patchSize);
        }
        if (hiddenAct == null) hiddenAct = "quick_gelu";
        if (!ACTIVATIONS.contains(hiddenAct)) {
            throw new IllegalArgumentException("hidden_act '" + hiddenAct + "' is not supported (" + ACTIVATIONS + ")");
        }
    }

    /** transformers' {@code CLIPVisionConfig()} defaults: OpenAI ViT-B/32 at 224. */
    public static ClipVisionConfig vitBase32() {
        return new ClipVisionConfig(768, 3072, 12, 12, 3, 224, 32, "quick_gelu", 1e-5);
    }

    /**
     * The vision config of a {@code config.json} object: its {@code vision_config} member when it is a whole
     * {@code CLIPConfig} (model_type "clip"), else the object itself ({@code CLIPVisionConfig}, model_type
     * "clip_vision_model"); another model_type is refused. Missing fields keep {@link #vitBase32()}'s values.
     */
    public static ClipVisionConfig fromJson(JsonNode root) throws IOException {
        if (root == null || !root.isObject()) throw new IOException("not a JSON object");
        String modelType = root.path("model_type").asText("");
        if (!modelType.isEmpty() && !modelType.equals("clip") && !modelType.equals("clip_vision_model")) {
            throw new IOException("model_type '" + modelType + "' is not a CLIP model (clip, clip_vision_model)");
        }
        JsonNode vision = isFullClip(root) ? root.get("vision_config") : root;
        ObjectNode merged = JSON.valueToTree(vitBase32());
        merged.setAll((ObjectNode) vision);
        try {
            return JSON.treeToValue(merged, ClipVisionConfig.class);
        } catch (IOException | IllegalArgumentException e) {
            throw new IOException(e.getMessage(), e);
        }
    }

    /** Whether a {@code config.json} object is a whole {@code CLIPConfig} (text and vision towers). */
    public static boolean isFullClip(JsonNode root) {
        return root.has("vision_config") && root.get("vision_config").isObject();
    }

    public int headDim() {
        return hiddenSize / numAttentionHeads;
    }

    /** Patches per side, image_size / patch_size. */
    public int gridSize() {
        return imageSize / patchSize;
    }

    /** Tokens per image: the class token plus one per patch. */
    public int numPositions() {
        return gridSize() * gridSize() + 1;
    }
}
