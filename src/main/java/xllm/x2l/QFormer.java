package xllm.x2l;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Activation;
import ai.djl.nn.core.Linear;
import ai.djl.nn.norm.LayerNorm;
import xllm.tensor.HostTensor;
import xllm.tensor.Safetensors;
import xllm.tensor.SafetensorsWriter;
import xllm.tensor.TransformerOps;
import xllm.tensor.TrainableParameter;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;

/**
 * The BLIP-2 Q-Former (Li et al. 2023, §3.1; X-LLM's image interface, paper §3.1): a BERT encoder over
 * {@code num_query_tokens} learned queries that self-attend, cross-attend to frozen image features every
 * {@code cross_attention_frequency}-th layer, and pass through a query FFN. Only the query path is implemented (no
 * text tokens), which is all the image and video interfaces use.
 *
 * <p>Matches transformers' {@code Blip2QFormerModel} ({@code modeling_blip_2.py}) in eval mode: tensors are keyed by
 * its state-dict names ({@code layernorm.weight}, {@code encoder.layer.0.crossattention.attention.key.weight}, …) plus
 * {@code query_tokens} (1, Q, H), the learned queries that {@code Blip2Model} keeps beside {@code qformer.*}.
 * Dropout (BLIP-2 trains with 0.1 on hidden states and attention probabilities) is not applied: this is the eval-mode
 * function, used as is whether the Q-Former is frozen or trained. {@code QFormerTest} checks the output and the
 * gradients to the inputs and to every parameter against a tiny random transformers model (fixtures of
 * {@code tools/reference/make_qformer_fixtures.py}).
 *
 * <p>No {@code pow/div/mul(Number)} on the differentiated path (see docs/training.md, "A DJL pitfall"): the
 * 1/√head-width scale is a tensor owned by this model's manager.
 */
public final class QFormer {

    /** Std of BERT's initialiser ({@code initializer_range}). */
    public static final double INITIALISER_STD = 0.02;

    private final QFormerConfig config;
    private final Map<String, NDArray> tensors; // HF names → float32 tensors, in checkpoint order
    private final NDArray attentionScale;       // () 1/√head_dim, on the model's manager

    private QFormer(QFormerConfig config, Map<String, NDArray> tensors, NDManager manager) {
        this.config = config;
        this.tensors = Collections.unmodifiableMap(tensors);
        this.attentionScale = manager.create((float) (1.0 / Math.sqrt(config.headDim())));
    }

    /** Every tensor name and shape of a Q-Former with this config, in transformers' state-dict order. */
    public static Map<String, Shape> expectedShapes(QFormerConfig config) {
        long hidden = config.hiddenSize(), inner = config.intermediateSize(), encoder = config.encoderHiddenSize();
        Map<String, Shape> shapes = new LinkedHashMap<>();
        shapes.put("query_tokens", new Shape(1, config.numQueryTokens(), hidden));
        shapes.put("layernorm.weight", new Shape(hidden));
        shapes.put("layernorm.bias", new Shape(hidden));
        for (int layer = 0; layer < config.numHiddenLayers(); layer++) {
            String prefix = "encoder.layer." + layer + ".";
            attentionShapes(shapes, prefix + "attention.", hidden, hidden);
            if (config.hasCrossAttention(layer)) attentionShapes(shapes, prefix + "crossattention.", hidden, encoder);
            linearShapes(shapes, prefix + "intermediate_query.dense", inner, hidden);
            linearShapes(shapes, prefix + "output_query.dense", hidden, inner);
            shapes.put(prefix + "output_query.LayerNorm.weight", new Shape(hidden));
            shapes.put(prefix + "output_query.LayerNorm.bias", new Shape(hidden));
        }
        return shapes;
    }

    private static void attentionShapes(Map<String, Shape> shapes, String prefix, long hidden, long keyWidth) {
        linearShapes(shapes, prefix + "attention.query", hidden, hidden);
        linearShapes(shapes, prefix + "attention.key", hidden, keyWidth);
        linearShapes(shapes, prefix + "attention.value", hidden, keyWidth);
        linearShapes(shapes, prefix + "output.dense", hidden, hidden);
        shapes.put(prefix + "output.LayerNorm.weight", new Shape(hidden));
        shapes.put(prefix + "output.LayerNorm.bias", new Shape(hidden));
    }

    private static void linearShapes(Map<String, Shape> shapes, String name, long out, long in) {
        shapes.put(name + ".weight", new Shape(out, in));
        shapes.put(name + ".bias", new Shape(out));
    }

    /**
     * Loads a safetensors file holding exactly the tensors of {@link #expectedShapes}: a missing or unexpected key
     * or a shape mismatch is an {@link IllegalArgumentException} naming the file and the key. Tensors are converted
     * to float32 on {@code manager}.
     */
    public static QFormer load(Path safetensors, QFormerConfig config, NDManager manager) throws IOException {
        return read(safetensors, name -> name, key -> true, config, manager);
    }

    /**
     * Loads the Q-Former out of a whole transformers BLIP-2 checkpoint ({@code Blip2Model} /
     * {@code Blip2ForConditionalGeneration}: a file, an index or a directory): {@code query_tokens} and every
     * {@code qformer.*} tensor. Those two are strict as in {@link #load}; the other components of the checkpoint
     * ({@code vision_model.*}, {@code language_projection.*}, {@code language_model.*}) belong to other loaders.
     */
    public static QFormer loadFromBlip2(Path checkpoint, QFormerConfig config, NDManager manager) throws IOException {
        return read(checkpoint, name -> name.equals("query_tokens") ? name : "qformer." + name,
                key -> key.equals("query_tokens") || key.startsWith("qformer."), config, manager);
    }

    /** @param keyOf our name → key in the file; @param owned whether a file key must be one of ours */
    private static QFormer read(Path path, java.util.function.UnaryOperator<String> keyOf,
                                java.util.function.Predicate<String> owned, QFormerConfig config, NDManager manager)
            throws IOException {
        Map<String, Shape> expected = expectedShapes(config);
        Set<String> expectedKeys = new HashSet<>();
        for (String name : expected.keySet()) expectedKeys.add(keyOf.apply(name));
        Map<String, NDArray> tensors = new LinkedHashMap<>();
        try (Safetensors file = Safetensors.open(path)) {
            for (String key : file.names()) {
                if (owned.test(key) && !expectedKeys.contains(key)) {
                    throw new IllegalArgumentException(path + ": unexpected tensor '" + key
                            + "' (not a Blip2QFormerModel parameter for this config)");
                }
            }
            for (var entry : expected.entrySet()) {
                String key = keyOf.apply(entry.getKey());
                if (!file.contains(key)) throw new IllegalArgumentException(path + ": missing tensor '" + key + "'");
                long[] shape = file.shape(key);
                if (!Arrays.equals(shape, entry.getValue().getShape())) {
                    throw new IllegalArgumentException(path + ": tensor '" + key + "' has shape "
                            + Arrays.toString(shape) + ", expected " + entry.getValue());
                }
            }
            for (String name : expected.keySet()) tensors.put(name, file.get(keyOf.apply(name)).toFloatNDArray(manager));
        }
        return new QFormer(config, tensors, manager);
    }

    /**
     * A fresh Q-Former as BERT initialises it: linear weights and the learned queries N(0, 0.02), biases 0,
     * LayerNorm gain 1 and bias 0. The queries follow the original BLIP-2 (LAVIS) init; transformers' Blip2Model
     * zeroes them, which makes every query identical after the first LayerNorm. Same seed, same tensors.
     */
    public static QFormer initialise(QFormerConfig config, long seed, NDManager manager) {
        return new QFormer(config, freshTensors(config, seed, manager), manager);
    }

    private static Map<String, NDArray> freshTensors(QFormerConfig config, long seed, NDManager manager) {
        Random random = new Random(seed);
        Map<String, NDArray> tensors = new LinkedHashMap<>();
        for (var entry : expectedShapes(config).entrySet()) {
            String name = entry.getKey();
            Shape shape = entry.getValue();
            float[] values = new float[Math.toIntExact(shape.size())];
            if (name.endsWith("LayerNorm.weight") || name.equals("layernorm.weight")) {
                Arrays.fill(values, 1f);
            } else if (name.endsWith(".weight") || name.equals("query_tokens")) {
                for (int i = 0; i < values.length; i++) values[i] = (float) (random.nextGaussian() * INITIALISER_STD);
            } // biases stay 0
            tensors.put(name, manager.create(values, shape));
        }
        return tensors;
    }

    /**
     * Where {@link #initialiseFromBert} takes each tensor from: our name → BERT key (without a {@code bert.} prefix).
     * As LAVIS' {@code init_Qformer} (bert-base-uncased loaded into a BertLMHeadModel with cross-attention every
     * {@code cross_attention_frequency}-th layer, then {@code intermediate}/{@code output} copied to the query FFN):
     * self-attention, its output and the FFN of every layer come from BERT, the query FFN
     * ({@code intermediate_query}/{@code output_query}) from the same BERT FFN, and the top-level {@code layernorm}
     * from BERT's {@code embeddings.LayerNorm} (transformers' conversion maps LAVIS' {@code embeddings.LayerNorm},
     * which normalises [queries ; text], to {@code layernorm}). Not in the map, hence freshly initialised: every
     * {@code crossattention.*} tensor and {@code query_tokens}.
     */
    public static Map<String, String> bertSources(QFormerConfig config) {
        Map<String, String> sources = new LinkedHashMap<>();
        sources.put("layernorm.weight", "embeddings.LayerNorm.weight");
        sources.put("layernorm.bias", "embeddings.LayerNorm.bias");
        for (int layer = 0; layer < config.numHiddenLayers(); layer++) {
            String ours = "encoder.layer." + layer + ".", bert = ours;
            for (String part : List.of("query", "key", "value")) {
                for (String kind : List.of(".weight", ".bias")) {
                    sources.put(ours + "attention.attention." + part + kind, bert + "attention.self." + part + kind);
                }
            }
            for (String kind : List.of(".weight", ".bias")) {
                sources.put(ours + "attention.output.dense" + kind, bert + "attention.output.dense" + kind);
                sources.put(ours + "attention.output.LayerNorm" + kind, bert + "attention.output.LayerNorm" + kind);
                sources.put(ours + "intermediate_query.dense" + kind, bert + "intermediate.dense" + kind);
                sources.put(ours + "output_query.dense" + kind, bert + "output.dense" + kind);
                sources.put(ours + "output_query.LayerNorm" + kind, bert + "output.LayerNorm" + kind);
            }
        }
        return sources;
    }

    /**
     * A Q-Former initialised from a BERT checkpoint, BLIP-2 style ({@link #bertSources} says which tensor comes from
     * where); cross-attention and the learned queries as {@link #initialise} draws them with {@code seed}. Strict as
     * {@link BertCheckpoint}: a config, key or shape that does not fit is an error naming it.
     */
    public static QFormer initialiseFromBert(Path bert, QFormerConfig config, long seed, NDManager manager)
            throws IOException {
        try (BertCheckpoint checkpoint = BertCheckpoint.open(bert, config)) {
            return initialiseFromBert(checkpoint, config, seed, manager);
        }
    }

    /** {@link #initialiseFromBert(Path, QFormerConfig, long, NDManager)} from an opened checkpoint. */
    public static QFormer initialiseFromBert(BertCheckpoint bert, QFormerConfig config, long seed, NDManager manager)
            throws IOException {
        Map<String, Shape> shapes = expectedShapes(config);
        Map<String, NDArray> tensors = freshTensors(config, seed, manager);
        for (var entry : bertSources(config).entrySet()) {
            NDArray loaded = bert.read(entry.getValue(), shapes.get(entry.getKey()), manager);
            tensors.put(entry.getKey(), loaded).close();
        }
        return new QFormer(config, tensors, manager);
    }

    public QFormerConfig config() {
        return config;
    }

    /** The tensors themselves (not copies), keyed by transformers' names. */
    public Map<String, NDArray> tensors() {
        return tensors;
    }

    /** The learned queries (1, Q, H). */
    public NDArray queryTokens() {
        return tensors.get("query_tokens");
    }

    /**
     * Every tensor as a trainable parameter named {@code prefix + HF name} (e.g. prefix {@code "imageInterface.qformer."});
     * the values are the model's own tensors, updated in place by the optimiser.
     */
    public List<TrainableParameter> parameters(String prefix) {
        List<TrainableParameter> out = new ArrayList<>();
        tensors.forEach((name, value) -> out.add(new TrainableParameter(prefix + name, value)));
        return out;
    }

    /** Writes the tensors under their HF names; {@link #load} reads the file back. */
    public void save(Path file) throws IOException {
        List<HostTensor> host = new ArrayList<>();
        tensors.forEach((name, value) -> host.add(SafetensorsWriter.fromNDArray(name, value)));
        SafetensorsWriter.write(file, host, Map.of("format", "pt"));
    }

    /** The learned queries over image features: {@link #forward(NDArray, NDArray, NDArray)} with {@code query_tokens}. */
    public NDArray forward(NDArray imageFeatures, NDArray imageMask) {
        long batch = imageFeatures.getShape().get(0);
        NDArray queries = queryTokens().broadcast(batch, config.numQueryTokens(), config.hiddenSize()); // (B, Q, H)
        queries.attach(imageFeatures.getManager()); // a per-call tensor: lives in the caller's scope, not the model's
        return forward(queries, imageFeatures, imageMask);
    }

    /**
     * @param queryEmbeds   (B, Q, H) query embeddings (the learned {@code query_tokens} expanded, or injected ones)
     * @param imageFeatures (B, N, encoder_hidden_size) frozen image-encoder features
     * @param imageMask     (B, N) 1 for a frame/patch to attend to, 0 for padding; null when all are valid
     * @return the last hidden state (B, Q, H); results live on {@code queryEmbeds}' manager
     */
    public NDArray forward(NDArray queryEmbeds, NDArray imageFeatures, NDArray imageMask) {
        Shape queryShape = queryEmbeds.getShape();
        if (queryShape.dimension() != 3 || queryShape.get(2) != config.hiddenSize()) {
            throw new IllegalArgumentException("query embeddings must be (B, Q, " + config.hiddenSize() + "), got " + queryShape);
        }
        Shape featureShape = imageFeatures.getShape();
        if (featureShape.dimension() != 3 || featureShape.get(0) != queryShape.get(0)
                || featureShape.get(2) != config.encoderHiddenSize()) {
            throw new IllegalArgumentException("image features must be (" + queryShape.get(0) + ", N, "
                    + config.encoderHiddenSize() + "), got " + featureShape);
        }
        // step 1: LayerNorm the queries (transformers' "embeddings" for a query-only input; its dropout is omitted)
        NDArray hidden = layerNorm(queryEmbeds, "layernorm");                                         // (B, Q, H)
        NDArray crossMask = imageMask == null ? null : additiveMask(imageMask, featureShape, queryEmbeds.getManager());
        for (int layer = 0; layer < config.numHiddenLayers(); layer++) {
            String prefix = "encoder.layer." + layer + ".";
            // step 2: the queries attend to each other (no mask: every query sees every query)
            hidden = selfAttention(hidden, null, layer);
            // step 3: on cross-attention layers the queries attend to the (unmasked) image features
            if (config.hasCrossAttention(layer)) hidden = crossAttention(hidden, imageFeatures, crossMask, layer);
            // step 4: the query FFN (intermediate_query / output_query), post-norm residual as BERT
            hidden = queryFeedForward(hidden, layer);
        }
        return hidden;
    }

    // The pieces of one layer, shared with the stage-1 text path (QFormerText), which runs them on [queries ; text].

    /** The top LayerNorm ({@code layernorm}; LAVIS' embeddings LayerNorm) over (B, L, H) embeddings. */
    NDArray embeddingLayerNorm(NDArray embeddings) {
        return layerNorm(embeddings, "layernorm");
    }

    /** Layer {@code layer}'s self-attention over (B, L, H) with an additive mask broadcast to (B, heads, L, L), or none. */
    NDArray selfAttention(NDArray hidden, NDArray mask, int layer) {
        return attention(hidden, hidden, mask, "encoder.layer." + layer + ".attention.");
    }

    /** Layer {@code layer}'s cross-attention of (B, Q, H) queries to (B, N, encoder width) image features. */
    NDArray crossAttention(NDArray queries, NDArray imageFeatures, NDArray imageMask, int layer) {
        return attention(queries, imageFeatures, imageMask, "encoder.layer." + layer + ".crossattention.");
    }

    /** Layer {@code layer}'s query FFN ({@code intermediate_query}/{@code output_query}). */
    NDArray queryFeedForward(NDArray queries, int layer) {
        String prefix = "encoder.layer." + layer + ".";
        return feedForward(queries, tensors, prefix + "intermediate_query", prefix + "output_query", config);
    }

    /** BERT FFN with post-norm residual: LayerNorm(x + output(gelu(intermediate(x)))). */
    static NDArray feedForward(NDArray x, Map<String, NDArray> tensors, String intermediate, String output,
                               QFormerConfig config) {
        NDArray inner = Activation.gelu(Linear.linear(x, tensors.get(intermediate + ".dense.weight"),
                tensors.get(intermediate + ".dense.bias")).singletonOrThrow());                      // (B, L, F)
        NDArray out = Linear.linear(inner, tensors.get(output + ".dense.weight"), tensors.get(output + ".dense.bias"))
                .singletonOrThrow().add(x);                                                         // (B, L, H)
        return LayerNorm.layerNorm(out, new Shape(config.hiddenSize()), tensors.get(output + ".LayerNorm.weight"),
                tensors.get(output + ".LayerNorm.bias"), (float) config.layerNormEps()).singletonOrThrow();
    }

    /** BERT attention sub-layer: multi-head attention from {@code x} to {@code source}, dense, residual, LayerNorm. */
    private NDArray attention(NDArray x, NDArray source, NDArray mask, String prefix) {
        long batch = x.getShape().get(0), queries = x.getShape().get(1), keys = source.getShape().get(1);
        long heads = config.numAttentionHeads(), headDim = config.headDim();
        NDArray q = linear(x, prefix + "attention.query").mul(attentionScale)                      // (B, Q, H)
                .reshape(batch, queries, heads, headDim).transpose(0, 2, 1, 3);                    // (B, nh, Q, hd)
        NDArray k = linear(source, prefix + "attention.key")
                .reshape(batch, keys, heads, headDim).transpose(0, 2, 3, 1);                       // (B, nh, hd, N)
        NDArray v = linear(source, prefix + "attention.value")
                .reshape(batch, keys, heads, headDim).transpose(0, 2, 1, 3);                       // (B, nh, N, hd)
        NDArray scores = q.matMul(k);                                                              // (B, nh, Q, N)
        if (mask != null) scores = scores.add(mask);                                               // + (B, 1, 1, N)
        NDArray context = scores.softmax(-1).matMul(v)                                             // (B, nh, Q, hd)
                .transpose(0, 2, 1, 3).reshape(batch, queries, heads * headDim);                   // (B, Q, H)
        return layerNorm(linear(context, prefix + "output.dense").add(x), prefix + "output.LayerNorm");
    }

    /**
     * (B, N) keep-mask → additive (B, 1, 1, N): 0 where kept, {@link TransformerOps#MASKED} where masked. transformers
     * adds the float minimum instead; both make the masked probabilities exactly 0 in float32. Built on the host: the
     * mask carries no gradient.
     */
    private static NDArray additiveMask(NDArray imageMask, Shape featureShape, NDManager manager) {
        long batch = featureShape.get(0), frames = featureShape.get(1);
        if (!imageMask.getShape().equals(new Shape(batch, frames))) {
            throw new IllegalArgumentException("image mask must be (" + batch + ", " + frames + "), got " + imageMask.getShape());
        }
        float[] keep = imageMask.toType(DataType.FLOAT32, false).toFloatArray();
        float[] additive = new float[keep.length];
        for (int i = 0; i < keep.length; i++) additive[i] = keep[i] != 0f ? 0f : TransformerOps.MASKED;
        return manager.create(additive, new Shape(batch, 1, 1, frames));
    }

    private NDArray linear(NDArray x, String name) {
        return Linear.linear(x, tensors.get(name + ".weight"), tensors.get(name + ".bias")).singletonOrThrow();
    }

    private NDArray layerNorm(NDArray x, String name) {
        return LayerNorm.layerNorm(x, new Shape(config.hiddenSize()), tensors.get(name + ".weight"),
                tensors.get(name + ".bias"), (float) config.layerNormEps()).singletonOrThrow();
    }
}
