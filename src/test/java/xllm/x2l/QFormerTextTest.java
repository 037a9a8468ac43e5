package xllm.x2l;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.Shape;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import xllm.tensor.HostTensor;
import xllm.tensor.Safetensors;

import java.io.IOException;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static xllm.x2l.QFormerBertInitTest.BERT;
import static xllm.x2l.QFormerBertInitTest.TINY;

/**
 * The stage-1 text path of the Q-Former: the text-only pass against transformers' BertModel with the same weights
 * (fixture of tools/reference/make_bert_fixtures.py, token types zeroed) within 1e-5; what each of BLIP-2's three
 * masks hides; the BERT initialisation of the text side.
 */
class QFormerTextTest {

    private static final float TOLERANCE = 1e-5f;

    private NDManager manager;
    private QFormer qformer;
    private QFormerText text;

    @BeforeEach
    void setUp() throws IOException {
        manager = NDManager.newBaseManager();
        try (BertCheckpoint bert = BertCheckpoint.open(BERT, TINY)) {
            qformer = QFormer.initialiseFromBert(bert, TINY, 3, manager);
            text = QFormerText.initialiseFromBert(bert, TINY, 3, manager);
        }
    }

    @AfterEach
    void tearDown() {
        manager.close();
    }

    private static float maxAbsDifference(float[] a, float[] b) {
        assertEquals(a.length, b.length);
        float max = 0;
        for (int i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i] - b[i]));
        return max;
    }

    @Test
    void textOnlyPassMatchesTransformersBertModel() throws IOException {
        try (Safetensors reference = Safetensors.open(BERT.resolve("reference.safetensors"))) {
            HostTensor ids = reference.get("input_ids");
            long[] mask = reference.get("attention_mask").toNDArray(manager).toLongArray();
            int batch = (int) ids.shape()[0], width = (int) ids.shape()[1];
            int[] lengths = new int[batch];
            for (int i = 0; i < mask.length; i++) lengths[i / width] += (int) mask[i];
            NDArray hidden = text.encode(qformer, null, ids.toNDArray(manager), null,
                    QFormerText.mask(QFormerText.Mask.UNIMODAL, 0, lengths, width, manager));
            float difference = maxAbsDifference(reference.get("last_hidden_state").toFloats(), hidden.toFloatArray());
            assertTrue(difference <= TOLERANCE, "max |ours - BertModel| = " + difference);
            assertEquals(new Shape(2, 7, 64), hidden.getShape());
        }
    }

    private NDArray encode(QFormerText.Mask kind, NDArray image, long[][] ids, int[] lengths) {
        int width = ids[0].length;
        long[] flat = new long[ids.length * width];
        for (int b = 0; b < ids.length; b++) System.arraycopy(ids[b], 0, flat, b * width, width);
        NDArray queries = qformer.queryTokens().broadcast(ids.length, TINY.numQueryTokens(), TINY.hiddenSize());
        return text.encode(qformer, queries, manager.create(flat, new Shape(ids.length, width)), image,
                QFormerText.mask(kind, TINY.numQueryTokens(), lengths, width, manager));
    }

    private static float[] slice(NDArray hidden, String index) {
        return hidden.get(new NDIndex(index)).toFloatArray();
    }

    @Test
    void masksHideWhatBlip2Hides() {
        int q = TINY.numQueryTokens();
        NDArray image = manager.randomNormal(0, 1, new Shape(2, 5, TINY.encoderHiddenSize()), ai.djl.ndarray.types.DataType.FLOAT32);
        long[][] caption = {{2, 20, 24, 29, 42, 39, 3}, {2, 8, 9, 23, 39, 3, 0}};
        long[][] otherNext = {{2, 20, 25, 29, 42, 39, 3}, {2, 8, 10, 23, 39, 3, 0}}; // token 2 changed
        long[][] otherPad = {{2, 20, 24, 29, 42, 39, 3}, {2, 8, 9, 23, 39, 3, 17}};  // padding changed
        int[] lengths = {7, 6};

        // ITC (uni-modal): queries = the query-only Q-Former; text = the text-only pass; neither sees the other
        NDArray unimodal = encode(QFormerText.Mask.UNIMODAL, image, caption, lengths);
        float[] queryOnly = qformer.forward(image, null).toFloatArray();
        assertTrue(maxAbsDifference(queryOnly, slice(unimodal, ":, 0:" + q)) <= TOLERANCE);
        assertTrue(maxAbsDifference(queryOnly, slice(encode(QFormerText.Mask.UNIMODAL, image, otherNext, lengths),
                ":, 0:" + q)) <= TOLERANCE, "query outputs changed with the text under the uni-modal mask");
        float[] textOnly = text.encode(qformer, null, manager.create(new long[] {2, 20, 24, 29, 42, 39, 3}, new Shape(1, 7)),
                null, QFormerText.mask(QFormerText.Mask.UNIMODAL, 0, new int[] {7}, 7, manager)).toFloatArray();
        assertTrue(maxAbsDifference(textOnly, slice(unimodal, "0:1, " + q + ":")) <= TOLERANCE);

        // ITG (multimodal-causal): text position t depends on tokens ≤ t only; queries still see only queries
        NDArray causal = encode(QFormerText.Mask.MULTIMODAL_CAUSAL, image, caption, lengths);
        NDArray causalChanged = encode(QFormerText.Mask.MULTIMODAL_CAUSAL, image, otherNext, lengths);
        assertTrue(maxAbsDifference(slice(causal, ":, 0:" + (q + 2)), slice(causalChanged, ":, 0:" + (q + 2))) <= TOLERANCE,
                "positions before the changed token moved");
        assertTrue(maxAbsDifference(slice(causal, ":, " + (q + 2)), slice(causalChanged, ":, " + (q + 2))) > 1e-3,
                "the changed position itself must change");
        assertTrue(maxAbsDifference(queryOnly, slice(causal, ":, 0:" + q)) <= TOLERANCE);
        // ... and the text sees the image: other image features change the text outputs
        NDArray otherImage = manager.randomNormal(0, 1, image.getShape(), ai.djl.ndarray.types.DataType.FLOAT32);
        assertTrue(maxAbsDifference(slice(causal, ":, " + q + ":"),
                slice(encode(QFormerText.Mask.MULTIMODAL_CAUSAL, otherImage, caption, lengths), ":, " + q + ":")) > 1e-3);

        // ITM (bi-directional): the queries see the text
        NDArray bidirectional = encode(QFormerText.Mask.BIDIRECTIONAL, image, caption, lengths);
        assertTrue(maxAbsDifference(slice(bidirectional, ":, 0:" + q),
                slice(encode(QFormerText.Mask.BIDIRECTIONAL, image, otherNext, lengths), ":, 0:" + q)) > 1e-3);

        // padding is invisible to every valid position under every mask
        for (QFormerText.Mask kind : QFormerText.Mask.values()) {
            NDArray a = encode(kind, image, caption, lengths), b = encode(kind, image, otherPad, lengths);
            assertTrue(maxAbsDifference(slice(a, "1:2, 0:" + (q + 6)), slice(b, "1:2, 0:" + (q + 6))) <= TOLERANCE, kind.name());
        }
    }

    @Test
    void maskValues() {
        float masked = xllm.tensor.TransformerOps.MASKED;
        float[] causal = QFormerText.mask(QFormerText.Mask.MULTIMODAL_CAUSAL, 2, new int[] {2}, 3, manager).toFloatArray();
        float[][] expected = { // rows/cols: q0 q1 t0 t1 t2(pad)
                {0, 0, masked, masked, masked}, {0, 0, masked, masked, masked},
                {0, 0, 0, masked, masked}, {0, 0, 0, 0, masked}, {0, 0, 0, 0, masked}};
        for (int r = 0; r < 5; r++) {
            assertArrayEquals(expected[r], java.util.Arrays.copyOfRange(causal, r * 5, r * 5 + 5), "row " + r);
        }
        assertThrows(IllegalArgumentException.class,
                () -> QFormerText.mask(QFormerText.Mask.UNIMODAL, 2, new int[] {0}, 3, manager));
    }

    @Test
    void textSideStartsFromBert() throws IOException {
        try (Safetensors bert = Safetensors.open(BERT)) {
            int vocabulary = (int) bert.shape("embeddings.word_embeddings.weight")[0];
            assertEquals(vocabulary, text.vocabulary());
            assertEquals(vocabulary, text.decoderTokenId());
            float[] words = text.tensors().get("embeddings.word_embeddings.weight").toFloatArray();
            float[] bertWords = bert.get("embeddings.word_embeddings.weight").toFloats();
            assertArrayEquals(bertWords, java.util.Arrays.copyOf(words, bertWords.length));
            assertEquals(bertWords.length + TINY.hiddenSize(), words.length); // + the [DEC] row
            for (Map.Entry<String, String> e : QFormerText.bertSources(TINY).entrySet()) {
                if (e.getKey().startsWith("cls.") || e.getKey().startsWith("embeddings.word")) continue; // MiniLM-like: no head
                assertArrayEquals(bert.get(e.getValue()).toFloats(), text.tensors().get(e.getKey()).toFloatArray(), e.getKey());
            }
            // no masked-LM head in a BertModel checkpoint: fresh transform LayerNorm, zero bias
            assertArrayEquals(new float[vocabulary + 1], text.tensors().get("cls.predictions.bias").toFloatArray());
            assertEquals(new Shape(vocabulary + 1), text.predictionLogits(manager.ones(new Shape(1, 64))).getShape().slice(1));
        }
    }
}
