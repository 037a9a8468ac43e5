package xllm.x2l;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.Shape;
import ai.djl.ndarray.types.SparseFormat;
import ai.djl.nn.Activation;
import ai.djl.nn.core.Embedding;
import ai.djl.nn.core.Linear;
import ai.djl.nn.norm.LayerNorm;
import xllm.tensor.TransformerOps;
import xllm.tensor.TrainableParameter;

import java.io.IOException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

/**
 * The text side of the BLIP-2 Q-Former that only stage-1 pre-training uses (Li et al. 2023 §3.1–3.2; LAVIS
 * {@code Qformer.py}, a BERT run on [queries ; text]): word and position embeddings, each layer's text FFN
 * ({@code intermediate}/{@code output}; the queries have their own, {@code intermediate_query}/{@code output_query}
 * in {@link QFormer}), and BERT's masked-LM prediction head (dense + gelu + LayerNorm, decoder tied to the word
 * embeddings) for image-grounded text generation. {@link #encode} runs [queries ; text] through the shared layers of a
 * {@link QFormer}: self-attention over the whole sequence under one of BLIP-2's three {@link Mask}s, cross-attention
 * and the query FFN for the query positions only, the text FFN for the text positions. Embeddings are normalised by
 * the Q-Former's top {@code layernorm} (LAVIS' embeddings LayerNorm, shared by queries and text); text has no
 * token-type embedding and its positions start at 0, as in LAVIS.
 *
 * <p>The vocabulary is BERT's plus one appended row, {@link #decoderTokenId()}: LAVIS adds a {@code [DEC]} token that
 * replaces {@code [CLS]} for generation; BERT/MiniLM have none, so it is a new row drawn N(0, 0.02), as
 * {@code resize_token_embeddings} does. The prediction head's bias has the same extra entry.
 *
 * <p>{@code QFormerTextTest} checks the text-only pass against transformers' {@code BertModel} with the same weights
 * (token types zeroed), and that the masks hide what they should.
 */
public final class QFormerText {

    /** BLIP-2's self-attention masks over [queries ; text] (its Fig. 2, right). */
    public enum Mask {
        /** Image-text contrastive: queries see queries, text sees text; neither sees the other. */
        UNIMODAL,
        /** Image-text matching: every position sees every (non-padding) position. */
        BIDIRECTIONAL,
        /** Image-grounded generation: queries see queries; text position t sees all queries and text 0..t. */
        MULTIMODAL_CAUSAL
    }

    private final QFormerConfig config;
    private final int vocabulary;            // BERT's vocabulary; one more row ([DEC]) follows it
    private final Map<String, NDArray> tensors;

    private QFormerText(QFormerConfig config, int vocabulary, Map<String, NDArray> tensors) {
        this.config = config;
        this.vocabulary = vocabulary;
        this.tensors = Collections.unmodifiableMap(tensors);
    }

    /** Every tensor name and shape for a BERT vocabulary of {@code vocabulary} and {@code positions} positions. */
    public static Map<String, Shape> expectedShapes(QFormerConfig config, int vocabulary, int positions) {
        long hidden = config.hiddenSize(), inner = config.intermediateSize();
        Map<String, Shape> shapes = new LinkedHashMap<>();
        shapes.put("embeddings.word_embeddings.weight", new Shape(vocabulary + 1, hidden));
        shapes.put("embeddings.position_embeddings.weight", new Shape(positions, hidden));
        for (int layer = 0; layer < config.numHiddenLayers(); layer++) {
            String prefix = "encoder.layer." + layer + ".";
            shapes.put(prefix + "intermediate.dense.weight", new Shape(inner, hidden));
            shapes.put(prefix + "intermediate.dense.bias", new Shape(inner));
            shapes.put(prefix + "output.dense.weight", new Shape(hidden, inner));
            shapes.put(prefix + "output.dense.bias", new Shape(hidden));
            shapes.put(prefix + "output.LayerNorm.weight", new Shape(hidden));
            shapes.put(prefix + "output.LayerNorm.bias", new Shape(hidden));
        }
        shapes.put("cls.predictions.transform.dense.weight", new Shape(hidden, hidden));
        shapes.put("cls.predictions.transform.dense.bias", new Shape(hidden));
        shapes.put("cls.predictions.transform.LayerNorm.weight", new Shape(hidden));
        shapes.put("cls.predictions.transform.LayerNorm.bias", new Shape(hidden));
        shapes.put("cls.predictions.bias", new Shape(vocabulary + 1));
        return shapes;
    }

    /** Random BERT initialisation: weights and embeddings N(0, 0.02), biases 0, LayerNorm 1 and 0. */
    public static QFormerText initialise(QFormerConfig config, int vocabulary, int positions, long seed,
                                         NDManager manager) {
        Random random = new Random(seed);
        Map<String, NDArray> tensors = new LinkedHashMap<>();
        for (var entry : expectedShapes(config, vocabulary, positions).entrySet()) {
            String name = entry.getKey();
            float[] values = new float[Math.toIntExact(entry.getValue().size())];
            if (name.endsWith("LayerNorm.weight")) {
                Arrays.fill(values, 1f);
            } else if (name.endsWith(".weight")) {
                for (int i = 0; i < values.length; i++) values[i] = (float) (random.nextGaussian() * QFormer.INITIALISER_STD);
            }
            tensors.put(name, manager.create(values, entry.getValue()));
        }
        return new QFormerText(config, vocabulary, tensors);
    }

    /**
     * Where {@link #initialiseFromBert} takes each tensor from (our name → BERT key without {@code bert.}): the word
     * embeddings (all rows but the appended [DEC]), position embeddings, each layer's FFN; the prediction head
     * ({@code cls.predictions.*}) only when the checkpoint has one (BertForMaskedLM / BertForPreTraining; a
     * sentence-embedding BertModel such as MiniLM has none, and the head starts fresh).
     */
    public static Map<String, String> bertSources(QFormerConfig config) {
        Map<String, String> sources = new LinkedHashMap<>();
        sources.put("embeddings.word_embeddings.weight", "embeddings.word_embeddings.weight");
        sources.put("embeddings.position_embeddings.weight", "embeddings.position_embeddings.weight");
        for (int layer = 0; layer < config.numHiddenLayers(); layer++) {
            String prefix = "encoder.layer." + layer + ".";
            for (String name : List.of("intermediate.dense.weight", "intermediate.dense.bias", "output.dense.weight",
                    "output.dense.bias", "output.LayerNorm.weight", "output.LayerNorm.bias")) {
                sources.put(prefix + name, prefix + name);
            }
        }
        for (String name : List.of("cls.predictions.transform.dense.weight", "cls.predictions.transform.dense.bias",
                "cls.predictions.transform.LayerNorm.weight", "cls.predictions.transform.LayerNorm.bias",
                "cls.predictions.bias")) {
            sources.put(name, name);
        }
        return sources;
    }

    /**
     * The text side initialised from a BERT checkpoint as {@link #bertSources} says; the [DEC] row (and its bias) and
     * a missing prediction head drawn as {@link #initialise} draws them from {@code seed}.
     */
    public static QFormerText initialiseFromBert(BertCheckpoint bert, QFormerConfig config, long seed, NDManager manager)
            throws IOException {
        long[] words = bert.shape("embeddings.word_embeddings.weight");
        long[] positions = bert.shape("embeddings.position_embeddings.weight");
        if (words.length != 2 || positions.length != 2) {
            throw new IllegalArgumentException(bert.source() + ": BERT embeddings must be 2-D, got "
                    + Arrays.toString(words) + " and " + Arrays.toString(positions));
        }
        int vocabulary = Math.toIntExact(words[0]);
        Map<String, Shape> shapes = expectedShapes(config, vocabulary, Math.toIntExact(positions[0]));
        Map<String, NDArray> tensors = new LinkedHashMap<>(
                initialise(config, vocabulary, Math.toIntExact(positions[0]), seed, manager).tensors);
        for (var entry : bertSources(config).entrySet()) {
            String name = entry.getKey();
            if (name.startsWith("cls.") && !bert.contains(entry.getValue())) continue; // no head in the checkpoint
            Shape shape = shapes.get(name);
            boolean extended = name.equals("embeddings.word_embeddings.weight") || name.equals("cls.predictions.bias");
            Shape bertShape = extended ? new Shape(vocabulary).addAll(shape.slice(1)) : shape;
            NDArray loaded = bert.read(entry.getValue(), bertShape, manager);
            NDArray value = loaded;
            if (extended) { // BERT's rows, then the [DEC] row / bias entry kept from the fresh draw
                NDArray decoderRow = tensors.get(name).get(new NDIndex("{}:", vocabulary));
                value = NDArrays.concat(new ai.djl.ndarray.NDList(loaded, decoderRow), 0);
                loaded.close();
                decoderRow.close();
            }
            tensors.put(name, value).close();
        }
        return new QFormerText(config, vocabulary, tensors);
    }

    public QFormerConfig config() {
        return config;
    }

    /** The tensors themselves (not copies). */
    public Map<String, NDArray> tensors() {
        return tensors;
    }

    /** Size of the BERT vocabulary the tokenizer produces ids of; the output vocabulary is one more. */
    public int vocabulary() {
        return vocabulary;
    }

    /** Id of the appended [DEC] token that replaces [CLS] at position 0 for generation. */
    public long decoderTokenId() {
        return vocabulary;
    }

    public int maxPositions() {
        return Math.toIntExact(tensors.get("embeddings.position_embeddings.weight").getShape().get(0));
    }

    /** Every tensor as a trainable parameter named {@code prefix + name}; the values are this model's own tensors. */
    public List<TrainableParameter> parameters(String prefix) {
        List<TrainableParameter> out = new ArrayList<>();
        tensors.forEach((name, value) -> out.add(new TrainableParameter(prefix + name, value)));
        return out;
    }

    /**
     * [queries ; text] through the Q-Former's layers.
     *
     * @param qformer       the shared layers (self-attention, cross-attention, query FFN, top LayerNorm)
     * @param queries       (B, Q, H) query embeddings, or null for a text-only pass
     * @param tokenIds      (B, T) int64 token ids
     * @param imageFeatures (B, N, encoder width) features the queries cross-attend to; null only without queries
     * @param mask          additive (B, 1, Q + T, Q + T) self-attention mask, e.g. from {@link #mask}
     * @return (B, Q + T, H) last hidden states; results live on {@code tokenIds}' manager
     */
    public NDArray encode(QFormer qformer, NDArray queries, NDArray tokenIds, NDArray imageFeatures, NDArray mask) {
        if (!qformer.config().equals(config)) {
            throw new IllegalArgumentException("Q-Former config " + qformer.config() + " differs from the text side's " + config);
        }
        long batch = tokenIds.getShape().get(0), textLength = tokenIds.getShape().get(1);
        int queryCount = queries == null ? 0 : Math.toIntExact(queries.getShape().get(1));
        if (textLength > maxPositions()) {
            throw new IllegalArgumentException("text of " + textLength + " tokens exceeds the " + maxPositions() + " positions");
        }
        if (queries != null && (queries.getShape().get(0) != batch || imageFeatures == null
                || imageFeatures.getShape().get(0) != batch)) {
            throw new IllegalArgumentException("queries " + queries.getShape() + ", image features "
                    + (imageFeatures == null ? "none" : imageFeatures.getShape()) + " and text " + tokenIds.getShape()
                    + " must share the batch size");
        }
        Shape maskShape = new Shape(batch, 1, queryCount + textLength, queryCount + textLength);
        if (!mask.getShape().equals(maskShape)) {
            throw new IllegalArgumentException("mask must be " + maskShape + ", got " + mask.getShape());
        }
        // step 1: word + position embeddings, after the queries, through the shared LayerNorm
        NDArray words = Embedding.embedding(tokenIds, tensors.get("embeddings.word_embeddings.weight"),
                SparseFormat.DENSE).singletonOrThrow();                                            // (B, T, H)
        NDArray text = words.add(tensors.get("embeddings.position_embeddings.weight")
                .get(new NDIndex("0:{}", textLength)));                                           // + (T, H)
        NDArray hidden = qformer.embeddingLayerNorm(queries == null ? text
                : NDArrays.concat(new ai.djl.ndarray.NDList(queries, text), 1));                  // (B, Q + T, H)
        for (int layer = 0; layer < config.numHiddenLayers(); layer++) {
            // step 2: self-attention over [queries ; text] under the mask
            hidden = qformer.selfAttention(hidden, mask, layer);
            if (queryCount == 0) {
                hidden = textFeedForward(hidden, layer);
                continue;
            }
            // step 3: query positions cross-attend to the image and take the query FFN; text positions the text FFN
            NDArray queryPart = hidden.get(new NDIndex(":, 0:{}", queryCount));                   // (B, Q, H)
            NDArray textPart = hidden.get(new NDIndex(":, {}:", queryCount));                     // (B, T, H)
            if (config.hasCrossAttention(layer)) queryPart = qformer.crossAttention(queryPart, imageFeatures, null, layer);
            hidden = NDArrays.concat(new ai.djl.ndarray.NDList(qformer.queryFeedForward(queryPart, layer),
                    textFeedForward(textPart, layer)), 1);
        }
        return hidden;
    }

    private NDArray textFeedForward(NDArray text, int layer) {
        String prefix = "encoder.layer." + layer + ".";
        return QFormer.feedForward(text, tensors, prefix + "intermediate", prefix + "output", config);
    }

    /**
     * BERT's prediction head: LayerNorm(gelu(dense(x))) · word_embeddingsᵀ + bias.
     *
     * @param hidden (N, H) text hidden states
     * @return (N, vocabulary + 1) logits
     */
    public NDArray predictionLogits(NDArray hidden) {
        NDArray transformed = Activation.gelu(Linear.linear(hidden, tensors.get("cls.predictions.transform.dense.weight"),
                tensors.get("cls.predictions.transform.dense.bias")).singletonOrThrow());
        transformed = LayerNorm.layerNorm(transformed, new Shape(config.hiddenSize()),
                tensors.get("cls.predictions.transform.LayerNorm.weight"),
                tensors.get("cls.predictions.transform.LayerNorm.bias"), (float) config.layerNormEps()).singletonOrThrow();
        return transformed.matMul(tensors.get("embeddings.word_embeddings.weight").transpose())  // (N, V + 1)
                .add(tensors.get("cls.predictions.bias"));
    }

    /**
     * The additive (B, 1, Q + T, Q + T) self-attention mask of {@code kind}: 0 where a position may attend,
     * {@link TransformerOps#MASKED} where not. Text positions at or beyond a row's length are padding and hidden from
     * every position (their own rows still attend somewhere, so no row is all masked). Built on the host: no gradient.
     *
     * @param textLengths valid tokens per row (each ≥ 1)
     */
    public static NDArray mask(Mask kind, int queryCount, int[] textLengths, int textWidth, NDManager manager) {
        int batch = textLengths.length, length = queryCount + textWidth;
        float[] mask = new float[batch * length * length];
        for (int b = 0; b < batch; b++) {
            if (textLengths[b] < 1 || textLengths[b] > textWidth) {
                throw new IllegalArgumentException("text length " + textLengths[b] + " of row " + b
                        + " is not within 1.." + textWidth);
            }
            for (int row = 0; row < length; row++) {
                boolean rowIsQuery = row < queryCount;
                for (int col = 0; col < length; col++) {
                    boolean colIsQuery = col < queryCount;
                    boolean visible;
                    if (!colIsQuery && col - queryCount >= textLengths[b]) {
                        visible = false;                                    // padding
                    } else if (rowIsQuery) {
                        visible = colIsQuery || kind == Mask.BIDIRECTIONAL;
                    } else if (colIsQuery) {
                        visible = kind != Mask.UNIMODAL;
                    } else {
                        visible = kind != Mask.MULTIMODAL_CAUSAL || col <= row;
                    }
                    mask[(b * length + row) * length + col] = visible ? 0f : TransformerOps.MASKED;
                }
            }
        }
        return manager.create(mask, new Shape(batch, 1, length, length));
    }
}
