package xllm.x2l;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import xllm.tensor.HostTensor;
import xllm.tensor.Safetensors;
import xllm.tensor.SafetensorsWriter;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * BLIP-2 style initialisation of the Q-Former from a BERT checkpoint: the tiny random BertModel of
 * tools/reference/make_bert_fixtures.py (every BERT tensor lands where {@link QFormer#bertSources} says, nothing
 * else is copied, strict errors), and the real all-MiniLM-L6-v2 into the demo config.
 */
class QFormerBertInitTest {

    static final Path BERT = Path.of("src/test/resources/fixtures/bert");
    /** The tiny fixture BERT's shape, cross-attending to 32-wide features (PatchImageInterface.FEATURES). */
    static final QFormerConfig TINY = new QFormerConfig(64, 2, 4, 128, 2, 32, 1e-12, 8, "gelu");

    private NDManager manager;

    @BeforeEach
    void setUp() {
        manager = NDManager.newBaseManager();
    }

    @AfterEach
    void tearDown() {
        manager.close();
    }

    private static Map<String, HostTensor> readAll(Path file) throws IOException {
        Map<String, HostTensor> out = new java.util.LinkedHashMap<>();
        try (Safetensors tensors = Safetensors.open(file)) {
            for (String name : tensors.names()) out.put(name, tensors.get(name));
        }
        return out;
    }

    @Test
    void everyBertTensorLandsWhereExpectedAndCrossAttentionIsFresh() throws IOException {
        Map<String, HostTensor> bert = readAll(BERT.resolve("model.safetensors"));
        QFormer qformer = QFormer.initialiseFromBert(BERT, TINY, 7, manager);
        QFormer random = QFormer.initialise(TINY, 7, manager);
        Map<String, String> sources = QFormer.bertSources(TINY);
        for (var entry : sources.entrySet()) {
            assertArrayEquals(bert.get(entry.getValue()).toFloats(), qformer.tensors().get(entry.getKey()).toFloatArray(),
                    entry.getKey() + " ← " + entry.getValue());
        }
        // the query FFN is BERT's FFN (LAVIS copies intermediate → intermediate_query), the top LayerNorm BERT's embeddings one
        assertEquals("encoder.layer.1.intermediate.dense.weight", sources.get("encoder.layer.1.intermediate_query.dense.weight"));
        assertEquals("embeddings.LayerNorm.weight", sources.get("layernorm.weight"));
        // not from BERT: cross-attention and queries, drawn exactly as the random initialisation draws them
        Set<String> fresh = new HashSet<>(qformer.tensors().keySet());
        fresh.removeAll(sources.keySet());
        List<String> expectedFresh = new ArrayList<>(List.of("query_tokens"));
        for (String name : QFormer.expectedShapes(TINY).keySet()) if (name.contains("crossattention")) expectedFresh.add(name);
        assertEquals(new HashSet<>(expectedFresh), fresh);
        assertEquals(10, expectedFresh.size() - 1); // layer 0 only: q, k, v, dense, LayerNorm
        for (String name : fresh) {
            assertArrayEquals(random.tensors().get(name).toFloatArray(), qformer.tensors().get(name).toFloatArray(), name);
        }
        float[] crossWeight = qformer.tensors().get("encoder.layer.0.crossattention.attention.key.weight").toFloatArray();
        double sum = 0;
        for (float v : crossWeight) sum += v * v;
        assertEquals(0.02, Math.sqrt(sum / crossWeight.length), 0.002); // N(0, 0.02), not a BERT tensor (std ≈ 0.2)
        // every BERT layer/LayerNorm tensor is used; the rest belong to the text path or are the documented unused keys
        Set<String> unused = new HashSet<>(bert.keySet());
        unused.removeAll(sources.values());
        unused.removeAll(BertCheckpoint.UNUSED);
        assertEquals(Set.of("embeddings.word_embeddings.weight", "embeddings.position_embeddings.weight"), unused);
    }

    @Test
    void readsPrefixedMaskedLmCheckpoints(@TempDir Path dir) throws IOException {
        List<HostTensor> prefixed = new ArrayList<>();
        readAll(BERT.resolve("model.safetensors")).forEach((name, t) ->
                prefixed.add(new HostTensor("bert." + name, t.dtype(), t.shape(), t.data())));
        prefixed.add(HostTensor.ofFloats("cls.seq_relationship.bias", new float[2], 2));
        SafetensorsWriter.write(dir.resolve("model.safetensors"), prefixed, Map.of("format", "pt"));
        QFormer plain = QFormer.initialiseFromBert(BERT, TINY, 1, manager);
        QFormer fromPrefixed = QFormer.initialiseFromBert(dir, TINY, 1, manager);
        for (String name : plain.tensors().keySet()) {
            assertArrayEquals(plain.tensors().get(name).toFloatArray(), fromPrefixed.tensors().get(name).toFloatArray(), name);
        }
    }

    @Test
    void strictAboutShapesKeysAndConfig(@TempDir Path dir) throws IOException {
        Map<String, HostTensor> bert = readAll(BERT.resolve("model.safetensors"));
        // a shape that does not fit: the error names the key and both shapes
        Path wrongShape = dir.resolve("shape.safetensors");
        List<HostTensor> tensors = new ArrayList<>(bert.values());
        tensors.replaceAll(t -> t.name().equals("encoder.layer.1.intermediate.dense.weight")
                ? HostTensor.ofFloats(t.name(), new float[96 * 64], 96, 64) : t);
        SafetensorsWriter.write(wrongShape, tensors, Map.of());
        IllegalArgumentException shape = assertThrows(IllegalArgumentException.class,
                () -> QFormer.initialiseFromBert(wrongShape, TINY, 1, manager));
        assertTrue(shape.getMessage().contains("'encoder.layer.1.intermediate.dense.weight' has shape [96, 64]")
                && shape.getMessage().contains("[128, 64]"), shape.getMessage());
        // an unknown key
        Path unknown = dir.resolve("unknown.safetensors");
        tensors = new ArrayList<>(bert.values());
        tensors.add(HostTensor.ofFloats("encoder.layer.0.attention.self.rotary.weight", new float[4], 4));
        SafetensorsWriter.write(unknown, tensors, Map.of());
        IllegalArgumentException key = assertThrows(IllegalArgumentException.class,
                () -> QFormer.initialiseFromBert(unknown, TINY, 1, manager));
        assertTrue(key.getMessage().contains("'encoder.layer.0.attention.self.rotary.weight'"), key.getMessage());
        // a missing tensor
        Path missing = dir.resolve("missing.safetensors");
        tensors = new ArrayList<>(bert.values());
        tensors.removeIf(t -> t.name().equals("encoder.layer.0.attention.self.value.bias"));
        SafetensorsWriter.write(missing, tensors, Map.of());
        IllegalArgumentException absent = assertThrows(IllegalArgumentException.class,
                () -> QFormer.initialiseFromBert(missing, TINY, 1, manager));
        assertTrue(absent.getMessage().contains("missing BERT tensor 'encoder.layer.0.attention.self.value.bias'"),
                absent.getMessage());
        // a config whose heads differ (shapes cannot show it)
        Path otherHeads = dir.resolve("heads");
        Files.createDirectories(otherHeads);
        Files.copy(BERT.resolve("model.safetensors"), otherHeads.resolve("model.safetensors"));
        Files.writeString(otherHeads.resolve("config.json"),
                Files.readString(BERT.resolve("config.json")).replace("\"num_attention_heads\": 4", "\"num_attention_heads\": 8"));
        IllegalArgumentException heads = assertThrows(IllegalArgumentException.class,
                () -> QFormer.initialiseFromBert(otherHeads, TINY, 1, manager));
        assertTrue(heads.getMessage().contains("num_attention_heads 8 (Q-Former: 4)"), heads.getMessage());
        // more BERT layers than the Q-Former has: seen in config.json, and in the keys when there is no config.json
        QFormerConfig oneLayer = new QFormerConfig(64, 1, 4, 128, 2, 32, 1e-12, 8, "gelu");
        IllegalArgumentException depth = assertThrows(IllegalArgumentException.class,
                () -> QFormer.initialiseFromBert(BERT, oneLayer, 1, manager));
        assertTrue(depth.getMessage().contains("num_hidden_layers 2 (Q-Former: 1)"), depth.getMessage());
        Path bare = dir.resolve("bare.safetensors");
        Files.copy(BERT.resolve("model.safetensors"), bare);
        IllegalArgumentException layers = assertThrows(IllegalArgumentException.class,
                () -> QFormer.initialiseFromBert(bare, oneLayer, 1, manager));
        assertTrue(layers.getMessage().contains("'encoder.layer.1.") && layers.getMessage().contains("beyond the "
                + "Q-Former's 1 layers"), layers.getMessage());
    }

    /** The real all-MiniLM-L6-v2 (model store) into the demo Q-Former: the recipe's bertInit. */
    @Test
    void realMiniLmFillsTheDemoQFormer() throws IOException {
        Path minilm = xllm.RealWeights.require("all-minilm-l6-v2");
        QFormerConfig demo = xllm.model.ImageInterface.qformerConfig("demo");
        QFormer qformer = QFormer.initialiseFromBert(minilm, demo, 42, manager);
        try (Safetensors file = Safetensors.open(minilm)) {
            for (String[] pair : new String[][] {
                    {"layernorm.bias", "embeddings.LayerNorm.bias"},
                    {"encoder.layer.0.attention.attention.query.weight", "encoder.layer.0.attention.self.query.weight"},
                    {"encoder.layer.5.output_query.dense.weight", "encoder.layer.5.output.dense.weight"},
                    {"encoder.layer.3.intermediate_query.dense.bias", "encoder.layer.3.intermediate.dense.bias"}}) {
                NDArray ours = qformer.tensors().get(pair[0]);
                assertArrayEquals(file.get(pair[1]).toFloats(), ours.toFloatArray(), pair[0]);
            }
        }
        assertFalse(qformer.tensors().containsKey("encoder.layer.1.crossattention.attention.key.weight"));
        assertArrayEquals(new long[] {384, 1280},
                qformer.tensors().get("encoder.layer.4.crossattention.attention.key.weight").getShape().getShape());
    }
}
