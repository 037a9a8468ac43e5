package xllm.vision;

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
import xllm.tensor.HostTensor;
import xllm.tensor.Safetensors;
import xllm.tensor.pickle.TorchCheckpoint;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Collection;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Function;
import java.util.function.Predicate;

/**
 * A CLIP-style Vision Transformer (Radford et al. 2021; the ViT family BLIP-2 and X-LLM take their frozen image
 * encoder from, paper §3.1) as a frozen, inference-only {@link VisionEncoder}: patch embedding (a p×p/p conv
 * without bias), a learned class token and position embeddings, {@code pre_layrnorm}, pre-norm transformer layers
 * (LayerNorm → multi-head self-attention → residual, LayerNorm → fc1 → quick_gelu or gelu → fc2 → residual), and
 * {@code post_layernorm} on the class token for {@link #pooled}.
 *
 * <p>Matches transformers' {@code CLIPVisionModel} ({@code modeling_clip.py}) in eval mode, and loads its
 * checkpoints strictly under the same names ({@code vision_model.embeddings.patch_embedding.weight},
 * {@code vision_model.encoder.layers.N.self_attn.q_proj.weight}, …): a missing tensor, an unexpected one or a shape
 * mismatch is an error naming the file and the key. Two exceptions, by name only: the old non-persistent buffer
 * {@code vision_model.embeddings.position_ids}, and — only when {@code config.json} is a whole {@code CLIPConfig}
 * (it has a {@code vision_config}) — the text tower and projections of a {@code CLIPModel} ({@code text_model.*},
 * {@code text_projection.weight}, {@code visual_projection.weight}, {@code logit_scale}), which belong to no
 * vision encoder. Inputs must be image_size × image_size (no position-embedding interpolation).
 *
 * <p>{@link #features} are the hidden states of all tokens (class token first) after the penultimate layer,
 * without {@code post_layernorm}: transformers' {@code hidden_states[-2]}, what BLIP-2 feeds its Q-Former (EVA
 * ViT-g with the last layer removed) and LLaVA its projector; {@link FeatureLayer#LAST} gives
 * {@code last_hidden_state} instead. Only the layers needed are run.
 *
 * <p>Tested by {@code ClipVisionEncoderTest} against tiny random transformers models (quick_gelu and gelu) from
 * {@code tools/reference/make_clip_fixtures.py}: penultimate and last hidden states and the pooled output, from
 * safetensors, from a {@code .pth} and from a whole {@code CLIPModel}.
 */
public final class ClipVisionEncoder implements VisionEncoder {

    /** Which hidden states {@link #features} returns. */
    public enum FeatureLayer {
        /** Output of the second-to-last layer ({@code hidden_states[-2]}; BLIP-2, LLaVA). */
        PENULTIMATE,
        /** Output of the last layer before {@code post_layernorm} ({@code last_hidden_state}). */
        LAST
    }

    private static final String PREFIX = "vision_model.";
    /** Keys a CLIPVisionModel checkpoint may carry that hold no weight (a buffer saved by older transformers). */
    private static final Set<String> IGNORED_BUFFERS = Set.of(PREFIX + "embeddings.position_ids");
    /** The rest of a whole CLIPModel checkpoint, skipped only when loading from one. */
    private static final Predicate<String> CLIP_MODEL_OTHERS = key -> key.startsWith("text_model.")
            || key.equals("text_projection.weight") || key.equals("visual_projection.weight") || key.equals("logit_scale");
    private static final ObjectMapper JSON = new ObjectMapper();

    private final ClipVisionConfig config;
    private final FeatureLayer featureLayer;
    private final NDManager weights;
    private final Map<String, NDArray> tensors;   // names without "vision_model." → float32 tensors
    private final NDArray patchProjection;        // (C·p·p, D): patch_embedding.weight flattened and transposed
    private final NDArray classEmbedding;         // (1, 1, D)
    private final NDArray attentionScale;         // () 1/√head_dim
    private final NDArray quickGeluScale;         // () 1.702
    private final List<Path> weightFiles;         // hashed for identity()
    private final ImageTransforms transforms;
    private String identity;

    private ClipVisionEncoder(ClipVisionConfig config, FeatureLayer featureLayer, NDManager weights,
                              Map<String, NDArray> tensors, List<Path> weightFiles) {
        this.config = config;
        this.featureLayer = featureLayer;
        this.weights = weights;
        this.tensors = tensors;
        this.weightFiles = weightFiles;
        long patchValues = (long) config.numChannels() * config.patchSize() * config.patchSize();
        this.patchProjection = tensors.get("embeddings.patch_embedding.weight")
                .reshape(config.hiddenSize(), patchValues).transpose().duplicate();   // (C·p·p, D)
        this.classEmbedding = tensors.get("embeddings.class_embedding").reshape(1, 1, config.hiddenSize());
        this.attentionScale = weights.create((float) (1.0 / Math.sqrt(config.headDim())));
        this.quickGeluScale = weights.create(1.702f);
        this.transforms = ImageTransforms.clip(config.imageSize());
    }

    /** Every tensor name (under {@code vision_model.}) and shape of a CLIPVisionModel with this config. */
    public static Map<String, Shape> expectedShapes(ClipVisionConfig config) {
        long hidden = config.hiddenSize(), inner = config.intermediateSize(), patch = config.patchSize();
        Map<String, Shape> shapes = new LinkedHashMap<>();
        shapes.put("embeddings.class_embedding", new Shape(hidden));
        shapes.put("embeddings.patch_embedding.weight", new Shape(hidden, config.numChannels(), patch, patch));
        shapes.put("embeddings.position_embedding.weight", new Shape(config.numPositions(), hidden));
        normShapes(shapes, "pre_layrnorm", hidden);
        for (int layer = 0; layer < config.numHiddenLayers(); layer++) {
            String prefix = "encoder.layers." + layer + ".";
            for (String projection : new String[] {"k_proj", "v_proj", "q_proj", "out_proj"}) {
                linearShapes(shapes, prefix + "self_attn." + projection, hidden, hidden);
            }
            normShapes(shapes, prefix + "layer_norm1", hidden);
            linearShapes(shapes, prefix + "mlp.fc1", inner, hidden);
            linearShapes(shapes, prefix + "mlp.fc2", hidden, inner);
            normShapes(shapes, prefix + "layer_norm2", hidden);
        }
        normShapes(shapes, "post_layernorm", hidden);
        return shapes;
    }

    private static void linearShapes(Map<String, Shape> shapes, String name, long out, long in) {
        shapes.put(name + ".weight", new Shape(out, in));
        shapes.put(name + ".bias", new Shape(out));
    }

    private static void normShapes(Map<String, Shape> shapes, String name, long width) {
        shapes.put(name + ".weight", new Shape(width));
        shapes.put(name + ".bias", new Shape(width));
    }

    /**
     * Loads a transformers directory: {@code config.json} (a {@code CLIPVisionConfig}, or a whole {@code CLIPConfig}
     * whose {@code vision_config} is used) and its safetensors (a single file or a sharded index). Weights live in a
     * sub-manager of {@code manager}, released by {@link #close()}.
     */
    public static ClipVisionEncoder load(Path directory, FeatureLayer featureLayer, NDManager manager) throws IOException {
        Path configFile = directory.resolve("config.json");
        if (!Files.isRegularFile(configFile)) throw new IOException(directory + ": no config.json");
        JsonNode root;
        ClipVisionConfig config;
        try {
            root = JSON.readTree(configFile.toFile());
            config = ClipVisionConfig.fromJson(root);
        } catch (IOException e) {
            throw new IOException(configFile + ": cannot read a CLIP vision config: " + e.getMessage(), e);
        }
        boolean fullClip = ClipVisionConfig.isFullClip(root);
        try (Safetensors file = Safetensors.open(directory)) {
            TensorSource source = new TensorSource(file.source(), file.names(), file::shape, file::get);
            return build(source, config, featureLayer, fullClip, weightFiles(directory), manager);
        }
    }

    /**
     * Loads a {@code torch.save}d CLIPVisionModel state dict ({@code vision_model.*} keys) with the given config;
     * as strict as {@link #load} (the text keys of a whole CLIPModel are refused here: there is no config to say
     * the file is one).
     */
    public static ClipVisionEncoder loadPth(Path pth, ClipVisionConfig config, FeatureLayer featureLayer,
                                            NDManager manager) throws IOException {
        Map<String, HostTensor> state = TorchCheckpoint.read(pth);
        TensorSource source = new TensorSource(pth, state.keySet(), name -> state.get(name).shape(), state::get);
        return build(source, config, featureLayer, false, List.of(pth), manager);
    }

    /** Names, shapes and tensors of a checkpoint file, whatever its format. */
    private record TensorSource(Path path, Collection<String> names, Function<String, long[]> shape,
                                Function<String, HostTensor> tensor) {}

    private static ClipVisionEncoder build(TensorSource source, ClipVisionConfig config, FeatureLayer featureLayer,
                                           boolean fullClip, List<Path> weightFiles, NDManager manager)
            throws IOException {
        Map<String, Shape> expected = expectedShapes(config);
        // step 1: every key of the file is ours, an allowed buffer, or (whole CLIPModel only) the text tower
        for (String key : source.names()) {
            boolean ours = key.startsWith(PREFIX) && expected.containsKey(key.substring(PREFIX.length()));
            if (!ours && !IGNORED_BUFFERS.contains(key) && !(fullClip && CLIP_MODEL_OTHERS.test(key))) {
                throw new IOException(source.path() + ": unexpected tensor '" + key + "' (not a CLIPVisionModel "
                        + "parameter for " + config + ")");
            }
        }
        // step 2: every expected key is there with its shape
        Set<String> present = new HashSet<>(source.names());
        for (var entry : expected.entrySet()) {
            String key = PREFIX + entry.getKey();
            if (!present.contains(key)) throw new IOException(source.path() + ": missing tensor '" + key + "'");
            long[] shape = source.shape().apply(key);
            if (!Arrays.equals(shape, entry.getValue().getShape())) {
                throw new IOException(source.path() + ": tensor '" + key + "' has shape " + Arrays.toString(shape)
                        + ", expected " + entry.getValue() + " for " + config);
            }
        }
        // step 3: float32 copies in the encoder's own manager
        NDManager weights = manager.newSubManager();
        try {
            Map<String, NDArray> tensors = new HashMap<>();
            for (String name : expected.keySet()) {
                tensors.put(name, source.tensor().apply(PREFIX + name).toFloatNDArray(weights));
            }
            return new ClipVisionEncoder(config, featureLayer, weights, Map.copyOf(tensors), weightFiles);
        } catch (RuntimeException e) {
            weights.close();
            throw e;
        }
    }

    private static List<Path> weightFiles(Path directory) throws IOException {
        try (var listing = Files.list(directory)) {
            return listing.filter(p -> p.getFileName().toString().endsWith(".safetensors")).sorted().toList();
        }
    }

    public ClipVisionConfig config() {
        return config;
    }

    public FeatureLayer featureLayer() {
        return featureLayer;
    }

    @Override
    public long[] inputShape() {
        return new long[] {config.numChannels(), config.imageSize(), config.imageSize()};
    }

    /** (grid² + 1, hidden_size): every patch token and the class token. */
    @Override
    public long[] featureShape() {
        return new long[] {config.numPositions(), config.hiddenSize()};
    }

    /** CLIP preprocessing at image_size: bicubic resize of the shorter side, center crop, CLIP mean/std. */
    @Override
    public ImageTransforms transforms() {
        return transforms;
    }

    /** e.g. {@code "clip-vit hidden=1024 layers=24 heads=16 patch=14 image=224 act=quick_gelu features=penultimate sha256=…"}. */
    @Override
    public synchronized String identity() {
        if (identity == null) {
            StringBuilder text = new StringBuilder("clip-vit hidden=" + config.hiddenSize() + " layers="
                    + config.numHiddenLayers() + " heads=" + config.numAttentionHeads() + " patch=" + config.patchSize()
                    + " image=" + config.imageSize() + " act=" + config.hiddenAct() + " features="
                    + featureLayer.name().toLowerCase());
            for (Path file : weightFiles) {
                try {
                    text.append(weightFiles.size() == 1 ? " sha256=" : " " + file.getFileName() + ":sha256=")
                            .append(xllm.tensor.FileDigest.sha256(file));
                } catch (IOException e) {
                    throw new UncheckedIOException(file + ": cannot hash the weights for the encoder identity", e);
                }
            }
            identity = text.toString();
        }
        return identity;
    }

    /**
     * Images (B, 3, S, S) → (B, grid² + 1, D): the hidden states of {@link #featureLayer()} (class token first).
     * The result belongs to the images' manager; intermediates are freed before returning.
     */
    @Override
    public NDArray features(NDArray images) {
        int layers = featureLayer == FeatureLayer.LAST ? config.numHiddenLayers() : config.numHiddenLayers() - 1;
        NDManager caller = images.getManager();
        try (NDManager scope = caller.newSubManager()) {
            images.tempAttach(scope);
            NDArray hidden = hiddenStates(images, layers, scope);
            hidden.attach(caller);
            return hidden;
        }
    }

    /** transformers' {@code pooler_output}: {@code post_layernorm} of the last layer's class token, (B, D). */
    public NDArray pooled(NDArray images) {
        NDManager caller = images.getManager();
        try (NDManager scope = caller.newSubManager()) {
            images.tempAttach(scope);
            NDArray hidden = hiddenStates(images, config.numHiddenLayers(), scope);      // (B, T, D)
            NDArray classToken = hidden.get(new NDIndex(":, 0, :"));                     // (B, D)
            NDArray result = layerNorm(classToken, "post_layernorm");
            result.attach(caller);
            return result;
        }
    }

    /** Embeddings, pre_layrnorm and the first {@code layers} transformer layers; the result lives in {@code scope}. */
    private NDArray hiddenStates(NDArray images, int layers, NDManager scope) {
        Shape shape = images.getShape();
        int size = config.imageSize(), patch = config.patchSize(), grid = config.gridSize();
        if (shape.dimension() != 4 || shape.get(1) != config.numChannels() || shape.get(2) != size || shape.get(3) != size) {
            throw new IllegalArgumentException("images must be (B, " + config.numChannels() + ", " + size + ", " + size
                    + "), got " + shape);
        }
        long batch = shape.get(0);
        long hiddenSize = config.hiddenSize();
        // step 1: patch embedding, the conv with kernel = stride = p written as a matmul over flattened patches
        NDArray patches = images.reshape(batch, config.numChannels(), grid, patch, grid, patch)  // (B, C, g, p, g, p)
                .transpose(0, 2, 4, 1, 3, 5)                                                     // (B, g, g, C, p, p)
                .reshape(batch, (long) grid * grid, (long) config.numChannels() * patch * patch)  // (B, g², C·p·p)
                .matMul(patchProjection);                                                        // (B, g², D)
        // step 2: class token first, then position embeddings
        NDArray classToken = classEmbedding.broadcast(batch, 1, hiddenSize);                    // (B, 1, D)
        classToken.attach(scope); // an op on a weight lands in the weights' manager; this one is per call
        NDArray hidden = NDArrays.concat(new NDList(classToken, patches), 1)                     // (B, T, D)
                .add(tensors.get("embeddings.position_embedding.weight"));                       // + (T, D)
        // step 3: pre_layrnorm
        hidden = layerNorm(hidden, "pre_layrnorm");
        // step 4: transformer layers, each in its own scope so a layer's intermediates are freed as it ends
        for (int layer = 0; layer < layers; layer++) {
            try (NDManager step = scope.newSubManager()) {
                hidden.attach(step);
                NDArray next = layer(hidden, "encoder.layers." + layer + ".");
                next.attach(scope);
                hidden = next;
            }
        }
        return hidden;
    }

    /** One pre-norm layer: x + attention(LN1(x)), then + fc2(act(fc1(LN2(·)))). */
    private NDArray layer(NDArray x, String prefix) {
        NDArray attended = x.add(selfAttention(layerNorm(x, prefix + "layer_norm1"), prefix + "self_attn."));
        NDArray inner = activation(linear(layerNorm(attended, prefix + "layer_norm2"), prefix + "mlp.fc1")); // (B, T, F)
        return attended.add(linear(inner, prefix + "mlp.fc2"));                                            // (B, T, D)
    }

    /** Multi-head self-attention over all tokens (no mask), CLIPAttention. */
    private NDArray selfAttention(NDArray x, String prefix) {
        long batch = x.getShape().get(0), tokens = x.getShape().get(1);
        long heads = config.numAttentionHeads(), headDim = config.headDim();
        NDArray q = linear(x, prefix + "q_proj").mul(attentionScale)                       // (B, T, D)
                .reshape(batch, tokens, heads, headDim).transpose(0, 2, 1, 3);             // (B, nh, T, hd)
        NDArray k = linear(x, prefix + "k_proj")
                .reshape(batch, tokens, heads, headDim).transpose(0, 2, 3, 1);             // (B, nh, hd, T)
        NDArray v = linear(x, prefix + "v_proj")
                .reshape(batch, tokens, heads, headDim).transpose(0, 2, 1, 3);             // (B, nh, T, hd)
        NDArray context = q.matMul(k).softmax(-1).matMul(v)                                // (B, nh, T, hd)
                .transpose(0, 2, 1, 3).reshape(batch, tokens, heads * headDim);            // (B, T, D)
        return linear(context, prefix + "out_proj");
    }

    private NDArray activation(NDArray x) {
        if (config.hiddenAct().equals("quick_gelu")) {
            return x.mul(Activation.sigmoid(x.mul(quickGeluScale)));                       // x·σ(1.702x)
        }
        return Activation.gelu(x);                                                         // exact (erf) GELU
    }

    private NDArray linear(NDArray x, String name) {
        return Linear.linear(x, tensors.get(name + ".weight"), tensors.get(name + ".bias")).singletonOrThrow();
    }

    private NDArray layerNorm(NDArray x, String name) {
        return LayerNorm.layerNorm(x, new Shape(config.hiddenSize()), tensors.get(name + ".weight"),
                tensors.get(name + ".bias"), (float) config.layerNormEps()).singletonOrThrow();
    }

    @Override
    public void close() {
        weights.close();
    }
}
