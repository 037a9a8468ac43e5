package xllm.train;

import xllm.data.FeatureCache;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The stage runner on recipes/tiny-overfit.yaml (tiny random Llama frozen, tiny patch image interface, only the
 * I-Adapter trains): overfitting, freezing, exact resume, NaN handling and recipe errors before training.
 */
class StageRunnerTest {

    static final Path RECIPE = Path.of("recipes/tiny-overfit.yaml");
    static final PrintStream QUIET = new PrintStream(PrintStream.nullOutputStream());

    static StageConfig recipe(Path output, String... overrides) {
        List<String> all = new ArrayList<>(List.of("output=" + output));
        all.addAll(List.of(overrides));
        return StageConfig.load(RECIPE, all);
    }

    static StageRunner.Result train(StageConfig config, boolean resume) throws Exception {
        try (NDManager manager = NDManager.newBaseManager();
             TrainingTask<?, ?> task = StageAssembly.assemble(config, manager)) {
            return new StageRunner(config, QUIET).run(task, resume);
        }
    }

    /**
     * The adapter learns through the frozen tiny random LLM: the answer loss falls well below its start (a random
     * decoder's own residual path dominates its answer logits, so it cannot be driven to ~0; the real LLM below can).
     */
    @Test
    void adapterLearnsThroughTheFrozenLlm(@TempDir Path run) throws Exception {
        StageRunner.Result result = train(recipe(run), false);
        assertEquals(300, result.steps());
        assertEquals(64L * 32 + 64, result.trainableParameters(), "only the adapter (32 → 64 + bias) trains");
        List<Map<String, Object>> metrics = MetricsLog.read(MetricsLog.in(run));
        assertEquals(300, metrics.size());
        double first = ((Number) metrics.get(0).get("loss")).doubleValue();
        assertTrue(first > 6, "starts untrained: " + metrics.get(0));
        assertTrue(result.lastLoss() < 0.7 * first, "answer loss " + first + " → " + result.lastLoss());
        assertTrue(Files.size(run.resolve("loss.png")) > 1000);
        Checkpoint checkpoint = Checkpoint.load(result.checkpoint());
        assertEquals(java.util.Set.of("imageInterface.adapter.weight", "imageInterface.adapter.bias"),
                checkpoint.model().keySet(), "checkpoints hold trainable tensors only");
    }

    @Test
    void adapterOverfitsFourSamplesThroughFrozenSmolLm2(@TempDir Path run) throws Exception {
        xllm.RealWeights.require("smollm2-135m-instruct");
        StageRunner.Result result = train(recipe(run, "model.llm=smollm2-135m-instruct", "steps=80",
                "schedule.initLr=0.01"), false);
        assertEquals(576L * 32 + 576, result.trainableParameters());
        assertTrue(result.lastLoss() < 0.05, "answer loss after 80 steps: " + result.lastLoss());
    }

    @Test
    void frozenTensorsStayBitwiseUnchangedAndNeverHoldGradients(@TempDir Path run) throws Exception {
        StageConfig config = recipe(run, "steps=50");
        try (NDManager manager = NDManager.newBaseManager();
             TrainingTask<?, ?> task = StageAssembly.assemble(config, manager)) {
            List<NDArray> frozen = new ArrayList<>(((InstructionTask) task).model().frozenTensors());
            List<float[]> before = new ArrayList<>();
            for (NDArray a : frozen) before.add(a.toFloatArray());
            float[] adapterBefore = task.parameters().get(0).value().toFloatArray();
            new StageRunner(config, QUIET).run(task, false);
            for (int i = 0; i < frozen.size(); i++) {
                assertArrayEquals(before.get(i), frozen.get(i).toFloatArray(), 0f, "frozen tensor " + i + " changed");
                assertFalse(frozen.get(i).hasGradient(), "frozen tensor " + i + " holds a gradient");
            }
            assertFalse(java.util.Arrays.equals(adapterBefore, task.parameters().get(0).value().toFloatArray()),
                    "the adapter trained");
        }
    }

    /** {@code steps: 0} composes: the final checkpoint is the initFrom model, bit for bit, with no metrics rows. */
    @Test
    void stepsZeroWritesTheInitialisedModelUntrained(@TempDir Path root) throws Exception {
        Path trained = root.resolve("trained"), composed = root.resolve("composed");
        StageRunner.Result first = train(recipe(trained, "steps=20"), false);
        StageRunner.Result result = train(recipe(composed, "steps=0", "initFrom=" + trained.resolve("final")), false);
        assertEquals(0, result.steps());
        assertEquals(result.checkpoint().toRealPath(), composed.resolve(CheckpointStore.FINAL).toRealPath());
        Map<String, xllm.tensor.HostTensor> before = Checkpoint.load(first.checkpoint()).model();
        Map<String, xllm.tensor.HostTensor> after = Checkpoint.load(result.checkpoint()).model();
        assertEquals(before.keySet(), after.keySet());
        for (String name : before.keySet()) {
            assertArrayEquals(before.get(name).toFloats(), after.get(name).toFloats(), 0f, name);
        }
        assertEquals(0, MetricsLog.read(MetricsLog.in(composed)).size());
    }

    @Test
    void resumeContinuesExactly(@TempDir Path root) throws Exception {
        Path straight = root.resolve("straight"), resumed = root.resolve("resumed");
        train(recipe(straight, "steps=20"), false);
        train(recipe(resumed, "steps=20", "checkpointEvery=10", "keepCheckpoints=5"), false);
        // simulate a run that died right after step 10: drop the later checkpoint; metrics are truncated on resume
        Path checkpoints = resumed.resolve(CheckpointStore.CHECKPOINTS);
        try (var dirs = Files.list(checkpoints)) {
            for (Path d : dirs.filter(d -> d.getFileName().toString().equals(CheckpointStore.directoryName(20))).toList()) {
                try (var files = Files.walk(d)) {
                    files.sorted(java.util.Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
                }
            }
        }
        StageRunner.Result result = train(recipe(resumed, "steps=20", "checkpointEvery=10", "keepCheckpoints=5"), true);
        assertEquals(20, result.steps());
        // the finished run's final checkpoint is reachable as <run>/final
        assertEquals(result.checkpoint().toRealPath(), resumed.resolve(CheckpointStore.FINAL).toRealPath());
        assertTrue(Files.isSymbolicLink(resumed.resolve(CheckpointStore.FINAL)));
        List<Map<String, Object>> a = MetricsLog.read(MetricsLog.in(straight));
        List<Map<String, Object>> b = MetricsLog.read(MetricsLog.in(resumed));
        assertEquals(20, a.size());
        assertEquals(20, b.size());
        for (int i = 0; i < 20; i++) {
            assertEquals(((Number) a.get(i).get("loss")).doubleValue(), ((Number) b.get(i).get("loss")).doubleValue(), 1e-6,
                    "loss at step " + (i + 1));
        }
        assertArrayEquals(Checkpoint.load(CheckpointStoreTestAccess.latest(straight)).model().get("imageInterface.adapter.weight").toFloats(),
                Checkpoint.load(result.checkpoint()).model().get("imageInterface.adapter.weight").toFloats(), 1e-6f);
    }

    @Test
    void trainingFromTheFeatureCacheEqualsRunningTheEncoder(@TempDir Path root) throws Exception {
        Path plain = root.resolve("plain"), cached = root.resolve("cached");
        train(recipe(plain, "steps=15"), false);
        train(recipe(cached, "steps=15", "featureCache=true"), false);
        List<Map<String, Object>> a = MetricsLog.read(MetricsLog.in(plain));
        List<Map<String, Object>> b = MetricsLog.read(MetricsLog.in(cached));
        for (int i = 0; i < 15; i++) {
            assertEquals(((Number) a.get(i).get("loss")).doubleValue(), ((Number) b.get(i).get("loss")).doubleValue(), 1e-5,
                    "loss at step " + (i + 1));
        }
        Path cacheRoot = cached.resolve("feature-cache");
        try (var dirs = Files.list(cacheRoot)) {
            assertEquals(1, dirs.count(), "one encoder, one cache directory");
        }
        // same encoder: nothing recomputed, whatever the recipe's seed (the test encoder's projection has its own)
        StageConfig again = recipe(cached, "steps=15", "featureCache=true");
        StageConfig otherEncoder = recipe(cached, "steps=15", "featureCache=true", "seed=7");
        try (NDManager manager = NDManager.newBaseManager()) {
            try (TrainingTask<?, ?> task = StageAssembly.assemble(again, manager)) {
                assertEquals(0, ((InstructionTask) task).fillCaches(manager));
            }
            try (TrainingTask<?, ?> task = StageAssembly.assemble(otherEncoder, manager)) {
                assertEquals(0, ((InstructionTask) task).fillCaches(manager), "filled while assembling");
            }
        }
        try (var dirs = Files.list(cacheRoot)) {
            assertEquals(1, dirs.count(), "the same frozen encoder, the same cache");
        }
    }

    @Test
    void anImageRewrittenAtTheSamePathIsEncodedAgain(@TempDir Path root) throws Exception {
        Path data = root.resolve("data");
        Files.createDirectories(data);
        try (var files = Files.list(Path.of("data/tiny-overfit"))) {
            for (Path f : files.toList()) Files.copy(f, data.resolve(f.getFileName()));
        }
        Path run = root.resolve("run");
        StageConfig config = recipe(run, "steps=1", "schedule.warmupSteps=0", "featureCache=true", "data.train=" + data.resolve("train.jsonl"));
        try (NDManager manager = NDManager.newBaseManager()) {
            try (TrainingTask<?, ?> task = StageAssembly.assemble(config, manager)) {
                assertEquals(0, ((InstructionTask) task).fillCaches(manager), "filled while assembling");
            }
            // same path, new pixels (red.png now holds the blue image): a path-keyed cache would serve red features
            Files.copy(data.resolve("blue.png"), data.resolve("red.png"), java.nio.file.StandardCopyOption.REPLACE_EXISTING);
            try (TrainingTask<?, ?> task = StageAssembly.assemble(config, manager)) {
                assertEquals(0, ((InstructionTask) task).fillCaches(manager), "blue's features were already cached");
            }
            java.awt.image.BufferedImage grey = new java.awt.image.BufferedImage(32, 32, java.awt.image.BufferedImage.TYPE_INT_RGB);
            javax.imageio.ImageIO.write(grey, "png", data.resolve("green.png").toFile());
            try (TrainingTask<?, ?> task = StageAssembly.assemble(config, manager)) {
                assertEquals(0, ((InstructionTask) task).fillCaches(manager), "filled while assembling");
            }
        }
        Path cacheDir;
        try (var dirs = Files.list(run.resolve("feature-cache"))) {
            cacheDir = dirs.findFirst().orElseThrow();
        }
        var samples = new com.fasterxml.jackson.databind.ObjectMapper().readTree(cacheDir.resolve(FeatureCache.INDEX).toFile())
                .get("samples");
        assertEquals(5, samples.size(), "4 original images + the new grey one, keyed by content: " + samples);
    }

    @Test
    void nonFiniteLossStopsTheRunNamingTheLastGoodCheckpoint(@TempDir Path run) {
        StageConfig config = recipe(run, "steps=30", "checkpointEvery=2", "optimizer.maxGradNorm=0",
                "schedule={type: warmup-cosine, initLr: 1.0e+30, warmupSteps: 0}");
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> train(config, false));
        assertTrue(e.getMessage().contains("loss is") && e.getMessage().contains("last good checkpoint"), e.getMessage());
    }

    @Test
    void globMatchingNothingFailsBeforeTraining(@TempDir Path run) {
        StageConfig config = recipe(run, "trainable=[imageInterface.qformer.**]");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> train(config, false));
        assertTrue(e.getMessage().contains("imageInterface.qformer.**"), e.getMessage());
        assertFalse(Files.exists(MetricsLog.in(run)), "nothing ran");
    }

    @Test
    void warmupLongerThanTheEpochsRunFailsBeforeTrainingNamingTheField(@TempDir Path run) {
        StageConfig config = recipe(run, "epochs=2"); // 4 samples / batch 4 = 1 step per epoch; warmupSteps 10
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> train(config, false));
        assertEquals(RECIPE + ": schedule.warmupSteps: is 10, not below the run's 2 optimiser steps (epochs 2 x 1 "
                + "micro-batches of 4 samples / gradientAccumulation 1); the warm-up would never finish", e.getMessage());
        assertFalse(Files.exists(MetricsLog.in(run)), "nothing ran");
    }

    @Test
    void anUnwritableOutputFailsBeforeTraining() {
        StageConfig config = recipe(Path.of("/proc/xllm-no-such/run"), "steps=12");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> train(config, false));
        assertTrue(e.getMessage().startsWith(RECIPE + ": output: cannot create or write /proc/xllm-no-such/run"),
                e.getMessage());
    }

    /** Reads the newest checkpoint of a run directory. */
    static final class CheckpointStoreTestAccess {
        static Path latest(Path run) throws IOException {
            return new CheckpointStore(run, 0).latest().orElseThrow();
        }
    }
}
