package xllm.x2l;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.Shape;
import ai.djl.ndarray.types.SparseFormat;
import ai.djl.nn.core.Embedding;
import ai.djl.nn.core.Linear;
import xllm.tensor.TrainableParameter;

import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

/**
 * BLIP-2 stage-1 vision-language representation learning (Li et al. 2023 §3.2, Fig. 2; LAVIS
 * {@code blip2_qformer.py} {@code Blip2Qformer.forward}): a {@link QFormer} with its stage-1 {@link QFormerText}
 * trained on image-caption pairs by three objectives that share the layers and differ in the self-attention mask.
 * <ol>
 *   <li>Image-text contrastive (ITC, uni-modal mask): queries and text projected to {@code embedDim} and
 *       L2-normalised; image-text similarity = the maximum over the queries; divided by a learned temperature (init
 *       0.07, clamped to [0.001, 0.5]); in-batch negatives; symmetric cross-entropy with label smoothing 0.1 (as
 *       LAVIS).</li>
 *   <li>Image-text matching (ITM, bi-directional mask): per text one hard-negative image and per image one
 *       hard-negative text, sampled within the batch in proportion to the softmaxed ITC similarities (host side, no
 *       gradient through the sampling); a linear 2-class head on each query output, averaged over the queries;
 *       cross-entropy over the B positive and 2B negative pairs. Needs a batch of at least 2.</li>
 *   <li>Image-grounded text generation (ITG, multimodal-causal mask): [DEC] replaces [CLS]; next-token cross-entropy
 *       with label smoothing 0.1 over the caption tokens (each predicted from the ones before and all queries).</li>
 * </ol>
 * Tensor names follow transformers' {@code Blip2ForImageTextRetrieval} ({@code vision_projection},
 * {@code text_projection}, {@code itm_head}) plus LAVIS' {@code temp}. Dropout is not applied (the Q-Former is
 * evaluated as in {@link QFormer}). ITC, ITM and ITG are computed in three passes, as LAVIS: ITC's single pass over
 * [queries ; text] under the uni-modal mask equals LAVIS' separate image and text passes ({@code QFormerTextTest}).
 */
public final class QFormerPretraining {

    /** Width of the ITC projections (LAVIS {@code embed_dim}). */
    public static final int DEFAULT_EMBED_DIM = 256;
    /** Initial ITC temperature (LAVIS {@code temp}). */
    public static final float INITIAL_TEMPERATURE = 0.07f;
    /** Label smoothing of the ITC and ITG cross-entropies (LAVIS). */
    public static final float LABEL_SMOOTHING = 0.1f;

    /** The individual objectives of one batch (scalars; {@code matching} null for a batch of one). */
    public record Losses(NDArray contrastive, NDArray matching, NDArray generation) {
        /** ITC + ITM + ITG, as BLIP-2 sums them. */
        public NDArray total() {
            NDArray sum = contrastive.add(generation);
            return matching == null ? sum : sum.add(matching);
        }
    }

    private final QFormer qformer;
    private final QFormerText text;
    private final Map<String, NDArray> heads; // vision_projection, text_projection, itm_head, temp

    private QFormerPretraining(QFormer qformer, QFormerText text, Map<String, NDArray> heads) {
        this.qformer = qformer;
        this.text = text;
        this.heads = Collections.unmodifiableMap(heads);
    }

    /** Head shapes for a Q-Former of width H: projections (embedDim, H), ITM head (2, H), temperature (1). */
    public static Map<String, Shape> headShapes(QFormerConfig config, int embedDim) {
        long hidden = config.hiddenSize();
        Map<String, Shape> shapes = new LinkedHashMap<>();
        shapes.put("vision_projection.weight", new Shape(embedDim, hidden));
        shapes.put("vision_projection.bias", new Shape(embedDim));
        shapes.put("text_projection.weight", new Shape(embedDim, hidden));
        shapes.put("text_projection.bias", new Shape(embedDim));
        shapes.put("itm_head.weight", new Shape(2, hidden));
        shapes.put("itm_head.bias", new Shape(2));
        shapes.put("temp", new Shape(1));
        return shapes;
    }

    /** Fresh heads (weights N(0, 0.02), biases 0, temperature 0.07) over the given Q-Former and text side. */
    public static QFormerPretraining initialise(QFormer qformer, QFormerText text, int embedDim, long seed,
                                                NDManager manager) {
        Random random = new Random(seed);
        Map<String, NDArray> heads = new LinkedHashMap<>();
        for (var entry : headShapes(qformer.config(), embedDim).entrySet()) {
            float[] values = new float[Math.toIntExact(entry.getValue().size())];
            if (entry.getKey().equals("temp")) {
                values[0] = INITIAL_TEMPERATURE;
            } else if (entry.getKey().endsWith(".weight")) {
                for (int i = 0; i < values.length; i++) values[i] = (float) (random.nextGaussian() * QFormer.INITIALISER_STD);
            }
            heads.put(entry.getKey(), manager.create(values, entry.getValue()));
        }
        return new QFormerPretraining(qformer, text, heads);
    }

    public QFormer qformer() {
        return qformer;
    }

    public QFormerText text() {
        return text;
    }

    /** The heads' tensors themselves, by name. */
    public Map<String, NDArray> heads() {
        return heads;
    }

    /**
     * Every trainable tensor: the Q-Former's under {@code qformerPrefix}, the text side's and the heads' under
     * {@code pretrainingPrefix} (they exist only in stage 1; later stages load the Q-Former alone).
     */
    public List<TrainableParameter> parameters(String qformerPrefix, String pretrainingPrefix) {
        List<TrainableParameter> out = new ArrayList<>(qformer.parameters(qformerPrefix));
        out.addAll(text.parameters(pretrainingPrefix));
        heads.forEach((name, value) -> out.add(new TrainableParameter(pretrainingPrefix + name, value)));
        return out;
    }

    /**
     * The three objectives of a batch of image-caption pairs (pair b = image b with caption b).
     *
     * @param imageFeatures (B, N, encoder width) frozen image features; results live on its manager
     * @param tokenIds      B rows of T token ids ([CLS] … [SEP], right-padded with anything)
     * @param lengths       valid tokens per row (≥ 2: [CLS] and [SEP])
     * @param seed          drives the hard-negative sampling
     */
    public Losses losses(NDArray imageFeatures, long[][] tokenIds, int[] lengths, long seed) {
        NDManager scope = imageFeatures.getManager();
        int batch = tokenIds.length, width = tokenIds[0].length, queries = qformer.config().numQueryTokens();
        if (imageFeatures.getShape().get(0) != batch || lengths.length != batch) {
            throw new IllegalArgumentException("batch of " + imageFeatures.getShape().get(0) + " images, "
                    + batch + " captions and " + lengths.length + " lengths");
        }
        NDArray ids = scope.create(flatten(tokenIds, width), new Shape(batch, width));

        // step 1: ITC — one pass under the uni-modal mask gives the image's query outputs and the caption's [CLS]
        NDArray unimodal = text.encode(qformer, queryTokens(batch, scope), ids, imageFeatures,
                QFormerText.mask(QFormerText.Mask.UNIMODAL, queries, lengths, width, scope));        // (B, Q + T, H)
        NDArray imageEmbeds = normalise(linear(unimodal.get(new NDIndex(":, 0:{}", queries)), "vision_projection"));
        NDArray textEmbeds = normalise(linear(unimodal.get(new NDIndex(":, {}", queries)), "text_projection")); // (B, D)
        NDArray temperature = heads.get("temp").maximum(scope.create(0.001f)).minimum(scope.create(0.5f));
        NDArray similarity = imageTextSimilarity(imageEmbeds, textEmbeds).div(temperature);        // (B img, B text)
        NDArray contrastive = contrastiveLoss(similarity);

        // step 2: ITM — hard negatives from the ITC similarities, bi-directional pass, 2-class head on the queries
        NDArray matching = batch < 2 ? null : matchingLoss(imageFeatures, tokenIds, lengths, similarity, seed);

        // step 3: ITG — [DEC] for [CLS], multimodal-causal pass, next-token prediction on the caption
        long[][] decoderIds = new long[batch][];
        for (int b = 0; b < batch; b++) {
            decoderIds[b] = tokenIds[b].clone();
            decoderIds[b][0] = text.decoderTokenId();
        }
        NDArray causal = text.encode(qformer, queryTokens(batch, scope),
                scope.create(flatten(decoderIds, width), new Shape(batch, width)), imageFeatures,
                QFormerText.mask(QFormerText.Mask.MULTIMODAL_CAUSAL, queries, lengths, width, scope));
        List<Long> rows = new ArrayList<>(), targets = new ArrayList<>();
        for (int b = 0; b < batch; b++) {
            for (int t = 0; t + 1 < lengths[b]; t++) {
                rows.add((long) b * (queries + width) + queries + t); // text position t predicts token t + 1
                targets.add(tokenIds[b][t + 1]);
            }
        }
        NDArray flat = causal.reshape(-1, qformer.config().hiddenSize());                         // (B·(Q+T), H)
        NDArray predictFrom = Embedding.embedding(scope.create(toArray(rows)), flat, SparseFormat.DENSE)
                .singletonOrThrow();                                                              // (N, H)
        NDArray generation = smoothedCrossEntropy(text.predictionLogits(predictFrom), toArray(targets), LABEL_SMOOTHING);
        return new Losses(contrastive, matching, generation);
    }

    private NDArray matchingLoss(NDArray imageFeatures, long[][] tokenIds, int[] lengths, NDArray similarity, long seed) {
        NDManager scope = imageFeatures.getManager();
        int batch = tokenIds.length, width = tokenIds[0].length, queries = qformer.config().numQueryTokens();
        float[] sims = similarity.toFloatArray();                       // host copy: no gradient through sampling
        Random random = new Random(seed);
        long[] imageRows = new long[3 * batch];
        long[][] texts = new long[3 * batch][];
        int[] textLengths = new int[3 * batch];
        for (int b = 0; b < batch; b++) {
            int negativeImage = sampleNegative(sims, batch, b, false, random); // for text b, an image ≠ b
            int negativeText = sampleNegative(sims, batch, b, true, random);   // for image b, a text ≠ b
            // [positives ; (negative image, text b) ; (image b, negative text)], as LAVIS orders them
            imageRows[b] = b;
            imageRows[batch + b] = negativeImage;
            imageRows[2 * batch + b] = b;
            texts[b] = tokenIds[b];
            texts[batch + b] = tokenIds[b];
            texts[2 * batch + b] = tokenIds[negativeText];
            textLengths[b] = lengths[b];
            textLengths[batch + b] = lengths[b];
            textLengths[2 * batch + b] = lengths[negativeText];
        }
        Shape featureShape = imageFeatures.getShape();
        NDArray images = Embedding.embedding(scope.create(imageRows), imageFeatures.reshape(batch, -1), SparseFormat.DENSE)
                .singletonOrThrow().reshape(3L * batch, featureShape.get(1), featureShape.get(2)); // (3B, N, C)
        NDArray hidden = text.encode(qformer, queryTokens(3 * batch, scope),
                scope.create(flatten(texts, width), new Shape(3L * batch, width)), images,
                QFormerText.mask(QFormerText.Mask.BIDIRECTIONAL, queries, textLengths, width, scope));
        NDArray logits = linear(hidden.get(new NDIndex(":, 0:{}", queries)), "itm_head").mean(new int[] {1}); // (3B, 2)
        long[] labels = new long[3 * batch];
        for (int b = 0; b < batch; b++) labels[b] = 1;
        return smoothedCrossEntropy(logits, labels, 0f);
    }

    /**
     * Row {@code index}'s hard negative: an index ≠ {@code index} drawn in proportion to the softmax of the
     * similarities of image {@code index} to every text ({@code imageToText}) or of text {@code index} to every image.
     */
    static int sampleNegative(float[] similarity, int batch, int index, boolean imageToText, Random random) {
        double[] weights = new double[batch];
        double max = Double.NEGATIVE_INFINITY, total = 0;
        for (int j = 0; j < batch; j++) {
            double s = imageToText ? similarity[index * batch + j] : similarity[j * batch + index];
            weights[j] = s;
            max = Math.max(max, s);
        }
        for (int j = 0; j < batch; j++) {
            weights[j] = j == index ? 0 : Math.exp(weights[j] - max);
            total += weights[j];
        }
        if (!(total > 0)) { // every other pair underflowed: uniform over the others
            int pick = random.nextInt(batch - 1);
            return pick >= index ? pick + 1 : pick;
        }
        double u = random.nextDouble() * total;
        for (int j = 0; j < batch; j++) {
            if (j == index) continue;
            u -= weights[j];
            if (u <= 0) return j;
        }
        return index == batch - 1 ? batch - 2 : batch - 1; // rounding left u just above 0: the last candidate
    }

    /**
     * Image-text similarity of each image to each text: the maximum over the queries of query·text.
     *
     * @param imageEmbeds (B, Q, D) normalised query embeddings
     * @param textEmbeds  (B, D) normalised text embeddings
     * @return (B images, B texts)
     */
    static NDArray imageTextSimilarity(NDArray imageEmbeds, NDArray textEmbeds) {
        Shape shape = imageEmbeds.getShape();
        long batch = shape.get(0), queries = shape.get(1);
        return imageEmbeds.reshape(batch * queries, shape.get(2)).matMul(textEmbeds.transpose())   // (B·Q, B)
                .reshape(batch, queries, textEmbeds.getShape().get(0)).max(new int[] {1});        // (B, B)
    }

    /** Symmetric in-batch contrastive loss of (B, B) temperature-scaled similarities, pair b the positive of row b. */
    static NDArray contrastiveLoss(NDArray similarity) {
        long batch = similarity.getShape().get(0);
        long[] diagonal = new long[Math.toIntExact(batch)];
        for (int b = 0; b < batch; b++) diagonal[b] = b;
        NDArray imageToText = smoothedCrossEntropy(similarity, diagonal, LABEL_SMOOTHING);
        NDArray textToImage = smoothedCrossEntropy(similarity.transpose(), diagonal, LABEL_SMOOTHING);
        return imageToText.add(textToImage).mul(similarity.getManager().create(0.5f));
    }

    /**
     * Mean cross-entropy with label smoothing ε as PyTorch defines it: (1 − ε)·(−log p[target]) + ε·mean_c(−log p[c]).
     * Scalars are tensors of the logits' manager (see the class comment of {@link QFormer}).
     */
    static NDArray smoothedCrossEntropy(NDArray logits, long[] targets, float epsilon) {
        NDManager scope = logits.getManager();
        NDArray logProbabilities = logits.logSoftmax(1);                                         // (N, C)
        NDArray picked = logProbabilities.gather(scope.create(targets).reshape(-1, 1), 1);       // (N, 1)
        if (epsilon == 0f) return picked.mean().neg();
        NDArray uniform = logProbabilities.mean(new int[] {1}, true);                           // (N, 1)
        return picked.mul(scope.create(1f - epsilon)).add(uniform.mul(scope.create(epsilon))).mean().neg();
    }

    /** x / ‖x‖ over the last axis (F.normalize; the 1e-24 under the root guards a zero vector). */
    private static NDArray normalise(NDArray x) {
        return x.div(x.mul(x).sum(new int[] {-1}, true).add(1e-24f).sqrt());
    }

    private NDArray linear(NDArray x, String name) {
        return Linear.linear(x, heads.get(name + ".weight"), heads.get(name + ".bias")).singletonOrThrow();
    }

    private NDArray queryTokens(int batch, NDManager scope) {
        QFormerConfig config = qformer.config();
        NDArray queries = qformer.queryTokens().broadcast(batch, config.numQueryTokens(), config.hiddenSize());
        queries.attach(scope); // a per-call tensor: lives in the caller's scope, not the model's
        return queries;
    }

    private static long[] flatten(long[][] rows, int width) {
        long[] flat = new long[rows.length * width];
        for (int b = 0; b < rows.length; b++) {
            if (rows[b].length != width) {
                throw new IllegalArgumentException("token rows must share one width: row " + b + " has "
                        + rows[b].length + ", row 0 has " + width);
            }
            System.arraycopy(rows[b], 0, flat, b * width, width);
        }
        return flat;
    }

    private static long[] toArray(List<Long> values) {
        long[] out = new long[values.size()];
        for (int i = 0; i < out.length; i++) out[i] = values.get(i);
        return out;
    }
}
