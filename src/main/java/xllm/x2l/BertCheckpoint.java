package xllm.x2l;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import xllm.tensor.Safetensors;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A BERT encoder checkpoint in transformers' safetensors layout ({@code BertModel}, e.g. all-MiniLM-L6-v2, or
 * {@code BertForMaskedLM}/{@code BertForPreTraining}, whose encoder keys carry a {@code bert.} prefix), read by the
 * BLIP-2 style Q-Former initialisation ({@link QFormer#initialiseFromBert}, {@link QFormerText#initialiseFromBert}).
 *
 * <p>Strict: on open every key must be a BERT encoder/embedding tensor of a layer the Q-Former config has, a
 * masked-LM head tensor ({@code cls.predictions.*}), or one of the keys no Q-Former part uses, listed in
 * {@link #UNUSED}: {@code embeddings.position_ids} (a buffer), {@code embeddings.token_type_embeddings.weight} (the
 * BLIP-2 Q-Former embeds text without token types, as LAVIS' {@code BertEmbeddings}), {@code pooler.*},
 * {@code cls.seq_relationship.*} (next-sentence head) and {@code cls.predictions.decoder.*} (tied to the word
 * embeddings). A config.json beside the weights must agree with the Q-Former config in width, depth, heads, FFN width
 * and activation; every tensor read must have the shape the Q-Former expects (the error names the key and both
 * shapes).
 */
public final class BertCheckpoint implements AutoCloseable {

    /** Keys (after the optional {@code bert.} prefix is removed) that exist in BERT checkpoints and are not used. */
    public static final List<String> UNUSED = List.of("embeddings.position_ids", "embeddings.token_type_embeddings.weight",
            "pooler.dense.weight", "pooler.dense.bias", "cls.seq_relationship.weight", "cls.seq_relationship.bias",
            "cls.predictions.decoder.weight", "cls.predictions.decoder.bias");

    private static final Pattern LAYER = Pattern.compile("encoder\\.layer\\.(\\d+)\\.(.+)");
    private static final Set<String> LAYER_TENSORS = Set.of(
            "attention.self.query.weight", "attention.self.query.bias", "attention.self.key.weight",
            "attention.self.key.bias", "attention.self.value.weight", "attention.self.value.bias",
            "attention.output.dense.weight", "attention.output.dense.bias", "attention.output.LayerNorm.weight",
            "attention.output.LayerNorm.bias", "intermediate.dense.weight", "intermediate.dense.bias",
            "output.dense.weight", "output.dense.bias", "output.LayerNorm.weight", "output.LayerNorm.bias");
    private static final Set<String> EMBEDDING_TENSORS = Set.of("embeddings.word_embeddings.weight",
            "embeddings.position_embeddings.weight", "embeddings.LayerNorm.weight", "embeddings.LayerNorm.bias");
    private static final Set<String> HEAD_TENSORS = Set.of("cls.predictions.transform.dense.weight",
            "cls.predictions.transform.dense.bias", "cls.predictions.transform.LayerNorm.weight",
            "cls.predictions.transform.LayerNorm.bias", "cls.predictions.bias");

    private final Path source;
    private final Safetensors file;
    private final String prefix; // "" or "bert." in front of the encoder keys

    private BertCheckpoint(Path source, Safetensors file, String prefix) {
        this.source = source;
        this.file = file;
        this.prefix = prefix;
    }

    /**
     * Opens a BERT checkpoint (a directory with config.json and safetensors, or a safetensors file) for a Q-Former of
     * {@code config}, checking its config and its key set as the class comment says.
     */
    public static BertCheckpoint open(Path path, QFormerConfig config) throws IOException {
        Path configJson = (Files.isDirectory(path) ? path : path.toAbsolutePath().getParent()).resolve("config.json");
        if (Files.exists(configJson)) checkConfig(configJson, config);
        Safetensors file = Safetensors.open(path);
        try {
            String prefix = file.contains("bert.embeddings.word_embeddings.weight") ? "bert." : "";
            for (String key : file.names()) {
                String name = key.startsWith("cls.") ? key : strip(key, prefix, path);
                if (UNUSED.contains(name) || EMBEDDING_TENSORS.contains(name) || HEAD_TENSORS.contains(name)) continue;
                Matcher layer = LAYER.matcher(name);
                if (!layer.matches() || !LAYER_TENSORS.contains(layer.group(2))) {
                    throw new IllegalArgumentException(path + ": unexpected tensor '" + key + "' (not a BERT encoder "
                            + "tensor the Q-Former knows; unused keys allowed: " + UNUSED + ")");
                }
                if (Integer.parseInt(layer.group(1)) >= config.numHiddenLayers()) {
                    throw new IllegalArgumentException(path + ": tensor '" + key + "' is beyond the Q-Former's "
                            + config.numHiddenLayers() + " layers");
                }
            }
            return new BertCheckpoint(path, file, prefix);
        } catch (RuntimeException e) {
            file.close();
            throw e;
        }
    }

    private static String strip(String key, String prefix, Path path) {
        if (!key.startsWith(prefix)) {
            throw new IllegalArgumentException(path + ": tensor '" + key + "' lacks the '" + prefix
                    + "' prefix the other encoder tensors have");
        }
        return key.substring(prefix.length());
    }

    private static void checkConfig(Path configJson, QFormerConfig config) throws IOException {
        JsonNode bert = new ObjectMapper().readTree(configJson.toFile());
        List<String> problems = new ArrayList<>();
        compare(problems, bert, "hidden_size", config.hiddenSize());
        compare(problems, bert, "num_hidden_layers", config.numHiddenLayers());
        compare(problems, bert, "num_attention_heads", config.numAttentionHeads());
        compare(problems, bert, "intermediate_size", config.intermediateSize());
        String act = bert.path("hidden_act").asText("gelu");
        if (!act.equals(config.hiddenAct())) problems.add("hidden_act " + act + " (Q-Former: " + config.hiddenAct() + ")");
        if (!problems.isEmpty()) {
            throw new IllegalArgumentException(configJson + ": BERT config does not fit the Q-Former config: "
                    + String.join(", ", problems));
        }
    }

    private static void compare(List<String> problems, JsonNode bert, String field, int expected) {
        if (bert.has(field) && bert.get(field).asInt() != expected) {
            problems.add(field + " " + bert.get(field).asInt() + " (Q-Former: " + expected + ")");
        }
    }

    public Path source() {
        return source;
    }

    /** Whether the checkpoint has {@code name} (a key without the {@code bert.} prefix). */
    public boolean contains(String name) {
        return file.contains(keyOf(name));
    }

    /** The shape of {@code name} (without the {@code bert.} prefix), e.g. to read the vocabulary size. */
    public long[] shape(String name) throws IOException {
        require(name);
        return file.shape(keyOf(name));
    }

    /**
     * Tensor {@code name} (without the {@code bert.} prefix) as float32 on {@code manager}; an error names the key and
     * both shapes when it is not {@code expected}.
     */
    public NDArray read(String name, Shape expected, NDManager manager) throws IOException {
        require(name);
        String key = keyOf(name);
        long[] shape = file.shape(key);
        if (!Arrays.equals(shape, expected.getShape())) {
            throw new IllegalArgumentException(source + ": BERT tensor '" + key + "' has shape " + Arrays.toString(shape)
                    + ", the Q-Former expects " + Arrays.toString(expected.getShape()));
        }
        return file.get(key).toFloatNDArray(manager);
    }

    private void require(String name) throws IOException {
        if (!contains(name)) throw new IllegalArgumentException(source + ": missing BERT tensor '" + keyOf(name) + "'");
    }

    private String keyOf(String name) {
        return name.startsWith("cls.") ? name : prefix + name;
    }

    @Override
    public void close() throws IOException {
        file.close();
    }
}
