package xllm.x2l;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import xllm.train.AdamW;
import xllm.tensor.TrainableParameter;

import java.io.IOException;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static xllm.x2l.QFormerBertInitTest.BERT;
import static xllm.x2l.QFormerBertInitTest.TINY;

/**
 * The BLIP-2 stage-1 objectives: label-smoothed cross-entropy and ITC against closed forms, hard-negative sampling,
 * gradients reaching every tensor, and a tiny overfit (4 image-caption pairs, tiny BERT-initialised Q-Former, 40
 * steps): ITC and ITG halve, ITM falls below the entropy of its 1:2 class prior.
 */
class QFormerPretrainingTest {

    private NDManager manager;

    @BeforeEach
    void setUp() {
        manager = NDManager.newBaseManager();
    }

    @AfterEach
    void tearDown() {
        manager.close();
    }

    @Test
    void smoothedCrossEntropyMatchesTheClosedForm() {
        float[] logits = {2f, 0f, -1f, 0.5f, 0.5f, 3f};
        NDArray loss = QFormerPretraining.smoothedCrossEntropy(manager.create(logits, new Shape(2, 3)), new long[] {0, 2}, 0.1f);
        double expected = 0;
        for (int row = 0; row < 2; row++) {
            double z = 0;
            for (int c = 0; c < 3; c++) z += Math.exp(logits[row * 3 + c]);
            double[] logp = new double[3];
            for (int c = 0; c < 3; c++) logp[c] = logits[row * 3 + c] - Math.log(z);
            int target = row == 0 ? 0 : 2;
            expected += -(0.9 * logp[target] + 0.1 * (logp[0] + logp[1] + logp[2]) / 3) / 2;
        }
        assertEquals(expected, loss.getFloat(), 1e-6);
    }

    /** Every query of image b equal to text b's embedding, the texts orthonormal: similarity = I / 0.07. */
    @Test
    void contrastiveLossOfIdenticalPairs() {
        int batch = 4, queries = 3, dim = 8;
        float[] image = new float[batch * queries * dim], text = new float[batch * dim];
        for (int b = 0; b < batch; b++) {
            text[b * dim + b] = 1;
            for (int q = 0; q < queries; q++) image[(b * queries + q) * dim + b] = 1;
        }
        NDArray similarity = QFormerPretraining.imageTextSimilarity(manager.create(image, new Shape(batch, queries, dim)),
                manager.create(text, new Shape(batch, dim))).div(manager.create(0.07f));
        float loss = QFormerPretraining.contrastiveLoss(similarity).getFloat();
        double diagonal = 1 / 0.07, logZ = Math.log(Math.exp(diagonal) + (batch - 1));
        double meanLogp = (diagonal - batch * logZ) / batch;
        double expected = -(0.9 * (diagonal - logZ) + 0.1 * meanLogp); // the same both ways
        assertEquals(expected, loss, 1e-5);
        // label smoothing keeps it well above 0: about ε·(B − 1)/B of the scaled similarity
        assertEquals(0.1 * (batch - 1) / batch * diagonal, loss, 0.01);
    }

    @Test
    void hardNegativesFollowTheSimilarities() {
        // row 0 (image 0): text 2 far more similar than text 1 or 3; never itself
        float[] sims = {10, 0, 5, 0, 0, 10, 0, 0, 0, 0, 10, 0, 0, 0, 0, 10};
        Random random = new Random(1);
        int[] counts = new int[4];
        for (int i = 0; i < 2000; i++) counts[QFormerPretraining.sampleNegative(sims, 4, 0, true, random)]++;
        assertEquals(0, counts[0]);
        assertTrue(counts[2] > 1900, java.util.Arrays.toString(counts));
        // text 0 (column 0): every other image equally dissimilar → roughly uniform
        for (int i = 0; i < 3000; i++) counts[QFormerPretraining.sampleNegative(sims, 4, 0, false, random)]++;
        assertTrue(counts[1] > 800 && counts[3] > 800, java.util.Arrays.toString(counts));
    }

    private QFormerPretraining tinyModel() throws IOException {
        try (BertCheckpoint bert = BertCheckpoint.open(BERT, TINY)) {
            return QFormerPretraining.initialise(QFormer.initialiseFromBert(bert, TINY, 5, manager),
                    QFormerText.initialiseFromBert(bert, TINY, 5, manager), 16, 5, manager);
        }
    }

    /** "three green circles." / "it is red." / "two blue squares." / "a yellow triangle." (tiny vocabulary ids). */
    private static final long[][] CAPTIONS = {{2, 20, 24, 29, 42, 39, 3}, {2, 8, 9, 23, 39, 3, 0},
            {2, 19, 25, 30, 42, 39, 3}, {2, 5, 26, 31, 39, 3, 0}};
    private static final int[] LENGTHS = {7, 6, 7, 6};

    @Test
    void gradientsReachEveryTensor() throws IOException {
        QFormerPretraining model = tinyModel();
        List<TrainableParameter> parameters = model.parameters("imageInterface.qformer.", "qformerPretraining.");
        parameters.forEach(p -> p.value().setRequiresGradient(true));
        try (NDManager scope = manager.newSubManager();
             GradientCollector collector = Engine.getInstance().newGradientCollector()) {
            NDArray image = scope.randomNormal(0, 1, new Shape(4, 5, TINY.encoderHiddenSize()), DataType.FLOAT32);
            QFormerPretraining.Losses losses = model.losses(image, CAPTIONS, LENGTHS, 9);
            collector.backward(losses.total());
        }
        for (TrainableParameter p : parameters) {
            try (NDArray gradient = p.value().getGradient()) {
                float[] g = gradient.toFloatArray();
                double norm = 0;
                for (float v : g) {
                    assertTrue(Float.isFinite(v), p.name());
                    norm += v * v;
                }
                // position rows past the caption length and the [DEC]-less rows get no gradient; whole tensors do
                assertTrue(norm > 0, p.name() + " got no gradient");
            }
        }
        assertEquals(model.qformer().tensors().size() + model.text().tensors().size() + 7, parameters.size());
    }

    @Test
    void tinyOverfitLowersEveryObjective() throws IOException {
        Engine.getInstance().setRandomSeed(11);
        QFormerPretraining model = tinyModel();
        List<TrainableParameter> parameters = model.parameters("imageInterface.qformer.", "qformerPretraining.");
        parameters.forEach(p -> p.value().setRequiresGradient(true));
        NDArray image = manager.randomNormal(0, 1, new Shape(4, 5, TINY.encoderHiddenSize()), DataType.FLOAT32);
        float[] first = null, last = null;
        try (AdamW optimizer = new AdamW(parameters, new AdamW.Config(0.9, 0.98, 1e-8, 0.0))) {
            for (int step = 0; step < 40; step++) {
                try (NDManager scope = manager.newSubManager();
                     GradientCollector collector = Engine.getInstance().newGradientCollector()) {
                    NDArray stepImage = image.duplicate();
                    stepImage.attach(scope);
                    QFormerPretraining.Losses losses = model.losses(stepImage, CAPTIONS, LENGTHS, step);
                    collector.backward(losses.total());
                    float[] values = {losses.contrastive().getFloat(), losses.matching().getFloat(),
                            losses.generation().getFloat()};
                    for (float v : values) assertTrue(Float.isFinite(v));
                    if (first == null) first = values;
                    last = values;
                }
                optimizer.clipGradientNorm(1.0);
                optimizer.step(step < 5 ? 1e-3 * (step + 1) / 5 : 1e-3);
                optimizer.zeroGradients();
            }
        }
        String trace = java.util.Arrays.toString(first) + " → " + java.util.Arrays.toString(last);
        assertTrue(last[0] < 0.5 * first[0], "ITC " + trace);
        // ITM with hard negatives learns slowly: below its start and below the 1:2 class prior's entropy
        double priorEntropy = -(Math.log(1.0 / 3) / 3 + 2 * Math.log(2.0 / 3) / 3);
        assertTrue(last[1] < first[1] && last[1] < priorEntropy, "ITM " + trace);
        assertTrue(last[2] < 0.5 * first[2], "ITG " + trace);
        System.out.println("tiny overfit [ITC, ITM, ITG]: " + trace);
    }

    @Test
    void aBatchOfOneHasNoMatchingLoss() throws IOException {
        QFormerPretraining model = tinyModel();
        NDArray image = manager.randomNormal(0, 1, new Shape(1, 5, TINY.encoderHiddenSize()), DataType.FLOAT32);
        QFormerPretraining.Losses losses = model.losses(image, new long[][] {CAPTIONS[0]}, new int[] {7}, 1);
        assertNull(losses.matching());
        assertEquals(0f, losses.contrastive().getFloat(), 1e-6); // one class: nothing to contrast
        assertNotEquals(0f, losses.generation().getFloat());
    }
}
