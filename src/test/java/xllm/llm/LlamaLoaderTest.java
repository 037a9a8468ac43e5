package xllm.llm;

import ai.djl.ndarray.NDManager;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import xllm.tensor.gguf.GgufFile;

import java.io.IOException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

/** The model config that {@link LlamaLoader} reads from GGUF metadata, on hand-made (often hostile) metadata. */
class LlamaLoaderTest {

    @TempDir
    Path dir;

    /** SmolLM2-135M's hyper-parameters as its GGUF states them. */
    private static Map<String, Object> smolLm2() {
        Map<String, Object> metadata = new LinkedHashMap<>();
        metadata.put("general.architecture", "llama");
        metadata.put("llama.embedding_length", 576L);
        metadata.put("llama.feed_forward_length", 1536L);
        metadata.put("llama.block_count", 30L);
        metadata.put("llama.attention.head_count", 9L);
        metadata.put("llama.attention.head_count_kv", 3L);
        metadata.put("llama.context_length", 8192L);
        metadata.put("llama.vocab_size", 49152L);
        metadata.put("llama.attention.layer_norm_rms_epsilon", 1e-5);
        metadata.put("llama.rope.freq_base", 100000.0);
        metadata.put("tokenizer.ggml.eos_token_id", 2);
        return metadata;
    }

    private LlamaConfig config(Map<String, Object> metadata) throws IOException {
        try (GgufFile gguf = GgufFile.open(GgufMetadataWriter.write(dir.resolve("model.gguf"), metadata))) {
            return LlamaLoader.configFromGguf(gguf);
        }
    }

    @Test
    void readsTheConfigOfAWellFormedFile() throws IOException {
        LlamaConfig config = config(smolLm2());
        assertEquals(576, config.hiddenSize());
        assertEquals(64, config.headDim());
        assertEquals(3, config.numKeyValueHeads());
        assertEquals(List.of(2L), config.eosTokenIds());
    }

    @Test
    void sizesOutsideOneToIntMaxAreAnErrorNamingFileAndKey() throws IOException {
        Map<String, Object> bad = new LinkedHashMap<>();
        bad.put("llama.attention.head_count", 0L);          // was: ArithmeticException (/ by zero)
        bad.put("llama.embedding_length", (1L << 32) + 576); // was: silently 576
        bad.put("llama.block_count", -1L);
        bad.put("llama.vocab_size", 1L << 40);
        for (var entry : bad.entrySet()) {
            Map<String, Object> metadata = smolLm2();
            metadata.put(entry.getKey(), entry.getValue());
            IOException e = assertThrows(IOException.class, () -> config(metadata), entry.getKey());
            assertTrue(e.getMessage().contains("model.gguf") && e.getMessage().contains(entry.getKey())
                    && e.getMessage().contains(String.valueOf(Integer.MAX_VALUE)), e.getMessage());
        }
    }

    @Test
    void eosTokenIdOutsideTheVocabularyOrNotAnIntegerIsAnError() throws IOException {
        for (Object eos : List.of(49152, -1, "two")) {
            Map<String, Object> metadata = smolLm2();
            metadata.put("tokenizer.ggml.eos_token_id", eos);
            IOException e = assertThrows(IOException.class, () -> config(metadata), String.valueOf(eos));
            assertTrue(e.getMessage().contains("model.gguf") && e.getMessage().contains("tokenizer.ggml.eos_token_id")
                    && e.getMessage().contains("49152"), e.getMessage());
        }
    }

    @Test
    void aLayerCountBeyondTheCheckpointsTensorsIsRefusedBeforeAllocating() throws IOException {
        Map<String, Object> metadata = smolLm2();
        metadata.put("llama.embedding_length", 8L);
        metadata.put("llama.attention.head_count", 2L);
        metadata.put("llama.attention.head_count_kv", 2L);
        metadata.put("llama.vocab_size", 4L);
        metadata.put("tokenizer.ggml.eos_token_id", 2);
        metadata.put("llama.block_count", (long) Integer.MAX_VALUE); // was: OutOfMemoryError for the layer table
        Path file = GgufMetadataWriter.write(dir.resolve("layers.gguf"), metadata,
                List.of(new GgufMetadataWriter.Tensor("token_embd.weight", new long[] {4, 8}, new float[32])));
        try (NDManager manager = NDManager.newBaseManager()) {
            IOException e = assertThrows(IOException.class, () -> LlamaLoader.load(file, manager));
            assertTrue(e.getMessage().contains("layers.gguf") && e.getMessage().contains(Integer.MAX_VALUE + " layers")
                    && e.getMessage().contains("1 tensors"), e.getMessage());
        }
    }
}
