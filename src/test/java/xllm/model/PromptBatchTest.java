package xllm.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import xllm.llm.LanguageModel;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/** The splice: segment rows → padded embeddings, positions, answer targets; answer-only loss by hand. */
class PromptBatchTest {

    static NDManager manager;
    static LanguageModel tiny;

    @BeforeAll
    static void load() throws IOException {
        manager = NDManager.newBaseManager();
        tiny = LanguageModel.open(Path.of("src/test/resources/fixtures/llm/tiny-llama"), manager);
    }

    @AfterAll
    static void release() {
        tiny.close();
        manager.close();
    }

    @Test
    void variableLengthRowsAreSplicedAndPaddedOnEitherSide() {
        try (NDManager scope = manager.newSubManager()) {
            int hidden = tiny.model().config().hiddenSize();
            NDArray image = scope.randomNormal(new Shape(3, hidden));
            List<Segment> first = List.of(Segment.Text.prompt(new long[] {5, 6}), new Segment.Embeddings(image),
                    Segment.Text.prompt(new long[] {7}), Segment.Text.answer(new long[] {8, 9}));
            List<Segment> second = List.of(Segment.Text.prompt(new long[] {10}), Segment.Text.answer(new long[] {11}));
            PromptBatch right = PromptBatch.build(tiny.model(), List.of(first, second), PromptBatch.Padding.RIGHT, scope);
            assertEquals(new Shape(2, 8, hidden), right.embeddings().getShape());
            assertArrayEquals(new boolean[] {true, true, false, false, false, false, false, false}, right.valid()[1]);
            // row 0: tokens 5 6 [img img img] 7 | 8 9 → position 5 predicts 8, 6 predicts 9; row 1: 10 | 11 → position 0
            assertArrayEquals(new long[] {5, 6, 8}, right.predictFrom());
            assertArrayEquals(new long[] {8, 9, 11}, right.targets());
            float[] row0 = right.embeddings().get(0).toFloatArray();
            float[] imageRows = image.toFloatArray();
            for (int i = 0; i < 3 * hidden; i++) assertEquals(imageRows[i], row0[2 * hidden + i], 0f);

            PromptBatch left = PromptBatch.build(tiny.model(), List.of(first, second), PromptBatch.Padding.LEFT, scope);
            assertArrayEquals(new long[] {5, 6, 6 + 8}, left.predictFrom());
            assertArrayEquals(new long[] {0, 0, 0, 0, 0, 0, 0, 1}, left.positions()[1]);
            // the loss does not depend on the padding side
            assertEquals(right.answerLoss(tiny.model()).getFloat(), left.answerLoss(tiny.model()).getFloat(), 1e-5f);
        }
    }

    @Test
    void answerLossIsTheMeanCrossEntropyOfTheAnswerTokens() {
        try (NDManager scope = manager.newSubManager()) {
            long[] ids = {5, 6, 7, 8, 9};
            PromptBatch batch = PromptBatch.build(tiny.model(), List.of(List.of(Segment.Text.prompt(new long[] {5, 6, 7}),
                    Segment.Text.answer(new long[] {8, 9}))), PromptBatch.Padding.RIGHT, scope);
            float[] logits = tiny.model().forwardTokens(scope.create(ids, new Shape(1, 5)), null).toFloatArray();
            int vocab = tiny.model().config().vocabSize();
            double expected = 0;
            for (int t : new int[] {2, 3}) {
                double max = Double.NEGATIVE_INFINITY, sum = 0;
                for (int v = 0; v < vocab; v++) max = Math.max(max, logits[t * vocab + v]);
                for (int v = 0; v < vocab; v++) sum += Math.exp(logits[t * vocab + v] - max);
                expected -= logits[t * vocab + (int) ids[t + 1]] - max - Math.log(sum);
            }
            assertEquals(expected / 2, batch.answerLoss(tiny.model()).getFloat(), 1e-5);
        }
    }

    @Test
    void gradientThroughAPaddedBatchEqualsEachRowAlone() {
        try (NDManager scope = manager.newSubManager()) {
            int hidden = tiny.model().config().hiddenSize();
            NDArray image = scope.randomNormal(new Shape(2, 3, hidden)).mul(30); // large, as a trained adapter's output
            long[][] answers = {{8}, {9, 10, 11}};
            float[][] alone = new float[2][];
            for (int b = 0; b < 2; b++) {
                NDArray row = image.get(b).duplicate();
                alone[b] = gradient(List.of(List.of(Segment.Text.prompt(new long[] {5}), new Segment.Embeddings(row),
                        Segment.Text.answer(answers[b]))), List.of(row), scope)[0];
            }
            NDArray first = image.get(0).duplicate(), second = image.get(1).duplicate();
            float[][] batched = gradient(List.of(
                    List.of(Segment.Text.prompt(new long[] {5}), new Segment.Embeddings(first), Segment.Text.answer(answers[0])),
                    List.of(Segment.Text.prompt(new long[] {5}), new Segment.Embeddings(second), Segment.Text.answer(answers[1]))),
                    List.of(first, second), scope);
            for (int b = 0; b < 2; b++) {
                for (float g : batched[b]) assertTrue(Float.isFinite(g), "row " + b + " gradient is not finite");
            }
            // the batch loss is the mean over all 4 answer tokens, each row alone over its own: rescale to compare
            for (int i = 0; i < alone[0].length; i++) assertEquals(alone[0][i] * 1 / 4f, batched[0][i], 1e-5f);
            for (int i = 0; i < alone[1].length; i++) assertEquals(alone[1][i] * 3 / 4f, batched[1][i], 1e-5f);
        }
    }

    private static float[][] gradient(List<List<Segment>> rows, List<NDArray> injected, NDManager scope) {
        for (NDArray a : injected) a.setRequiresGradient(true);
        try (ai.djl.training.GradientCollector collector = ai.djl.engine.Engine.getInstance().newGradientCollector()) {
            collector.backward(PromptBatch.build(tiny.model(), rows, PromptBatch.Padding.RIGHT, scope).answerLoss(tiny.model()));
        }
        float[][] out = new float[injected.size()][];
        for (int i = 0; i < out.length; i++) out[i] = injected.get(i).getGradient().toFloatArray();
        return out;
    }

    @Test
    void misfitModalityWidthIsRejected() {
        try (NDManager scope = manager.newSubManager()) {
            NDArray wrong = scope.zeros(new Shape(2, 7));
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> PromptBatch.build(tiny.model(),
                    List.of(List.of(new Segment.Embeddings(wrong))), PromptBatch.Padding.RIGHT, scope));
            assertTrue(e.getMessage().contains("(2, 7)") && e.getMessage().contains("64"), e.getMessage());
        }
    }
}
