package xllm.x2l;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Activation;
import ai.djl.nn.core.Linear;
import ai.djl.nn.norm.LayerNorm;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import xllm.tensor.Safetensors;
import xllm.tensor.TransformerOps;
import xllm.tensor.TrainableParameter;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;

/**
 * A BERT encoder over given input vectors — the transformer of the C-Former (paper §3.1: the CIF outputs of the
 * frozen speech encoder go through a BERT-initialised transformer, then the S-Adapter). It is transformers'
 * {@code BertModel} called with {@code inputs_embeds} and token type 0, in eval mode, with a padding mask: embeddings
 * = LayerNorm(inputs + position_embeddings[0..L) + token_type_embeddings[0]), then post-LN layers of bidirectional
 * self-attention and a GELU FFN. Tensors keep {@code BertModel}'s state-dict names ({@code embeddings.LayerNorm.weight},
 * {@code encoder.layer.0.attention.self.query.weight}, …) so a BERT checkpoint (all-MiniLM-L6-v2 here) loads by name;
 * its {@code word_embeddings} (the speech side has no word ids) and {@code pooler} are not part of the encoder.
 * Padded positions are never attended to; their outputs are computed but meaningless.
 *
 * <p>No {@code pow/div/mul(Number)} on the differentiated path (docs/training.md): the attention scale is a tensor
 * owned by this encoder's manager.
 */
public final class BertEncoder {

    /** {@code BertModel} hyper-parameters the encoder needs (transformers' config.json names). */
    public record Config(int hiddenSize, int numHiddenLayers, int numAttentionHeads, int intermediateSize,
                         int maxPositionEmbeddings, int typeVocabSize, double layerNormEps) {

        public Config {
            if (hiddenSize % numAttentionHeads != 0) {
                throw new IllegalArgumentException("hidden_size " + hiddenSize + " is not a multiple of num_attention_heads "
                        + numAttentionHeads);
            }
        }

        /** Reads a transformers BERT {@code config.json} (absolute positions and GELU only). */
        public static Config read(Path configJson) throws IOException {
            JsonNode node = new ObjectMapper().readTree(configJson.toFile());
            String act = node.path("hidden_act").asText("gelu");
            if (!act.equals("gelu")) throw new IOException(configJson + ": hidden_act '" + act + "' is not supported (gelu)");
            String positions = node.path("position_embedding_type").asText("absolute");
            if (!positions.equals("absolute")) {
                throw new IOException(configJson + ": position_embedding_type '" + positions + "' is not supported (absolute)");
            }
            for (String key : List.of("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size")) {
                if (!node.path(key).isInt()) throw new IOException(configJson + ": missing integer '" + key + "'");
            }
            return new Config(node.get("hidden_size").asInt(), node.get("num_hidden_layers").asInt(),
                    node.get("num_attention_heads").asInt(), node.get("intermediate_size").asInt(),
                    node.path("max_position_embeddings").asInt(512), node.path("type_vocab_size").asInt(2),
                    node.path("layer_norm_eps").asDouble(1e-12));
        }

        int headDim() {
            return hiddenSize / numAttentionHeads;
        }
    }

    /** BERT checkpoint tensors that are deliberately not part of the encoder. */
    public static final Set<String> UNUSED = Set.of("embeddings.word_embeddings.weight", "embeddings.position_ids",
            "pooler.dense.weight", "pooler.dense.bias");

    private final Config config;
    private final Map<String, NDArray> tensors;
    private final NDArray attentionScale; // () 1/√head_dim

    private BertEncoder(Config config, Map<String, NDArray> tensors, NDManager manager) {
        this.config = config;
        this.tensors = Collections.unmodifiableMap(tensors);
        this.attentionScale = manager.create((float) (1.0 / Math.sqrt(config.headDim())));
    }

    /** Every tensor name and shape, in {@code BertModel}'s state-dict order. */
    public static Map<String, Shape> expectedShapes(Config config) {
        long h = config.hiddenSize();
        Map<String, Shape> shapes = new LinkedHashMap<>();
        shapes.put("embeddings.position_embeddings.weight", new Shape(config.maxPositionEmbeddings(), h));
        shapes.put("embeddings.token_type_embeddings.weight", new Shape(config.typeVocabSize(), h));
        shapes.put("embeddings.LayerNorm.weight", new Shape(h));
        shapes.put("embeddings.LayerNorm.bias", new Shape(h));
        for (int i = 0; i < config.numHiddenLayers(); i++) {
            String p = "encoder.layer." + i + ".";
            for (String name : List.of("attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense")) {
                shapes.put(p + name + ".weight", new Shape(h, h));
                shapes.put(p + name + ".bias", new Shape(h));
            }
            shapes.put(p + "attention.output.LayerNorm.weight", new Shape(h));
            shapes.put(p + "attention.output.LayerNorm.bias", new Shape(h));
            shapes.put(p + "intermediate.dense.weight", new Shape(config.intermediateSize(), h));
            shapes.put(p + "intermediate.dense.bias", new Shape(config.intermediateSize()));
            shapes.put(p + "output.dense.weight", new Shape(h, config.intermediateSize()));
            shapes.put(p + "output.dense.bias", new Shape(h));
            shapes.put(p + "output.LayerNorm.weight", new Shape(h));
            shapes.put(p + "output.LayerNorm.bias", new Shape(h));
        }
        return shapes;
    }

    /** BERT's initialisation: weights N(0, 0.02), biases 0, LayerNorm gain 1. Same seed, same tensors. */
    public static BertEncoder initialise(Config config, long seed, NDManager manager) {
        Random random = new Random(seed);
        Map<String, NDArray> tensors = new LinkedHashMap<>();
        for (var entry : expectedShapes(config).entrySet()) {
            String name = entry.getKey();
            float[] values = new float[Math.toIntExact(entry.getValue().size())];
            if (name.endsWith("LayerNorm.weight")) {
                Arrays.fill(values, 1f);
            } else if (name.endsWith(".weight")) {
                for (int i = 0; i < values.length; i++) values[i] = (float) (random.nextGaussian() * QFormer.INITIALISER_STD);
            }
            tensors.put(name, manager.create(values, entry.getValue()));
        }
        return new BertEncoder(config, tensors, manager);
    }

    /**
     * Loads the encoder from a transformers BERT checkpoint directory ({@code config.json} + {@code model.safetensors};
     * keys with or without a {@code bert.} prefix). Strict: a missing or mis-shaped tensor, or a key that is neither
     * ours nor in {@link #UNUSED}, is an error naming the file and key.
     */
    public static BertEncoder fromBert(Path dir, NDManager manager) throws IOException {
        Config config = Config.read(dir.resolve("config.json"));
        Path weights = dir.resolve("model.safetensors");
        if (!Files.isRegularFile(weights)) throw new IOException(dir + ": no model.safetensors");
        Map<String, Shape> expected = expectedShapes(config);
        Map<String, NDArray> tensors = new LinkedHashMap<>();
        try (Safetensors file = Safetensors.open(weights)) {
            String prefix = file.contains("bert.embeddings.LayerNorm.weight") ? "bert." : "";
            for (String key : file.names()) {
                String name = key.startsWith(prefix) ? key.substring(prefix.length()) : key;
                if (!expected.containsKey(name) && !UNUSED.contains(name)) {
                    throw new IllegalArgumentException(weights + ": unexpected tensor '" + key + "' (not a BertModel "
                            + "encoder tensor for " + config + ")");
                }
            }
            for (var entry : expected.entrySet()) {
                String key = prefix + entry.getKey();
                if (!file.contains(key)) throw new IllegalArgumentException(weights + ": missing tensor '" + key + "'");
                if (!Arrays.equals(file.shape(key), entry.getValue().getShape())) {
                    throw new IllegalArgumentException(weights + ": tensor '" + key + "' has shape "
                            + Arrays.toString(file.shape(key)) + ", expected " + entry.getValue());
                }
                tensors.put(entry.getKey(), file.get(key).toFloatNDArray(manager));
            }
        }
        return new BertEncoder(config, tensors, manager);
    }

    /** Builds an encoder from named tensors (a checkpoint's), checking names and shapes against the config. */
    public static BertEncoder of(Config config, Map<String, NDArray> named, NDManager manager) {
        Map<String, Shape> expected = expectedShapes(config);
        if (!named.keySet().equals(expected.keySet())) {
            throw new IllegalArgumentException("BERT encoder tensors differ from the config's: expected " + expected.keySet()
                    + ", got " + named.keySet());
        }
        Map<String, NDArray> tensors = new LinkedHashMap<>();
        for (var entry : expected.entrySet()) {
            NDArray value = named.get(entry.getKey());
            if (!value.getShape().equals(entry.getValue())) {
                throw new IllegalArgumentException("tensor '" + entry.getKey() + "' has shape " + value.getShape()
                        + ", expected " + entry.getValue());
            }
            tensors.put(entry.getKey(), value);
        }
        return new BertEncoder(config, tensors, manager);
    }

    public Config config() {
        return config;
    }

    public Map<String, NDArray> tensors() {
        return tensors;
    }

    public List<TrainableParameter> parameters(String prefix) {
        List<TrainableParameter> out = new ArrayList<>();
        tensors.forEach((name, value) -> out.add(new TrainableParameter(prefix + name, value)));
        return out;
    }

    /**
     * @param inputs  (B, L, H) input vectors ({@code inputs_embeds})
     * @param lengths valid positions per row (≤ L); the rest are padding nobody attends to
     * @return (B, L, H) last hidden states
     */
    public NDArray forward(NDArray inputs, long[] lengths) {
        Shape shape = inputs.getShape();
        long batch = shape.get(0), length = shape.get(1);
        if (length > config.maxPositionEmbeddings()) {
            throw new IllegalArgumentException(length + " positions exceed max_position_embeddings " + config.maxPositionEmbeddings());
        }
        if (lengths.length != batch) throw new IllegalArgumentException(lengths.length + " lengths for a batch of " + batch);
        NDArray positions = tensors.get("embeddings.position_embeddings.weight").get(new NDIndex("0:{}", length));
        NDArray tokenType = tensors.get("embeddings.token_type_embeddings.weight").get(0);
        NDArray hidden = layerNorm(inputs.add(positions).add(tokenType), "embeddings.LayerNorm");
        boolean[][] valid = new boolean[(int) batch][(int) length];
        for (int b = 0; b < batch; b++) {
            if (lengths[b] < 0 || lengths[b] > length) throw new IllegalArgumentException("length " + lengths[b] + " outside 0.." + length);
            for (int t = 0; t < lengths[b]; t++) valid[b][t] = true;
        }
        NDArray mask = keyMask(inputs.getManager(), valid);                         // (B, 1, 1, L) additive
        for (int i = 0; i < config.numHiddenLayers(); i++) {
            String p = "encoder.layer." + i + ".";
            hidden = layerNorm(linear(selfAttention(hidden, mask, p), p + "attention.output.dense").add(hidden),
                    p + "attention.output.LayerNorm");
            NDArray inner = Activation.gelu(linear(hidden, p + "intermediate.dense"));
            hidden = layerNorm(linear(inner, p + "output.dense").add(hidden), p + "output.LayerNorm");
        }
        return hidden;
    }

    private NDArray selfAttention(NDArray x, NDArray mask, String prefix) {
        long batch = x.getShape().get(0), length = x.getShape().get(1);
        int heads = config.numAttentionHeads(), headDim = config.headDim();
        NDArray q = linear(x, prefix + "attention.self.query").reshape(batch, length, heads, headDim).transpose(0, 2, 1, 3);
        NDArray k = linear(x, prefix + "attention.self.key").reshape(batch, length, heads, headDim).transpose(0, 2, 3, 1);
        NDArray v = linear(x, prefix + "attention.self.value").reshape(batch, length, heads, headDim).transpose(0, 2, 1, 3);
        NDArray scores = q.matMul(k).mul(attentionScale).add(mask);                 // (B, heads, L, L)
        NDArray context = scores.softmax(-1).matMul(v);                              // (B, heads, L, hd)
        return context.transpose(0, 2, 1, 3).reshape(batch, length, config.hiddenSize());
    }

    /** (B, L) validity → additive (B, 1, 1, L): 0 where a key is valid, {@link TransformerOps#MASKED} where padded. */
    private static NDArray keyMask(NDManager manager, boolean[][] valid) {
        int batch = valid.length, length = valid.length == 0 ? 0 : valid[0].length;
        float[] values = new float[batch * length];
        for (int b = 0; b < batch; b++) {
            for (int t = 0; t < length; t++) values[b * length + t] = valid[b][t] ? 0f : TransformerOps.MASKED;
        }
        return manager.create(values, new Shape(batch, 1, 1, length));
    }

    private NDArray linear(NDArray x, String name) {
        return Linear.linear(x, tensors.get(name + ".weight"), tensors.get(name + ".bias")).singletonOrThrow();
    }

    private NDArray layerNorm(NDArray x, String name) {
        return LayerNorm.layerNorm(x, new Shape(config.hiddenSize()), tensors.get(name + ".weight"),
                tensors.get(name + ".bias"), (float) config.layerNormEps()).singletonOrThrow();
    }
}
