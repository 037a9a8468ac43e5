package xllm.train;

import xllm.data.AsrSample;
import xllm.speech.CharVocabulary;
import xllm.speech.CifAsrConfig;
import xllm.speech.CifAsrModel;
import xllm.speech.SpecAugment;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import xllm.train.StageConfig;
import xllm.train.StageRunner;
import xllm.tensor.TrainableParameter;
import xllm.train.TrainingTask;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The convert-asr stage through StageAssembly and StageRunner (recipes/tiny-asr.yaml), and loading its checkpoint. */
class AsrTaskTest {

    static final Path RECIPE = Path.of("recipes/tiny-asr.yaml");
    static final PrintStream QUIET = new PrintStream(PrintStream.nullOutputStream());

    @Test
    void stageRunnerTrainsAndTheCheckpointLoadsForTranscription(@TempDir Path run) throws Exception {
        StageConfig config = StageConfig.load(RECIPE, List.of("output=" + run, "steps=4", "schedule.warmupSteps=2"));
        Map<String, float[]> trained = new java.util.LinkedHashMap<>();
        try (NDManager manager = NDManager.newBaseManager();
             TrainingTask<?, ?> task = StageAssembly.assemble(config, manager)) {
            AsrTask asr = assertInstanceOf(AsrTask.class, task);
            assertEquals(List.of(CharVocabulary.UNKNOWN, " ", "a", "b", "c", "d", "e", "g", "i", "l", "n", "o", "q", "r", "s", "t",
                    "u", "w", "y"), asr.model().vocabulary().tokens());
            assertTrue(task.parameters().get(0).name().startsWith("asr.encoder.frontend.conv.0."));
            StageRunner.Result result = new StageRunner(config, QUIET).run(task, false);
            assertEquals(4, result.steps());
            assertTrue(Double.isFinite(result.lastLoss()));
            for (TrainableParameter p : task.parameters()) trained.put(p.name(), p.value().toFloatArray());

            try (CifAsrModel loaded = CifAsrModel.load(result.checkpoint())) {
                assertEquals(trained.keySet(), loaded.tensors().keySet());
                loaded.tensors().forEach((name, value) -> assertArrayEquals(trained.get(name), value.toFloatArray(), name));
                assertArrayEquals(asr.model().cmvn().mean(), loaded.cmvn().mean());
                Path clip = Path.of("src/test/resources/fixtures/asr/red_circle.wav");
                assertEquals(asr.model().transcribe(clip), loaded.transcribe(clip));
            }
        }
    }

    @Test
    void prepareAppliesCmvnAndSeededSpecAugmentInTrainingOnly() throws IOException {
        List<AsrSample> samples = AsrSample.readManifest(Path.of("src/test/resources/fixtures/asr/manifest.jsonl"));
        try (NDManager manager = NDManager.newBaseManager()) {
            CifAsrModel model = CifAsrModel.initialise(CifAsrConfig.tiny(), CharVocabulary.build(
                    List.of("red circle", "blue square", "green triangle", "yellow star")), AsrTask.cmvnOf(samples, 4), 1, manager);
            AsrTask task = new AsrTask(model, samples, List.of(), SpecAugment.DEFAULT);
            AsrTask.Batch plain = task.prepare(samples.subList(0, 2), false, 9);
            AsrTask.Batch augmented = task.prepare(samples.subList(0, 2), true, 9);
            assertArrayEquals(augmented.features().values(), task.prepare(samples.subList(0, 2), true, 9).features().values(),
                    "same seed, same masks");
            assertNotEquals(java.util.Arrays.hashCode(plain.features().values()),
                    java.util.Arrays.hashCode(augmented.features().values()));
            float[][] expected = model.cmvn().apply(CifAsrModel.fbank(samples.get(0).audio()));
            assertEquals(expected.length, plain.features().lengths()[0]);
            assertArrayEquals(expected[10], java.util.Arrays.copyOfRange(plain.features().values(), 10 * 80, 11 * 80));
            assertArrayEquals(model.vocabulary().encode("red circle"), plain.targets()[0]);
            try (NDManager scope = manager.newSubManager()) {
                NDArray loss = task.loss(plain, scope);
                assertTrue(loss.getFloat() > 0);
            }
        }
    }

    @Test
    void manifestErrorsNameTheLine(@TempDir Path dir) throws IOException {
        Path manifest = dir.resolve("bad.jsonl");
        Files.writeString(manifest, "{\"id\": \"a\", \"audio\": \"missing.wav\", \"text\": \"hi\"}\n");
        IOException e = assertThrows(IOException.class, () -> AsrSample.readManifest(manifest));
        assertTrue(e.getMessage().contains("bad.jsonl:1") && e.getMessage().contains("missing.wav"), e.getMessage());
        Files.writeString(manifest, "{\"id\": \"a\", \"audio\": \"x.wav\"}\n");
        e = assertThrows(IOException.class, () -> AsrSample.readManifest(manifest));
        assertTrue(e.getMessage().contains("bad.jsonl:1"), e.getMessage());
    }
}
