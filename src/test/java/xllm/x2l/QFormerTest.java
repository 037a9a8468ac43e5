package xllm.x2l;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import xllm.tensor.HostTensor;
import xllm.tensor.Safetensors;
import xllm.tensor.SafetensorsWriter;
import xllm.tensor.TrainableParameter;

import java.io.IOException;
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
 * {@link QFormer} against transformers' {@code Blip2QFormerModel} (fixtures of
 * tools/reference/make_qformer_fixtures.py: hidden 64, 2 layers — layer 0 with cross-attention, layer 1 without —,
 * weights N(0, 0.2), an image mask hiding the last 3 of 10 frames of row 1): last hidden state and the gradients of
 * Σ(output·R) to the query embeddings and the image features within 1e-4; strict loading; save/load round trip;
 * masked frames having no influence; seeded initialisation.
 */
class QFormerTest {

    private static final Path FIXTURES = Path.of("src/test/resources/fixtures/qformer");
    private static final float TOLERANCE = 1e-4f;

    private NDManager manager;
    private QFormerConfig config;
    private Map<String, HostTensor> reference;

    @BeforeEach
    void setUp() throws IOException {
        manager = NDManager.newBaseManager();
        config = QFormerConfig.read(FIXTURES.resolve("config.json"));
        reference = new java.util.HashMap<>();
        try (Safetensors file = Safetensors.open(FIXTURES.resolve("reference.safetensors"))) {
            for (String name : file.names()) reference.put(name, file.get(name));
        }
    }

    @AfterEach
    void tearDown() {
        manager.close();
    }

    private NDArray input(NDManager scope, String name) {
        return reference.get(name).toFloatNDArray(scope);
    }

    private QFormer fixtureModel() throws IOException {
        return QFormer.load(FIXTURES.resolve("model.safetensors"), config, manager);
    }

    private static float maxAbsDifference(float[] a, float[] b) {
        assertEquals(a.length, b.length);
        float max = 0;
        for (int i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i] - b[i]));
        return max;
    }

    @Test
    void configReadsTransformersNames() {
        assertEquals(new QFormerConfig(64, 2, 4, 128, 2, 48, 1e-12, 8, "gelu"), config);
        assertTrue(config.hasCrossAttention(0));
        assertFalse(config.hasCrossAttention(1));
    }

    @Test
    void outputMatchesTransformers() throws IOException {
        QFormer model = fixtureModel();
        try (NDManager scope = manager.newSubManager()) {
            NDArray features = input(scope, "encoder_hidden_states");
            NDArray mask = input(scope, "encoder_attention_mask");
            NDArray output = model.forward(input(scope, "query_embeds"), features, mask);
            assertEquals(new Shape(2, 8, 64), output.getShape());
            float error = maxAbsDifference(reference.get("last_hidden_state").toFloats(), output.toFloatArray());
            System.out.println("QFormer parity: max |Δ last_hidden_state| = " + error);
            assertTrue(error <= TOLERANCE, "max |Δ| = " + error);

            float learned = maxAbsDifference(reference.get("last_hidden_state_learned").toFloats(),
                    model.forward(features, mask).toFloatArray());
            System.out.println("QFormer parity: max |Δ last_hidden_state (learned queries)| = " + learned);
            assertTrue(learned <= TOLERANCE, "learned queries: max |Δ| = " + learned);
        }
    }

    @Test
    void gradientsMatchTransformers() throws IOException {
        QFormer model = fixtureModel();
        try (NDManager scope = manager.newSubManager()) {
            NDArray queries = input(scope, "query_embeds");
            NDArray features = input(scope, "encoder_hidden_states");
            NDArray mask = input(scope, "encoder_attention_mask");
            NDArray weights = input(scope, "output_weights");
            try (GradientCollector collector = Engine.getInstance().newGradientCollector()) {
                queries.setRequiresGradient(true);
                features.setRequiresGradient(true);
                collector.backward(model.forward(queries, features, mask).mul(weights).sum());
            }
            float queryError = maxAbsDifference(reference.get("grad_query_embeds").toFloats(),
                    queries.getGradient().toFloatArray());
            float featureError = maxAbsDifference(reference.get("grad_encoder_hidden_states").toFloats(),
                    features.getGradient().toFloatArray());
            System.out.println("QFormer parity: max |Δ grad query_embeds| = " + queryError
                    + ", max |Δ grad encoder_hidden_states| = " + featureError);
            assertTrue(queryError <= TOLERANCE, "query gradient: max |Δ| = " + queryError);
            assertTrue(featureError <= TOLERANCE, "feature gradient: max |Δ| = " + featureError);
            // masked frames (row 1, frames 7..9) receive no gradient at all
            float[] maskedGradient = features.getGradient().get("1, 7:, :").toFloatArray();
            for (float g : maskedGradient) assertEquals(0f, g);
        }
    }

    @Test
    void parameterGradientsMatchTransformers() throws IOException {
        QFormer model = fixtureModel();
        List<TrainableParameter> parameters = model.parameters("");
        try (NDManager scope = manager.newSubManager();
             Safetensors expected = Safetensors.open(FIXTURES.resolve("parameter_gradients.safetensors"))) {
            NDArray features = input(scope, "encoder_hidden_states");
            NDArray mask = input(scope, "encoder_attention_mask");
            NDArray weights = input(scope, "output_weights");
            float worst = 0;
            for (boolean learned : new boolean[] {false, true}) {
                try (GradientCollector collector = Engine.getInstance().newGradientCollector()) {
                    // the first pass never touches query_tokens and the second compares only query_tokens, so
                    // gradients accumulated by the first pass do not matter
                    for (TrainableParameter p : parameters) p.value().setRequiresGradient(true);
                    NDArray output = learned ? model.forward(features, mask)
                            : model.forward(input(scope, "query_embeds"), features, mask);
                    collector.backward(output.mul(weights).sum());
                }
                for (TrainableParameter p : parameters) {
                    if (learned != p.name().equals("query_tokens")) continue;
                    float error = maxAbsDifference(expected.get(p.name()).toFloats(), p.value().getGradient().toFloatArray());
                    assertTrue(error <= TOLERANCE, p.name() + ": max |Δ grad| = " + error);
                    worst = Math.max(worst, error);
                }
            }
            System.out.println("QFormer parity: max |Δ parameter gradient| over " + parameters.size() + " tensors = " + worst);
        }
    }

    @Test
    void frozenQFormerPassesGradientsWithoutCollectingAny() throws IOException {
        QFormer model = fixtureModel();
        try (NDManager scope = manager.newSubManager()) {
            NDArray queries = input(scope, "query_embeds");
            try (GradientCollector collector = Engine.getInstance().newGradientCollector()) {
                queries.setRequiresGradient(true);
                collector.backward(model.forward(queries, input(scope, "encoder_hidden_states"), null).sum());
            }
            assertTrue(queries.getGradient().abs().max().getFloat() > 0f);
            for (TrainableParameter p : model.parameters("")) assertFalse(p.value().hasGradient(), p.name());
        }
    }

    /**
     * Trainable end to end: from BERT init, AdamW fits the outputs of another Q-Former on 4 samples; per-step tensors
     * stay in the step's scope (memory flat over 300 steps).
     */
    @Test
    void overfitsFourSamples() throws ReflectiveOperationException, IOException {
        QFormer teacher = fixtureModel();
        QFormer student = QFormer.initialise(config, 5, manager);
        List<TrainableParameter> parameters = student.parameters("qformer.");
        for (TrainableParameter p : parameters) p.value().setRequiresGradient(true);
        try (NDManager data = manager.newSubManager();
             xllm.train.AdamW optimiser = new xllm.train.AdamW(parameters, new xllm.train.AdamW.Config(0.9, 0.98, 1e-8, 0))) {
            java.util.Random random = new java.util.Random(3);
            float[] values = new float[4 * 10 * 48];
            for (int i = 0; i < values.length; i++) values[i] = (float) random.nextGaussian();
            Shape shape = new Shape(4, 10, 48);
            NDArray target = teacher.forward(data.create(values, shape), null); // (4, 8, 64), no gradient
            float first = 0, last = 0;
            int modelArrays = 0, dataArrays = 0;
            for (int step = 0; step < 300; step++) {
                if (step == 1) {
                    modelArrays = resources(manager);
                    dataArrays = resources(data);
                }
                try (NDManager scope = data.newSubManager()) {
                    NDArray loss;
                    try (GradientCollector collector = Engine.getInstance().newGradientCollector()) {
                        NDArray output = student.forward(scope.create(values, shape), null); // lives in scope
                        loss = output.sub(target).square().mean();
                        collector.backward(loss);
                    }
                    last = loss.getFloat();
                    if (step == 0) first = last;
                    optimiser.step(3e-3);
                    optimiser.zeroGradients();
                }
            }
            System.out.println("QFormer overfit: MSE " + first + " → " + last);
            assertEquals(modelArrays, resources(manager), "arrays left on the model's manager by 300 steps");
            assertEquals(dataArrays, resources(data), "arrays left on the data manager by 300 steps");
            assertTrue(last < 0.01f * first, first + " → " + last);
        }
    }

    @Test
    void maskedFramesDoNotInfluenceTheOutput() throws IOException {
        QFormer model = fixtureModel();
        try (NDManager scope = manager.newSubManager()) {
            NDArray queries = input(scope, "query_embeds");
            NDArray mask = input(scope, "encoder_attention_mask");
            NDArray features = input(scope, "encoder_hidden_states");
            float[] before = model.forward(queries, features, mask).toFloatArray();
            NDArray changed = features.duplicate();
            changed.set(new ai.djl.ndarray.index.NDIndex("1, 7:, :"), scope.randomNormal(0f, 50f, new Shape(3, 48),
                    ai.djl.ndarray.types.DataType.FLOAT32));
            float[] after = model.forward(queries, changed, mask).toFloatArray();
            assertArrayEquals(before, after, 0f);
            // …and the mask matters: without it the same change moves row 1
            float[] unmasked = model.forward(queries, features, null).toFloatArray();
            float[] unmaskedChanged = model.forward(queries, changed, null).toFloatArray();
            assertTrue(maxAbsDifference(unmasked, unmaskedChanged) > 1e-2f);
        }
    }

    @Test
    void parameterNamesAreTransformersStateDictNames() throws IOException {
        JsonNode json = new ObjectMapper().readTree(FIXTURES.resolve("reference.json").toFile());
        Set<String> transformers = new HashSet<>();
        json.get("parameters").forEach(n -> transformers.add(n.asText()));
        assertEquals(transformers, QFormer.expectedShapes(config).keySet());
        List<TrainableParameter> parameters = QFormer.initialise(config, 1, manager).parameters("qformer.");
        assertEquals(transformers.size(), parameters.size());
        for (TrainableParameter p : parameters) {
            assertTrue(p.name().startsWith("qformer."), p.name());
            assertTrue(transformers.contains(p.name().substring("qformer.".length())), p.name());
        }
        assertTrue(transformers.contains("encoder.layer.0.crossattention.attention.key.weight"));
        assertFalse(transformers.contains("encoder.layer.1.crossattention.attention.key.weight"));
    }

    @Test
    void saveAndLoadGiveIdenticalOutputs(@TempDir Path dir) throws IOException {
        for (QFormer model : List.of(fixtureModel(), QFormer.initialise(config, 7, manager))) {
            Path file = dir.resolve("qformer.safetensors");
            model.save(file);
            QFormer again = QFormer.load(file, config, manager);
            try (NDManager scope = manager.newSubManager()) {
                NDArray features = input(scope, "encoder_hidden_states");
                NDArray mask = input(scope, "encoder_attention_mask");
                assertArrayEquals(model.forward(features, mask).toFloatArray(), again.forward(features, mask).toFloatArray(), 0f);
            }
        }
    }

    @Test
    void initialisationIsSeededAndBertStyle() {
        QFormer a = QFormer.initialise(config, 11, manager), b = QFormer.initialise(config, 11, manager);
        QFormer c = QFormer.initialise(config, 12, manager);
        String weight = "encoder.layer.0.crossattention.attention.key.weight";
        assertArrayEquals(a.tensors().get(weight).toFloatArray(), b.tensors().get(weight).toFloatArray(), 0f);
        assertFalse(java.util.Arrays.equals(a.tensors().get(weight).toFloatArray(), c.tensors().get(weight).toFloatArray()));
        assertEquals(new Shape(64, 48), a.tensors().get(weight).getShape());
        double std = a.tensors().get(weight).toType(ai.djl.ndarray.types.DataType.FLOAT64, false)
                .square().mean().getDouble();
        assertEquals(0.02, Math.sqrt(std), 0.002);
        for (float v : a.tensors().get("encoder.layer.1.output_query.LayerNorm.weight").toFloatArray()) assertEquals(1f, v);
        for (float v : a.tensors().get("encoder.layer.1.output_query.LayerNorm.bias").toFloatArray()) assertEquals(0f, v);
        for (float v : a.tensors().get("encoder.layer.0.attention.attention.query.bias").toFloatArray()) assertEquals(0f, v);
        assertEquals(new Shape(1, 8, 64), a.queryTokens().getShape());
    }

    @Test
    void loadingIsStrict(@TempDir Path dir) throws IOException {
        List<HostTensor> tensors = new ArrayList<>();
        try (Safetensors file = Safetensors.open(FIXTURES.resolve("model.safetensors"))) {
            for (String name : file.names()) tensors.add(file.get(name));
        }
        String victim = "encoder.layer.1.output_query.dense.weight";

        Path missing = dir.resolve("missing.safetensors");
        SafetensorsWriter.write(missing, tensors.stream().filter(t -> !t.name().equals(victim)).toList(), Map.of());
        assertMessageNames(missing, victim, "missing");

        Path unexpected = dir.resolve("unexpected.safetensors");
        List<HostTensor> extra = new ArrayList<>(tensors);
        extra.add(HostTensor.ofFloats("encoder.layer.1.crossattention.attention.key.weight", new float[64 * 48], 64, 48));
        SafetensorsWriter.write(unexpected, extra, Map.of());
        assertMessageNames(unexpected, "encoder.layer.1.crossattention.attention.key.weight", "unexpected");

        Path misshapen = dir.resolve("misshapen.safetensors");
        List<HostTensor> reshaped = new ArrayList<>();
        for (HostTensor t : tensors) {
            reshaped.add(t.name().equals(victim) ? HostTensor.ofFloats(victim, t.toFloats(), 128, 64) : t);
        }
        SafetensorsWriter.write(misshapen, reshaped, Map.of());
        assertMessageNames(misshapen, victim, "shape");

        // a model with a different cross-attention pattern does not silently load this checkpoint
        QFormerConfig everyLayer = new QFormerConfig(64, 2, 4, 128, 1, 48, 1e-12, 8, "gelu");
        IllegalArgumentException error = assertThrows(IllegalArgumentException.class,
                () -> QFormer.load(FIXTURES.resolve("model.safetensors"), everyLayer, manager));
        assertTrue(error.getMessage().contains("encoder.layer.1.crossattention"), error.getMessage());
    }

    @Test
    void loadsTheQFormerOutOfAWholeBlip2Checkpoint(@TempDir Path dir) throws IOException {
        List<HostTensor> tensors = new ArrayList<>();
        try (Safetensors file = Safetensors.open(FIXTURES.resolve("model.safetensors"))) {
            for (String name : file.names()) {
                HostTensor t = file.get(name);
                String key = name.equals("query_tokens") ? name : "qformer." + name;
                tensors.add(new HostTensor(key, t.dtype(), t.shape(), t.data()));
            }
        }
        tensors.add(HostTensor.ofFloats("vision_model.post_layernorm.weight", new float[48], 48));
        tensors.add(HostTensor.ofFloats("language_projection.weight", new float[64 * 32], 32, 64));
        Path checkpoint = dir.resolve("model.safetensors");
        SafetensorsWriter.write(checkpoint, tensors, Map.of());
        java.nio.file.Files.writeString(dir.resolve("config.json"), """
                {"model_type": "blip-2", "num_query_tokens": 8,
                 "qformer_config": {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
                   "intermediate_size": 128, "cross_attention_frequency": 2, "encoder_hidden_size": 48},
                 "vision_config": {"hidden_size": 48}}""");
        QFormerConfig blip2Config = QFormerConfig.readFromBlip2(dir.resolve("config.json"));
        assertEquals(config, blip2Config);
        QFormer fromBlip2 = QFormer.loadFromBlip2(dir, blip2Config, manager);
        QFormer direct = fixtureModel();
        try (NDManager scope = manager.newSubManager()) {
            NDArray features = input(scope, "encoder_hidden_states");
            NDArray mask = input(scope, "encoder_attention_mask");
            assertArrayEquals(direct.forward(features, mask).toFloatArray(), fromBlip2.forward(features, mask).toFloatArray(), 0f);
        }
        // strict inside its own namespace
        tensors.add(HostTensor.ofFloats("qformer.encoder.layer.0.intermediate.dense.bias", new float[128], 128));
        SafetensorsWriter.write(checkpoint, tensors, Map.of());
        assertThrows(IllegalArgumentException.class, () -> QFormer.loadFromBlip2(checkpoint, config, manager));
        // the plain loader does not accept a whole BLIP-2 checkpoint
        assertThrows(IllegalArgumentException.class, () -> QFormer.load(checkpoint, config, manager));
    }

    private static int resources(NDManager manager) throws ReflectiveOperationException {
        java.lang.reflect.Field field = ai.djl.ndarray.BaseNDManager.class.getDeclaredField("resources");
        field.setAccessible(true);
        return ((Map<?, ?>) field.get(manager)).size();
    }

    private void assertMessageNames(Path file, String key, String word) {
        IllegalArgumentException error = assertThrows(IllegalArgumentException.class,
                () -> QFormer.load(file, config, manager));
        assertTrue(error.getMessage().contains(file.toString()), error.getMessage());
        assertTrue(error.getMessage().contains(key), error.getMessage());
        assertTrue(error.getMessage().contains(word), error.getMessage());
    }
}
