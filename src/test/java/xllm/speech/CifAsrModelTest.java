package xllm.speech;

import xllm.train.AsrTask;
import xllm.data.AsrSample;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import xllm.train.AdamW;
import xllm.tensor.TrainableParameter;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The tiny CIF ASR model: shapes, batch = each utterance alone, gradients to every tensor, the quantity loss
 * teaching the fire count, save → load, and overfitting four real espeak-ng clips to CER 0
 * (fixtures/asr, made by tools/reference/make_asr_fixtures.py).
 */
class CifAsrModelTest {

    static final Path CLIPS = Path.of("src/test/resources/fixtures/asr/manifest.jsonl");
    static final CifAsrConfig TINY = CifAsrConfig.tiny();

    static CharVocabulary vocabulary() {
        return CharVocabulary.build(List.of("red circle", "blue square", "green triangle", "yellow star"));
    }

    static Cmvn identityCmvn() {
        float[] mean = new float[80], std = new float[80];
        java.util.Arrays.fill(std, 1f);
        return new Cmvn(mean, std);
    }

    static float[][] randomUtterance(Random random, int frames) {
        float[][] u = new float[frames][80];
        for (float[] frame : u) for (int d = 0; d < 80; d++) frame[d] = (float) random.nextGaussian();
        return u;
    }

    @Test
    void shapesAndABatchEqualsEachUtteranceAlone() {
        try (NDManager manager = NDManager.newBaseManager()) {
            CifAsrModel model = CifAsrModel.initialise(TINY, vocabulary(), identityCmvn(), 7, manager);
            Random random = new Random(1);
            List<float[][]> utterances = List.of(randomUtterance(random, 61), randomUtterance(random, 40),
                    randomUtterance(random, 23));
            long[] targetLengths = {7, 5, 3};
            CifAsrModel.Padded batch = CifAsrModel.pad(utterances);
            NDArray logits = model.trainingLogits(batch.toArray(manager, 80), batch.lengths(), targetLengths);
            assertEquals(new Shape(3, 7, vocabulary().size()), logits.getShape());
            CifAsrModel.Fired fired = model.encodeAndFire(batch.toArray(manager, 80), batch.lengths());
            assertEquals(TINY.modelDim(), fired.tokens().getShape().get(2));
            CifAsrModel.Fired forced = model.encodeAndFire(batch.toArray(manager, 80), batch.lengths(), targetLengths);
            assertArrayEquals(targetLengths, forced.counts(), "scaled CIF fires exactly the target counts");
            assertEquals(new Shape(3, 7, TINY.modelDim()), forced.tokens().getShape());
            assertEquals(14, ConformerEncoder.outputLength(TINY, 61), "two k3 s2 convs: 61 → 30 → 14");
            float[] batched = logits.toFloatArray();
            int v = vocabulary().size();
            for (int b = 0; b < 3; b++) {
                CifAsrModel.Padded alone = CifAsrModel.pad(List.<float[][]>of(utterances.get(b)));
                float[] single = model.trainingLogits(alone.toArray(manager, 80), alone.lengths(),
                        new long[] {targetLengths[b]}).toFloatArray();
                for (int i = 0; i < single.length; i++) {
                    assertEquals(single[i], batched[b * 7 * v + i], 1e-4, "row " + b + " logit " + i);
                }
                CifAsrModel.Fired firedAlone = model.encodeAndFire(alone.toArray(manager, 80), alone.lengths());
                assertEquals(firedAlone.counts()[0], fired.counts()[b], "row " + b + " fire count");
                float[] tokensAlone = firedAlone.tokens().toFloatArray();
                float[] tokensBatched = fired.tokens().get(b).toFloatArray();
                for (int i = 0; i < firedAlone.counts()[0] * TINY.modelDim(); i++) {
                    assertEquals(tokensAlone[i], tokensBatched[i], 1e-4, "row " + b + " token value " + i);
                }
            }
        }
    }

    @Test
    void gradientsReachEveryTensor() {
        try (NDManager manager = NDManager.newBaseManager()) {
            CifAsrModel model = CifAsrModel.initialise(TINY, vocabulary(), identityCmvn(), 7, manager);
            for (TrainableParameter p : model.parameters()) p.value().setRequiresGradient(true);
            Random random = new Random(2);
            CifAsrModel.Padded batch = CifAsrModel.pad(List.of(randomUtterance(random, 50), randomUtterance(random, 35)));
            NDArray visual = manager.randomNormal(new Shape(2, 3, TINY.visualWidth()));
            try (NDManager scope = manager.newSubManager();
                 GradientCollector collector = Engine.getInstance().newGradientCollector()) {
                CifAsrModel.Losses losses = model.loss(batch.toArray(scope, 80), batch.lengths(),
                        new long[][] {{1, 2, 3, 4}, {5, 6}}, new CifDecoder.Memory(visual, new long[] {3, 2}), null);
                assertTrue(losses.tokenLoss().getFloat() > 0 && losses.quantityLoss().getFloat() >= 0);
                collector.backward(losses.total());
            }
            List<String> zero = new ArrayList<>();
            for (TrainableParameter p : model.parameters()) {
                try (NDArray gradient = p.value().getGradient()) {
                    if (gradient.abs().sum().getFloat() == 0f) zero.add(p.name());
                }
            }
            assertEquals(List.of(), zero, "tensors without gradient");
        }
    }

    @Test
    void quantityLossTeachesTheFireCount() {
        try (NDManager manager = NDManager.newBaseManager()) {
            CifAsrModel model = CifAsrModel.initialise(TINY, vocabulary(), identityCmvn(), 3, manager);
            List<TrainableParameter> parameters = model.parameters();
            for (TrainableParameter p : parameters) p.value().setRequiresGradient(true);
            Random random = new Random(3);
            List<float[][]> utterances = List.of(randomUtterance(random, 80), randomUtterance(random, 60));
            long[][] targets = {{1, 2, 3, 4, 5, 6, 7, 8, 9}, {1, 2, 3}};
            CifAsrModel.Padded batch = CifAsrModel.pad(utterances);
            float first = Float.NaN, last = Float.NaN;
            try (AdamW optimizer = new AdamW(parameters, new AdamW.Config(0.9, 0.98, 1e-8, 0))) {
                for (int step = 0; step < 60; step++) {
                    try (NDManager scope = manager.newSubManager();
                         GradientCollector collector = Engine.getInstance().newGradientCollector()) {
                        NDArray quantity = model.loss(batch.toArray(scope, 80), batch.lengths(), targets).quantityLoss();
                        last = quantity.getFloat();
                        if (step == 0) first = last;
                        collector.backward(quantity);
                    }
                    optimizer.step(3e-3);
                    optimizer.zeroGradients();
                }
            }
            // per target token (12 tokens over 2 rows): ×6 is the mean fire-count error per utterance; under half a
            // token the fired counts are exact, which the next assertion checks (an L1 loss under Adam keeps hovering)
            assertTrue(first * 6 > 1 && last * 6 < 0.5, "quantity loss per token " + first + " → " + last);
            try (NDManager scope = manager.newSubManager()) {
                assertArrayEquals(new long[] {9, 3}, model.encodeAndFire(batch.toArray(scope, 80), batch.lengths()).counts());
            }
        }
    }

    @Test
    void saveAndLoadGiveTheSameLogits(@TempDir Path dir) throws IOException {
        try (NDManager manager = NDManager.newBaseManager()) {
            Cmvn cmvn = new Cmvn(new float[80], new float[80]);
            java.util.Arrays.fill(cmvn.std(), 2f);
            cmvn.mean()[3] = 1.5f;
            CifAsrModel model = CifAsrModel.initialise(TINY, vocabulary(), cmvn, 11, manager);
            model.save(dir);
            Random random = new Random(4);
            CifAsrModel.Padded batch = CifAsrModel.pad(List.<float[][]>of(randomUtterance(random, 45)));
            float[] expected = model.trainingLogits(batch.toArray(manager, 80), batch.lengths(), new long[] {4}).toFloatArray();
            try (CifAsrModel loaded = CifAsrModel.load(dir)) {
                assertEquals(model.vocabulary().tokens(), loaded.vocabulary().tokens());
                assertArrayEquals(cmvn.mean(), loaded.cmvn().mean());
                assertArrayEquals(cmvn.std(), loaded.cmvn().std());
                assertEquals(TINY, loaded.config());
                try (NDManager scope = NDManager.newBaseManager()) {
                    assertArrayEquals(expected, loaded.trainingLogits(batch.toArray(scope, 80), batch.lengths(),
                            new long[] {4}).toFloatArray());
                }
            }
            // strict: an extra tensor is refused, naming the file and the key
            Path extra = dir.resolve("extra");
            Files.createDirectories(extra);
            Files.copy(dir.resolve("config.json"), extra.resolve("config.json"));
            List<xllm.tensor.HostTensor> host = new ArrayList<>();
            model.tensors().forEach((name, value) -> host.add(xllm.tensor.SafetensorsWriter.fromNDArray(name, value)));
            host.add(xllm.tensor.HostTensor.ofFloats("asr.decoder.spare", new float[] {1f}, 1));
            xllm.tensor.SafetensorsWriter.write(extra.resolve("model.safetensors"), host, java.util.Map.of());
            IOException e = assertThrows(IOException.class, () -> CifAsrModel.load(extra));
            assertTrue(e.getMessage().contains("asr.decoder.spare") && e.getMessage().contains("model.safetensors"),
                    e.getMessage());
        }
    }

    /** Four ~1 s espeak-ng clips: the tiny model transcribes all of them exactly (CER 0) within a bounded run. */
    @Test
    void overfitsFourSpokenClipsToCerZero() throws IOException {
        List<AsrSample> samples = AsrSample.readManifest(CLIPS);
        List<String> texts = new ArrayList<>();
        for (AsrSample s : samples) texts.add(s.text());
        try (NDManager manager = NDManager.newBaseManager()) {
            CifAsrModel model = CifAsrModel.initialise(TINY, CharVocabulary.build(texts), AsrTask.cmvnOf(samples, 4),
                    5, manager);
            List<float[][]> features = new ArrayList<>();
            long[][] targets = new long[samples.size()][];
            for (int i = 0; i < samples.size(); i++) {
                features.add(model.features(samples.get(i).audio()));
                targets[i] = model.vocabulary().encode(texts.get(i));
            }
            CifAsrModel.Padded batch = CifAsrModel.pad(features);
            List<TrainableParameter> parameters = model.parameters();
            for (TrainableParameter p : parameters) p.value().setRequiresGradient(true);
            List<String> transcripts = List.of();
            int steps = 0;
            long start = System.nanoTime();
            try (AdamW optimizer = new AdamW(parameters, new AdamW.Config(0.9, 0.98, 1e-8, 0))) {
                while (steps < 600) {
                    try (NDManager scope = manager.newSubManager();
                         GradientCollector collector = Engine.getInstance().newGradientCollector()) {
                        collector.backward(model.loss(batch.toArray(scope, 80), batch.lengths(), targets).total());
                    }
                    optimizer.clipGradientNorm(1.0);
                    optimizer.step(steps < 20 ? 3e-3 * (steps + 1) / 20 : 3e-3);
                    optimizer.zeroGradients();
                    steps++;
                    if (steps % 25 == 0) {
                        transcripts = model.transcribeFeatures(features);
                        if (totalEdits(transcripts, texts) == 0) break;
                    }
                }
            }
            System.err.printf("tiny CIF ASR: CER 0 after %d steps, %.1f s%n", steps, (System.nanoTime() - start) / 1e9);
            assertEquals(texts, transcripts, "after " + steps + " steps");
            List<Path> wavs = new ArrayList<>();
            for (AsrSample s : samples) wavs.add(s.audio());
            assertEquals(texts, model.transcribe(wavs, 3), "from the WAV files, in batches of 3");
        }
    }

    static int totalEdits(List<String> hypotheses, List<String> references) {
        int edits = 0;
        for (int i = 0; i < references.size(); i++) edits += editDistance(hypotheses.get(i), references.get(i));
        return edits;
    }

    static int editDistance(String a, String b) {
        int[] previous = new int[b.length() + 1], current = new int[b.length() + 1];
        for (int j = 0; j <= b.length(); j++) previous[j] = j;
        for (int i = 1; i <= a.length(); i++) {
            current[0] = i;
            for (int j = 1; j <= b.length(); j++) {
                current[j] = Math.min(Math.min(current[j - 1], previous[j]) + 1,
                        previous[j - 1] + (a.charAt(i - 1) == b.charAt(j - 1) ? 0 : 1));
            }
            int[] swap = previous;
            previous = current;
            current = swap;
        }
        return previous[b.length()];
    }
}
