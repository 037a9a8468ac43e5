package xllm.llm;

import com.fasterxml.jackson.annotation.JsonIgnoreProperties;
import com.fasterxml.jackson.annotation.JsonProperty;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import xllm.tensor.TransformerOps.RopeScaling;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;

/**
 * Hyper-parameters of a Llama-family decoder (Llama 2/3, Qwen2/2.5, SmolLM2, Mistral), read from a Hugging Face
 * {@code config.json} or from GGUF metadata ({@code LlamaLoader}).
 */
public record LlamaConfig(
        String modelType,             // "llama", "qwen2", "mistral"
        int hiddenSize,               // D, model width
        int intermediateSize,         // F, SwiGLU hidden width
        int numLayers,                // decoder blocks
        int numHeads,                 // H, query heads
        int numKeyValueHeads,         // KV heads (GQA when < H)
        int headDim,                  // hd, usually D / H
        int vocabSize,                // V
        float rmsNormEps,
        double ropeTheta,
        RopeScaling ropeScaling,      // Llama-3 scaling or null
        boolean tieWordEmbeddings,    // LM head shares the token embedding
        boolean attentionBias,        // q/k/v projections carry biases (Qwen2)
        int maxPositions,             // longest sequence the RoPE table covers
        List<Long> eosTokenIds) {

    static final Set<String> SUPPORTED = Set.of("llama", "qwen2", "mistral");

    public static LlamaConfig fromHuggingFace(Path configJson) throws IOException {
        Json json;
        try {
            json = new ObjectMapper().readValue(configJson.toFile(), Json.class);
        } catch (IOException e) {
            throw new IOException(configJson + ": cannot read model config: " + e.getMessage(), e);
        }
        if (json.modelType == null || !SUPPORTED.contains(json.modelType)) {
            throw new IOException(configJson + ": unknown architecture model_type='" + json.modelType
                    + "' (xllm runs " + SUPPORTED + ")");
        }
        RopeScaling scaling = null;
        if (json.ropeScaling != null && !json.ropeScaling.isNull()) {
            String type = json.ropeScaling.path("rope_type").asText(json.ropeScaling.path("type").asText(""));
            if (!type.equals("llama3")) {
                throw new IOException(configJson + ": rope_scaling type '" + type + "' is not supported (only llama3)");
            }
            scaling = new RopeScaling(json.ropeScaling.path("factor").asDouble(),
                    json.ropeScaling.path("low_freq_factor").asDouble(),
                    json.ropeScaling.path("high_freq_factor").asDouble(),
                    json.ropeScaling.path("original_max_position_embeddings").asInt());
        }
        int headDim = json.headDim != null ? json.headDim : json.hiddenSize / json.numHeads;
        boolean bias = json.attentionBias != null ? json.attentionBias : json.modelType.equals("qwen2");
        List<Long> eos = new ArrayList<>();
        if (json.eosTokenId != null && json.eosTokenId.isArray()) json.eosTokenId.forEach(n -> eos.add(n.asLong()));
        else if (json.eosTokenId != null && json.eosTokenId.isNumber()) eos.add(json.eosTokenId.asLong());
        return new LlamaConfig(json.modelType, json.hiddenSize, json.intermediateSize, json.numLayers, json.numHeads,
                json.numKeyValueHeads != null ? json.numKeyValueHeads : json.numHeads, headDim, json.vocabSize,
                json.rmsNormEps, json.ropeTheta != null ? json.ropeTheta : 10000.0, scaling,
                json.tieWordEmbeddings != null && json.tieWordEmbeddings, bias,
                json.maxPositionEmbeddings != null ? json.maxPositionEmbeddings : 4096, List.copyOf(eos));
    }

    public LlamaConfig withMaxPositions(int positions) {
        return new LlamaConfig(modelType, hiddenSize, intermediateSize, numLayers, numHeads, numKeyValueHeads, headDim,
                vocabSize, rmsNormEps, ropeTheta, ropeScaling, tieWordEmbeddings, attentionBias, positions, eosTokenIds);
    }

    @JsonIgnoreProperties(ignoreUnknown = true)
    static final class Json {
        @JsonProperty("model_type") String modelType;
        @JsonProperty("hidden_size") int hiddenSize;
        @JsonProperty("intermediate_size") int intermediateSize;
        @JsonProperty("num_hidden_layers") int numLayers;
        @JsonProperty("num_attention_heads") int numHeads;
        @JsonProperty("num_key_value_heads") Integer numKeyValueHeads;
        @JsonProperty("head_dim") Integer headDim;
        @JsonProperty("vocab_size") int vocabSize;
        @JsonProperty("rms_norm_eps") float rmsNormEps = 1e-6f;
        @JsonProperty("rope_theta") Double ropeTheta;
        @JsonProperty("rope_scaling") JsonNode ropeScaling;
        @JsonProperty("tie_word_embeddings") Boolean tieWordEmbeddings;
        @JsonProperty("attention_bias") Boolean attentionBias;
        @JsonProperty("max_position_embeddings") Integer maxPositionEmbeddings;
        @JsonProperty("eos_token_id") JsonNode eosTokenId;
    }
}
