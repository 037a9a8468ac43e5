package xllm.serve;

import ai.djl.ndarray.NDManager;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import picocli.CommandLine.Command;
import picocli.CommandLine.Parameters;
import xllm.model.XLlm;
import xllm.model.XLlmConfig;
import xllm.train.StageAssembly;
import xllm.train.StageConfig;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.List;
import java.util.concurrent.Callable;

/**
 * {@code ./xllm upgrade-checkpoint DIR}: gives a single-modality checkpoint written before the one-model format its
 * typed config.json. The old config.json held the training recipe as a YAML string; the model that recipe assembles
 * is built, the checkpoint's tensors are loaded into it strictly (every parameter present, none unknown, shapes
 * equal), and its architecture record replaces config.json (written to a temporary file, then renamed; the recipe
 * moves to provenance.json). The tensors are not touched.
 */
@Command(name = "upgrade-checkpoint", mixinStandardHelpOptions = true,
        description = {"Convert an image, video or speech checkpoint written before the one-model format (its "
                + "config.json holds a recipe string) to the typed config.json that chat, generate and eval load.",
                "The tensors stay as they are; the recipe's LLM and encoders must be where the recipe names them."})
public final class UpgradeCheckpointCommand implements Callable<Integer> {

    private static final ObjectMapper JSON = new ObjectMapper();

    @Parameters(index = "0", paramLabel = "DIR", description = "The checkpoint directory.")
    Path dir;

    @Override
    public Integer call() throws Exception {
        upgrade(dir);
        System.err.println(dir + ": upgraded; config.json now records the model's architecture");
        return 0;
    }

    static void upgrade(Path dir) throws IOException {
        Path configFile = dir.resolve(XLlm.CONFIG);
        JsonNode root = readJson(configFile);
        if (XLlmConfig.TYPE.equals(root.path("model").path("type").asText())) {
            throw new IllegalArgumentException(configFile + ": already in the one-model format");
        }
        if (!root.path("recipe").isTextual()) {
            throw new IllegalArgumentException(configFile + ": no \"recipe\" string (not an xllm stage-2 checkpoint)");
        }
        String describedImage = root.path("model").path("imageInterface").asText("");
        if (!describedImage.isEmpty() && describedImage.contains("efficientnet") && !describedImage.contains("positions")) {
            throw new IllegalArgumentException(configFile + ": trained on image features without the 2-D positions the "
                    + "interface adds (a checkpoint from before 2026-11-27); it cannot be upgraded: retrain it, or continue "
                    + "it with initFrom (docs/interfaces.md, Positions)");
        }
        Path recipe = Files.createTempFile("xllm-recipe-", ".yaml");
        StageConfig config;
        try {
            Files.writeString(recipe, root.get("recipe").asText());
            config = StageConfig.load(recipe, List.of(), false);
        } finally {
            Files.deleteIfExists(recipe);
        }
        ObjectNode upgraded;
        try (NDManager manager = NDManager.newBaseManager(); XLlm model = StageAssembly.model(config, manager)) {
            model.loadTensors(dir.resolve(XLlm.MODEL));
            upgraded = model.configJson();
        }
        Path provenanceFile = dir.resolve("provenance.json");
        ObjectNode provenance = (ObjectNode) readJson(provenanceFile);
        provenance.put("recipe", root.get("recipe").asText());
        writeAtomically(provenanceFile, provenance);
        writeAtomically(configFile, upgraded);
    }

    private static JsonNode readJson(Path file) throws IOException {
        try {
            JsonNode node = JSON.readTree(file.toFile());
            if (node == null || !node.isObject()) throw new IOException(file + ": not a JSON object");
            return node;
        } catch (IOException e) {
            throw new IOException(file + ": " + e.getMessage(), e);
        }
    }

    private static void writeAtomically(Path file, JsonNode node) throws IOException {
        Path temp = Files.createTempFile(file.getParent(), file.getFileName().toString(), ".tmp");
        try {
            Files.write(temp, JSON.writerWithDefaultPrettyPrinter().writeValueAsBytes(node));
            Files.move(temp, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } finally {
            Files.deleteIfExists(temp);
        }
    }
}
