package xllm.train;

import ai.djl.ndarray.NDManager;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import xllm.tensor.HostTensor;
import xllm.train.Checkpoint;
import xllm.train.MetricsLog;
import xllm.train.StageConfig;
import xllm.train.StageRunner;
import xllm.tensor.TrainableParameter;
import xllm.train.TrainingTask;
import xllm.x2l.QFormer;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Stage {@code convert-qformer} end to end through the {@link StageRunner}: tiny Q-Former from the tiny BERT fixture
 * over the patch test encoder, the 4 colour images of data/tiny-overfit; its checkpoint then initialises a stage-2
 * Q-Former (Q-Former tensors loaded, stage-1 heads left out by initSkip, the adapter untouched).
 */
class QFormerPretrainTaskTest {

    private static StageConfig recipe(Path dir, boolean bertInit) throws IOException {
        Path file = dir.resolve("stage1.yaml");
        Files.writeString(file, """
                stage: convert-qformer
                model: {interfaces: [image], size: tiny, visionEncoder: random%s}
                trainable: ["imageInterface.qformer.**", "qformerPretraining.**"]
                data: {train: %s}
                schedule: {type: warmup-cosine, initLr: 1.0e-3, minLr: 1.0e-4, warmupStartLr: 1.0e-4, warmupSteps: 3}
                batchSize: 4
                steps: 12
                seed: 3
                output: %s
                """.formatted(bertInit ? ", bertInit: " + Path.of("src/test/resources/fixtures/bert").toAbsolutePath() : "",
                Path.of("data/tiny-overfit/train.jsonl").toAbsolutePath(), dir.resolve("run")));
        return StageConfig.load(file, List.of());
    }

    @Test
    void convertQFormerTrainsAndFeedsStageTwo(@TempDir Path dir) throws Exception {
        StageConfig config = recipe(dir, true);
        StageRunner.Result result;
        try (NDManager manager = NDManager.newBaseManager();
             TrainingTask<?, ?> task = StageAssembly.assemble(config, manager)) {
            QFormerPretrainTask pretrain = (QFormerPretrainTask) task;
            assertArrayEquals(new long[] {2, 8, 9, 23, 39, 3}, pretrain.tokenize("It is red."));
            result = new StageRunner(config, new PrintStream(PrintStream.nullOutputStream())).run(task, false);
        }
        List<Map<String, Object>> metrics = MetricsLog.read(MetricsLog.in(dir.resolve("run")));
        double first = ((Number) metrics.get(0).get("loss")).doubleValue();
        assertTrue(Double.isFinite(first) && result.lastLoss() < 0.6 * first, "ITC + ITM + ITG " + first + " → " + result.lastLoss());

        // stage 2 reads the Q-Former out of the stage-1 checkpoint; the stage-1 heads are left out by name
        Map<String, HostTensor> saved = Checkpoint.load(result.checkpoint()).model();
        assertTrue(saved.containsKey("qformerPretraining.temp") && saved.containsKey("imageInterface.qformer.query_tokens"));
        try (NDManager manager = NDManager.newBaseManager()) {
            QFormer stage2 = QFormer.initialise(xllm.model.ImageInterface.qformerConfig("tiny").withEncoderHiddenSize(32), 9, manager);
            Map<String, TrainableParameter> parameters = new LinkedHashMap<>();
            for (TrainableParameter p : stage2.parameters("imageInterface.qformer.")) parameters.put(p.name(), p);
            parameters.put("imageInterface.adapter.bias", new TrainableParameter("imageInterface.adapter.bias",
                    manager.zeros(new ai.djl.ndarray.types.Shape(16))));
            IOException unknown = assertThrows(IOException.class, () -> xllm.tensor.ParameterAssignment.assign(parameters,
                    saved, Map.of(), result.checkpoint(), java.util.Set.of()));
            assertTrue(unknown.getMessage().contains("qformerPretraining.") && unknown.getMessage().contains("initSkip"),
                    unknown.getMessage());
            Map<String, HostTensor> kept = new LinkedHashMap<>(saved);
            int skipped = StageRunner.skip(kept, List.of("qformerPretraining.**"));
            assertTrue(skipped > 10, "skipped " + skipped);
            xllm.tensor.ParameterAssignment.assign(parameters, kept, Map.of(), result.checkpoint(), java.util.Set.of());
            for (String name : stage2.tensors().keySet()) {
                assertArrayEquals(saved.get("imageInterface.qformer." + name).toFloats(),
                        stage2.tensors().get(name).toFloatArray(), name);
            }
            assertArrayEquals(new float[16], parameters.get("imageInterface.adapter.bias").value().toFloatArray());
        }
    }

    @Test
    void captionsComeFromCaptionTasksOnly(@TempDir Path dir) throws IOException {
        Path image = dir.resolve("a.png");
        Files.copy(Path.of("data/tiny-overfit/red.png"), image);
        Path manifest = dir.resolve("scenes.jsonl");
        Files.writeString(manifest, String.join("\n",
                "{\"id\":\"s-q0\",\"image\":\"a.png\",\"conversations\":[{\"from\":\"human\",\"value\":\"<image>\\nCaption?\"},"
                        + "{\"from\":\"gpt\",\"value\":\"A red square.\"}],\"task\":\"caption\"}",
                "{\"id\":\"s-q1\",\"image\":\"a.png\",\"conversations\":[{\"from\":\"human\",\"value\":\"<image>\\nColour?\"},"
                        + "{\"from\":\"gpt\",\"value\":\"red\"}],\"task\":\"colour\"}",
                "{\"id\":\"s-q2\",\"image\":\"a.png\",\"conversations\":[{\"from\":\"human\",\"value\":\"<image>\\nDescribe.\"},"
                        + "{\"from\":\"gpt\",\"value\":\"There is one red square.\"}],\"task\":\"describe\"}"));
        assertEquals(List.of("s-q0", "s-q2"), QFormerPretrainTask.readCaptions(manifest).stream()
                .map(xllm.data.ConversationSample::id).toList());
        Path none = dir.resolve("none.jsonl");
        Files.writeString(none, Files.readAllLines(manifest).get(1));
        IOException e = assertThrows(IOException.class, () -> QFormerPretrainTask.readCaptions(none));
        assertTrue(e.getMessage().startsWith(none.toString()) && e.getMessage().contains("no image-caption samples"));
    }

    @Test
    void convertQFormerNeedsBertInit(@TempDir Path dir) throws IOException {
        StageConfig config = recipe(dir, false);
        try (NDManager manager = NDManager.newBaseManager()) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> StageAssembly.assemble(config, manager));
            assertTrue(e.getMessage().contains("needs model.bertInit"), e.getMessage());
        }
    }
}
