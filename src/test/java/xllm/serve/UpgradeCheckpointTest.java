package xllm.serve;

import ai.djl.ndarray.NDManager;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import xllm.llm.Generator;
import xllm.model.Conversation;
import xllm.model.Modality;
import xllm.model.XLlm;
import xllm.tensor.HostTensor;
import xllm.tensor.Safetensors;
import xllm.tensor.SafetensorsWriter;
import xllm.train.StageAssembly;
import xllm.train.StageConfig;
import xllm.train.StageRunner;
import xllm.train.TrainingTask;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Checkpoints load strictly, and an old single-modality checkpoint (config.json = a recipe string) is refused with
 * the command that converts it; after {@code upgrade-checkpoint} it loads and answers as before.
 */
class UpgradeCheckpointTest {

    private static final Path IMAGE = Path.of("data/tiny-overfit/red.png");

    private static Path train(Path run) throws Exception {
        StageConfig config = StageConfig.load(Path.of("recipes/tiny-overfit.yaml"), List.of("output=" + run, "steps=6",
                "schedule.warmupSteps=2"));
        try (NDManager manager = NDManager.newBaseManager(); TrainingTask<?, ?> task = StageAssembly.assemble(config, manager)) {
            new StageRunner(config, new PrintStream(PrintStream.nullOutputStream())).run(task, false);
        }
        return run.resolve("final").toRealPath();
    }

    private static String answer(Path checkpoint) throws IOException {
        try (NDManager manager = NDManager.newBaseManager(); XLlm model = XLlm.load(checkpoint, manager)) {
            return new Conversation(model).ask(Map.of(Modality.IMAGE, IMAGE), "What colour?", Generator.Options.greedy(4),
                    null).text();
        }
    }

    @Test
    void anOldCheckpointIsRefusedWithTheCommandThenUpgradedLoadsAndAnswersAlike(@TempDir Path dir) throws Exception {
        Path checkpoint = train(dir.resolve("run"));
        String before = answer(checkpoint);
        // rewrite it as xllm wrote checkpoints before the one-model format
        ObjectMapper json = new ObjectMapper();
        String recipe = json.readTree(checkpoint.resolve("provenance.json").toFile()).get("recipe").asText();
        ObjectNode old = json.createObjectNode();
        old.putObject("model").put("llm", "src/test/resources/fixtures/llm/tiny-llama")
                .put("imageInterface", "patch-8x8 (frozen random projection 48->32, tanh) + linear adapter");
        old.put("recipe", recipe);
        Files.write(checkpoint.resolve("config.json"), json.writeValueAsBytes(old));
        try (NDManager manager = NDManager.newBaseManager()) {
            IOException e = assertThrows(IOException.class, () -> XLlm.load(checkpoint, manager));
            assertTrue(e.getMessage().contains("./xllm upgrade-checkpoint " + checkpoint), e.getMessage());
        }
        UpgradeCheckpointCommand.upgrade(checkpoint);
        assertEquals(before, answer(checkpoint), "the upgraded checkpoint is the same model");
        try (var files = Files.list(checkpoint)) {
            assertTrue(files.noneMatch(f -> f.toString().endsWith(".tmp")), "no temporary file left behind");
        }
        assertThrows(IllegalArgumentException.class, () -> UpgradeCheckpointCommand.upgrade(checkpoint), "only once");
    }

    @Test
    void aMissingOrUnknownTensorIsNamed(@TempDir Path dir) throws Exception {
        Path checkpoint = train(dir.resolve("run"));
        Path weights = checkpoint.resolve(XLlm.MODEL);
        List<HostTensor> tensors = new ArrayList<>();
        try (Safetensors file = Safetensors.open(weights)) {
            for (String name : file.names()) tensors.add(file.get(name));
        }
        HostTensor bias = tensors.stream().filter(t -> t.name().endsWith(".bias")).findFirst().orElseThrow();
        Path extra = dir.resolve("extra.safetensors");
        List<HostTensor> withExtra = new ArrayList<>(tensors);
        withExtra.add(new HostTensor("imageInterface.qformer.query_tokens", bias.dtype(), bias.shape(), bias.data()));
        SafetensorsWriter.write(extra, withExtra, Map.of());
        Path missing = dir.resolve("missing.safetensors");
        SafetensorsWriter.write(missing, tensors.stream().filter(t -> t != bias).toList(), Map.of());
        try (NDManager manager = NDManager.newBaseManager()) {
            Files.copy(extra, weights, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
            IOException unknown = assertThrows(IOException.class, () -> XLlm.load(checkpoint, manager));
            assertTrue(unknown.getMessage().contains("'imageInterface.qformer.query_tokens' matches no parameter"),
                    unknown.getMessage());
            Files.copy(missing, weights, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
            IOException absent = assertThrows(IOException.class, () -> XLlm.load(checkpoint, manager));
            assertTrue(absent.getMessage().contains("lacks trainable parameter '" + bias.name() + "'"), absent.getMessage());
        }
    }
}
