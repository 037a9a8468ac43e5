package xllm.train;

import com.fasterxml.jackson.core.json.JsonReadFeature;
import com.fasterxml.jackson.core.json.JsonWriteFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.json.JsonMapper;
import xllm.tensor.HostTensor;
import xllm.tensor.Safetensors;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * One checkpoint directory as read back (DESIGN.md §4): {@code config.json} (the whole XLLM config),
 * {@code model.safetensors} (trainable tensors only), {@code provenance.json} (stage, step, data hashes, git
 * commit, metrics) and, for an exact resume, {@code optimizer.safetensors} and {@code trainer_state.json}.
 * {@link CheckpointStore} writes these directories atomically; tested in {@code CheckpointStoreTest}.
 *
 * <p>Tensors are read-only views of the memory-mapped files (nothing is copied until the caller converts them);
 * the mapping stays valid after the store deletes or replaces the directory.
 *
 * @param dir          the checkpoint directory
 * @param config       contents of config.json
 * @param model        trainable tensors by name, in file order
 * @param optimizer    optimizer state tensors by name; empty when the checkpoint holds none
 * @param trainerState resume state; null when the checkpoint holds none
 * @param provenance   contents of provenance.json
 */
public record Checkpoint(Path dir, JsonNode config, Map<String, HostTensor> model, Map<String, HostTensor> optimizer,
                         TrainerState trainerState, JsonNode provenance) {

    public static final String CONFIG = "config.json";
    public static final String MODEL = "model.safetensors";
    public static final String OPTIMIZER = "optimizer.safetensors";
    public static final String TRAINER_STATE = "trainer_state.json";
    public static final String PROVENANCE = "provenance.json";
    /** Written last: a directory without it was never finished. */
    public static final String COMPLETE = "COMPLETE";

    /**
     * The JSON dialect of a training run's files: non-finite numbers are written bare ({@code NaN}, as Python's
     * {@code json} module does) and read back, because a diverged loss is exactly what the files must record.
     */
    static final ObjectMapper JSON = JsonMapper.builder()
            .enable(JsonReadFeature.ALLOW_NON_NUMERIC_NUMBERS)
            .disable(JsonWriteFeature.WRITE_NAN_AS_STRINGS)
            .build();

    /** Reads a checkpoint directory; every missing or damaged file is an IOException naming it. */
    public static Checkpoint load(Path dir) throws IOException {
        if (!Files.isDirectory(dir)) throw new IOException(dir + ": checkpoint directory not found");
        JsonNode config = readJson(dir.resolve(CONFIG));
        Map<String, HostTensor> model = readTensors(dir.resolve(MODEL));
        Path optimizerFile = dir.resolve(OPTIMIZER);
        Map<String, HostTensor> optimizer = Files.exists(optimizerFile) ? readTensors(optimizerFile) : Map.of();
        Path stateFile = dir.resolve(TRAINER_STATE);
        TrainerState state = null;
        if (Files.exists(stateFile)) {
            try {
                state = JSON.treeToValue(readJson(stateFile), TrainerState.class);
            } catch (IOException | IllegalArgumentException e) {
                throw new IOException(stateFile + ": not a trainer state: " + e.getMessage(), e);
            }
        }
        JsonNode provenance = readJson(dir.resolve(PROVENANCE));
        return new Checkpoint(dir, config, model, optimizer, state, provenance);
    }

    static JsonNode readJson(Path file) throws IOException {
        if (!Files.exists(file)) throw new IOException(file + ": file not found");
        JsonNode node;
        try {
            node = JSON.readTree(file.toFile());
        } catch (IOException e) {
            throw new IOException(file + ": malformed JSON: " + e.getMessage(), e);
        }
        if (node == null || node.isMissingNode()) throw new IOException(file + ": empty file");
        return node;
    }

    private static Map<String, HostTensor> readTensors(Path file) throws IOException {
        // Safetensors names the file in every error (missing, truncated, inconsistent header).
        try (Safetensors st = Safetensors.open(file)) {
            Map<String, HostTensor> tensors = new LinkedHashMap<>();
            for (String name : st.names()) tensors.put(name, st.get(name));
            // Closing the channel leaves the mapped buffers valid (FileChannel.map contract).
            return Collections.unmodifiableMap(tensors);
        } catch (java.io.UncheckedIOException e) {
            throw e.getCause();
        }
    }
}
