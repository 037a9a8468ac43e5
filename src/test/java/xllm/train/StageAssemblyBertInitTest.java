package xllm.train;

import ai.djl.ndarray.NDManager;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import xllm.tensor.Safetensors;
import xllm.train.StageConfig;
import xllm.tensor.TrainableParameter;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A stage-2 ({@code align-image}) recipe naming {@code model.bertInit} and no {@code initFrom} starts its Q-Former
 * from that BERT (real all-MiniLM-L6-v2 and EfficientNet-Lite0 from the model store); without bertInit it is random.
 */
class StageAssemblyBertInitTest {

    private static StageConfig recipe(Path dir, String bertInit) throws IOException {
        Path train = dir.resolve("train.jsonl");
        Files.writeString(train, "");
        Path file = dir.resolve("stage2.yaml");
        Files.writeString(file, """
                stage: align-image
                model: {llm: smollm2-135m-instruct, interfaces: [image], size: demo, visionEncoder: efficientnet-lite0%s}
                trainable: ["imageInterface.qformer.**", "imageInterface.adapter.**"]
                data: {train: train.jsonl}
                schedule: {type: warmup-cosine, initLr: 1.0e-4, minLr: 1.0e-5, warmupStartLr: 1.0e-6, warmupSteps: 0}
                batchSize: 2
                steps: 1
                output: %s
                """.formatted(bertInit == null ? "" : ", bertInit: " + bertInit, dir.resolve("run")));
        return StageConfig.load(file, List.of(), false);
    }

    @Test
    void alignImageHonoursBertInit(@TempDir Path dir) throws IOException {
        Path minilm = xllm.RealWeights.require("all-minilm-l6-v2");
        try (NDManager manager = NDManager.newBaseManager();
             Safetensors bert = Safetensors.open(minilm)) {
            float[] expected = bert.get("encoder.layer.2.attention.self.key.weight").toFloats();
            String name = "imageInterface.qformer.encoder.layer.2.attention.attention.key.weight";
            Map<String, TrainableParameter> fromBert = StageAssembly.model(recipe(dir, "all-minilm-l6-v2"), manager)
                    .parameters().stream().collect(Collectors.toMap(TrainableParameter::name, p -> p));
            assertArrayEquals(expected, fromBert.get(name).value().toFloatArray());
            assertTrue(fromBert.containsKey("imageInterface.adapter.weight"));
            Map<String, TrainableParameter> random = StageAssembly.model(recipe(dir, null), manager)
                    .parameters().stream().collect(Collectors.toMap(TrainableParameter::name, p -> p));
            assertFalse(java.util.Arrays.equals(expected, random.get(name).value().toFloatArray()));
        }
    }

    @Test
    void bertInitWithTheTinyPatchInterfaceIsAnError(@TempDir Path dir) throws IOException {
        StageConfig config = StageConfig.load(recipe(dir, "all-minilm-l6-v2").recipe(),
                List.of("model.size=tiny", "model.visionEncoder=random"), false);
        try (NDManager manager = NDManager.newBaseManager()) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> StageAssembly.model(config, manager));
            assertTrue(e.getMessage().contains("model.bertInit"), e.getMessage());
        }
    }
}
