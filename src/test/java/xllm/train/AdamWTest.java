package xllm.train;

import xllm.tensor.TrainableParameter;

import ai.djl.engine.Engine;
import ai.djl.ndarray.BaseNDManager;
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

import java.io.IOException;
import java.lang.reflect.Field;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * AdamW + clip_grad_norm_ against the torch.optim.AdamW trajectory of tools/reference/make_optim_fixtures.py
 * (float32 parameters in both; tolerance 1e-6 absolute on parameters, 1e-6 relative on norms), plus checkpoint round
 * trip, strict loading, the grouping rule and flat memory over 200 steps.
 */
class AdamWTest {

    private static final Path FIXTURE = Path.of("src/test/resources/fixtures/train/adamw.json");

    private NDManager manager;

    @TempDir
    Path temporary;

    @BeforeEach
    void open() {
        manager = NDManager.newBaseManager();
    }

    @AfterEach
    void close() {
        manager.close();
    }

    /** The fixture's three parameters at their initial values, float32, gradients on. */
    private List<TrainableParameter> initialParameters(JsonNode fixture, NDManager parent) {
        List<TrainableParameter> parameters = new ArrayList<>();
        for (JsonNode name : fixture.get("names")) {
            NDArray value = parent.create(floats(fixture.get("initial").get(name.asText())),
                    shape(fixture.get("shapes").get(name.asText())));
            value.setRequiresGradient(true);
            parameters.add(new TrainableParameter(name.asText(), value));
        }
        return parameters;
    }

    /** Makes {@code gradients} the parameters' gradients: zero, then backward of sum(g * p) (d/dp = g exactly). */
    private static void feedGradients(AdamW optimizer, List<TrainableParameter> parameters, Map<String, float[]> gradients) {
        optimizer.zeroGradients();
        NDManager parent = parameters.get(0).value().getManager();
        try (NDManager step = parent.newSubManager();
             GradientCollector collector = Engine.getInstance().newGradientCollector()) {
            NDArray loss = null;
            for (TrainableParameter parameter : parameters) {
                NDArray g = step.create(gradients.get(parameter.name()), parameter.value().getShape());
                NDArray term = g.mul(parameter.value()).sum(); // g first: results land in the step manager
                loss = loss == null ? term : loss.add(term);
            }
            collector.backward(loss);
        }
    }

    private static Map<String, float[]> gradients(JsonNode step) {
        Map<String, float[]> out = new LinkedHashMap<>();
        step.get("grads").fields().forEachRemaining(e -> out.put(e.getKey(), floats(e.getValue())));
        return out;
    }

    @Test
    void matchesTorchAdamWWithClippingAndWarmupCosine() throws IOException {
        JsonNode fixture = new ObjectMapper().readTree(FIXTURE.toFile());
        JsonNode schedule = fixture.get("schedule");
        LrSchedule lrSchedule = LrSchedule.warmupCosine(schedule.get("init_lr").asDouble(), schedule.get("min_lr").asDouble(),
                schedule.get("warmup_start_lr").asDouble(), schedule.get("warmup_steps").asLong(), schedule.get("total_steps").asLong());
        JsonNode optim = fixture.get("optimizer");
        AdamW.Config config = new AdamW.Config(optim.get("betas").get(0).asDouble(), optim.get("betas").get(1).asDouble(),
                optim.get("eps").asDouble(), optim.get("weight_decay").asDouble());
        assertEquals(AdamW.Config.paper(), config);

        List<TrainableParameter> parameters = initialParameters(fixture, manager);
        int clipped = 0;
        try (AdamW optimizer = new AdamW(parameters, config)) {
            for (TrainableParameter p : parameters) {
                assertEquals(fixture.get("decays").get(p.name()).asBoolean(), optimizer.decays(p.name()), p.name());
            }
            for (JsonNode step : fixture.get("steps")) {
                int index = step.get("step").asInt();
                feedGradients(optimizer, parameters, gradients(step));
                double norm = optimizer.clipGradientNorm(optim.get("max_norm").asDouble());
                double expectedNorm = step.get("grad_norm").asDouble();
                assertEquals(expectedNorm, norm, 1e-6 * Math.max(1, expectedNorm), "grad norm, step " + index);
                if (step.get("clipped").asBoolean()) {
                    clipped++;
                    assertEquals(1.0, optimizer.clipGradientNorm(0), 1e-5, "gradients scaled in place, step " + index);
                }
                double lr = lrSchedule.at(optimizer.steps());
                assertEquals(step.get("lr").asDouble(), lr, 1e-15, "lr, step " + index);
                optimizer.step(lr);
                for (TrainableParameter p : parameters) {
                    float[] expected = floats(step.get("params").get(p.name()));
                    assertClose(expected, p.value().toFloatArray(), 1e-6f, p.name() + " after step " + index);
                }
            }
            assertEquals(12, optimizer.steps());
            Map<String, NDArray> state = optimizer.state();
            for (TrainableParameter p : parameters) {
                JsonNode reference = fixture.get("final_state").get(p.name());
                assertClose(floats(reference.get("exp_avg")), state.get(p.name() + ".exp_avg").toFloatArray(), 1e-6f, p.name() + ".exp_avg");
                assertClose(floats(reference.get("exp_avg_sq")), state.get(p.name() + ".exp_avg_sq").toFloatArray(), 1e-7f, p.name() + ".exp_avg_sq");
                assertEquals(reference.get("step").asLong(), state.get("step").toLongArray()[0]);
            }
            state.values().forEach(NDArray::close);
        }
        assertEquals(4, clipped, "fixture clips on steps 2, 5, 8, 11");
    }

    @Test
    void stateRoundTripEqualsStraightRun() throws IOException {
        JsonNode fixture = new ObjectMapper().readTree(FIXTURE.toFile());
        JsonNode steps = fixture.get("steps");
        LrSchedule lr = LrSchedule.warmupCosine(1e-2, 1e-3, 1e-3, 3, 12);

        List<TrainableParameter> straight = initialParameters(fixture, manager);
        try (AdamW optimizer = new AdamW(straight, AdamW.Config.paper())) {
            for (int i = 0; i < 12; i++) {
                feedGradients(optimizer, straight, gradients(steps.get(i)));
                optimizer.clipGradientNorm(1.0);
                optimizer.step(lr.at(optimizer.steps()));
            }
        }

        // 6 steps, checkpoint through a safetensors file, a fresh optimiser loads it, 6 more steps
        List<TrainableParameter> resumed = initialParameters(fixture, manager);
        Path file = temporary.resolve("optimizer.safetensors");
        try (AdamW first = new AdamW(resumed, AdamW.Config.paper())) {
            for (int i = 0; i < 6; i++) {
                feedGradients(first, resumed, gradients(steps.get(i)));
                first.clipGradientNorm(1.0);
                first.step(lr.at(first.steps()));
            }
            List<HostTensor> tensors = new ArrayList<>();
            for (Map.Entry<String, NDArray> e : first.state().entrySet()) {
                tensors.add(SafetensorsWriter.fromNDArray(e.getKey(), e.getValue()));
                e.getValue().close();
            }
            SafetensorsWriter.write(file, tensors, Map.of());
        }
        Map<String, NDArray> checkpoint = new LinkedHashMap<>();
        try (Safetensors st = Safetensors.open(file)) {
            for (String name : st.names()) checkpoint.put(name, st.get(name).toNDArray(manager));
        }
        assertEquals(new Shape(), checkpoint.get("step").getShape(), "step is an int64 scalar");
        try (AdamW second = new AdamW(resumed, AdamW.Config.paper())) {
            assertEquals(0, second.steps());
            second.loadState(checkpoint);
            assertEquals(6, second.steps());
            for (int i = 6; i < 12; i++) {
                feedGradients(second, resumed, gradients(steps.get(i)));
                second.clipGradientNorm(1.0);
                second.step(lr.at(second.steps()));
            }
        }
        for (int i = 0; i < straight.size(); i++) {
            assertArrayEquals(straight.get(i).value().toFloatArray(), resumed.get(i).value().toFloatArray(),
                    straight.get(i).name() + ": resumed run must equal the straight run bit for bit");
        }
    }

    @Test
    void loadStateKeepsCopiesNotViewsOfTheLoadedArrays() throws IOException {
        // A resumed convert-asr run corrupted the heap: the moments aliased the checkpoint's host buffers, which were
        // freed after loading. Writing to the loaded arrays must not reach the optimiser's state.
        JsonNode fixture = new ObjectMapper().readTree(FIXTURE.toFile());
        List<TrainableParameter> parameters = initialParameters(fixture, manager);
        try (AdamW source = new AdamW(parameters, AdamW.Config.paper());
             AdamW target = new AdamW(parameters, AdamW.Config.paper())) {
            feedGradients(source, parameters, gradients(fixture.get("steps").get(0)));
            source.step(1e-2);
            Map<String, NDArray> loaded = source.state();
            Map<String, float[]> expected = new LinkedHashMap<>();
            loaded.forEach((k, v) -> expected.put(k, v.toType(ai.djl.ndarray.types.DataType.FLOAT32, false).toFloatArray()));
            target.loadState(loaded);
            for (NDArray array : loaded.values()) array.subi(array).addi(7);   // overwrite every loaded array in place
            target.state().forEach((k, v) -> assertArrayEquals(expected.get(k),
                    v.toType(ai.djl.ndarray.types.DataType.FLOAT32, false).toFloatArray(), k));
        }
    }

    @Test
    void loadStateIsStrict() throws IOException {
        JsonNode fixture = new ObjectMapper().readTree(FIXTURE.toFile());
        List<TrainableParameter> parameters = initialParameters(fixture, manager);
        try (AdamW optimizer = new AdamW(parameters, AdamW.Config.paper())) {
            Map<String, NDArray> good = optimizer.state();

            Map<String, NDArray> unknown = new HashMap<>(good);
            unknown.put("proj.weight.momentum", manager.zeros(new Shape(4, 3)));
            assertMessageNames("proj.weight.momentum", assertThrows(IllegalArgumentException.class, () -> optimizer.loadState(unknown)));

            Map<String, NDArray> missing = new HashMap<>(good);
            missing.remove("query_tokens.exp_avg_sq");
            assertMessageNames("query_tokens.exp_avg_sq", assertThrows(IllegalArgumentException.class, () -> optimizer.loadState(missing)));

            Map<String, NDArray> noStep = new HashMap<>(good);
            noStep.remove("step");
            assertMessageNames("step", assertThrows(IllegalArgumentException.class, () -> optimizer.loadState(noStep)));

            Map<String, NDArray> wrongShape = new HashMap<>(good);
            wrongShape.put("proj.bias.exp_avg", manager.zeros(new Shape(4)));
            assertMessageNames("proj.bias.exp_avg", assertThrows(IllegalArgumentException.class, () -> optimizer.loadState(wrongShape)));

            Map<String, NDArray> transposed = new HashMap<>(good);
            transposed.put("proj.weight.exp_avg_sq", manager.zeros(new Shape(3, 4)));
            assertMessageNames("proj.weight.exp_avg_sq", assertThrows(IllegalArgumentException.class, () -> optimizer.loadState(transposed)));

            assertEquals(0, optimizer.steps(), "a rejected state changes nothing");
            optimizer.loadState(good); // the unmodified map loads
        }
    }

    @Test
    void groupingRule() {
        // decay: matrices, conv kernels, word embeddings, Q-Former attention ("query" is not "query_tokens")
        assertTrue(decays("languageProjection.weight", 8, 4));
        assertTrue(decays("Qformer.bert.encoder.layer.0.attention.self.query.weight", 8, 8));
        assertTrue(decays("Qformer.bert.embeddings.word_embeddings.weight", 16, 8));
        assertTrue(decays("speechInterface.conv.weight", 4, 2, 3));
        assertTrue(decays("llm_proj.weight", 8, 4));
        assertTrue(decays("kiln.weight", 4, 4), "LAVIS's substring \"ln\" would hit this; ours looks at segments");
        // no decay: biases, norm gains, query tokens, anything below 2 dims
        assertFalse(decays("llm_proj.bias", 4));
        assertFalse(decays("Qformer.bert.encoder.layer.0.output.LayerNorm.weight", 8));
        assertFalse(decays("ln_vision.weight", 8));
        assertFalse(decays("model.norm.weight", 8));
        assertFalse(decays("query_tokens", 1, 32, 8));
        assertFalse(decays("imageInterface.queryTokens", 32, 8));
        assertFalse(decays("visual_encoder.blocks.0.attn.relative_position_bias_table", 10, 4));
        assertFalse(decays("blocks.0.ln_1.weight", 2, 8), "norm by name even if 2-D");
        assertFalse(decays("bn.weight", 2, 8));
        assertFalse(decays("cif.weight_alpha", 8), "1-D: no decay whatever the name");
        assertFalse(decays("temperature"));
    }

    @Test
    void memoryStaysFlatOver200Steps() throws Exception {
        NDManager parameters = manager.newSubManager();
        NDArray weight = parameters.randomNormal(new Shape(16, 8));
        NDArray bias = parameters.zeros(new Shape(8));
        weight.setRequiresGradient(true);
        bias.setRequiresGradient(true);
        List<TrainableParameter> list = List.of(new TrainableParameter("proj.weight", weight), new TrainableParameter("proj.bias", bias));
        NDArray input = parameters.randomNormal(new Shape(4, 16));
        try (AdamW optimizer = new AdamW(list, AdamW.Config.paper())) {
            LrSchedule lr = LrSchedule.warmupCosine(1e-2, 1e-4, 1e-4, 20, 200);
            Runnable trainStep = () -> {
                optimizer.zeroGradients();
                try (NDManager step = parameters.newSubManager();
                     GradientCollector collector = Engine.getInstance().newGradientCollector()) {
                    NDArray x = input.duplicate();
                    x.attach(step);
                    NDArray y = x.matMul(weight).add(bias);  // (4, 8)
                    collector.backward(y.square().mean());
                }
                optimizer.clipGradientNorm(1.0);
                optimizer.step(lr.at(optimizer.steps()));
            };
            trainStep.run();
            int before = resources(parameters);
            for (int i = 1; i < 200; i++) trainStep.run();
            assertEquals(before, resources(parameters), "arrays attached to the parameters' manager after 200 steps");
            assertEquals(200, optimizer.steps());
            assertTrue(Float.isFinite(weight.sum().getFloat()));
        }
    }

    /** One step over a (576, 576) weight + (576,) bias, median of 100 (printed; no assertion on a shared machine). */
    @Test
    void stepTiming() {
        NDArray weight = manager.randomNormal(new Shape(576, 576));
        NDArray bias = manager.randomNormal(new Shape(576));
        weight.setRequiresGradient(true);
        bias.setRequiresGradient(true);
        List<TrainableParameter> list = List.of(new TrainableParameter("proj.weight", weight), new TrainableParameter("proj.bias", bias));
        try (AdamW optimizer = new AdamW(list, AdamW.Config.paper())) {
            feedGradients(optimizer, list, Map.of("proj.weight", manager.randomNormal(new Shape(576, 576)).toFloatArray(),
                    "proj.bias", manager.randomNormal(new Shape(576)).toFloatArray()));
            long[] stepNanos = new long[100];
            long[] clipNanos = new long[100];
            for (int i = 0; i < 120; i++) {
                long t0 = System.nanoTime();
                optimizer.clipGradientNorm(1e9); // measured, never clips
                long t1 = System.nanoTime();
                optimizer.step(1e-4);
                long t2 = System.nanoTime();
                if (i >= 20) {
                    clipNanos[i - 20] = t1 - t0;
                    stepNanos[i - 20] = t2 - t1;
                }
            }
            System.out.printf("AdamW step (576x576 + 576): median %.1f us; clipGradientNorm: median %.1f us%n",
                    median(stepNanos) / 1e3, median(clipNanos) / 1e3);
        }
    }

    private boolean decays(String name, long... shape) {
        try (NDArray value = manager.zeros(new Shape(shape))) {
            return ParameterGroups.decays(name, value);
        }
    }

    private static int resources(NDManager manager) throws ReflectiveOperationException {
        Field field = BaseNDManager.class.getDeclaredField("resources");
        field.setAccessible(true);
        return ((Map<?, ?>) field.get(manager)).size();
    }

    private static double median(long[] values) {
        long[] sorted = values.clone();
        Arrays.sort(sorted);
        return (sorted[sorted.length / 2 - 1] + sorted[sorted.length / 2]) / 2.0;
    }

    private static void assertMessageNames(String key, IllegalArgumentException e) {
        assertTrue(e.getMessage().contains("'" + key + "'"), e.getMessage());
    }

    private static void assertClose(float[] expected, float[] actual, float tolerance, String what) {
        assertEquals(expected.length, actual.length, what);
        for (int i = 0; i < expected.length; i++) {
            float bound = tolerance * Math.max(1f, Math.abs(expected[i]));
            if (Math.abs(expected[i] - actual[i]) > bound) {
                throw new AssertionError(what + " [" + i + "]: expected " + expected[i] + ", got " + actual[i]
                        + " (|diff| " + Math.abs(expected[i] - actual[i]) + " > " + bound + ")");
            }
        }
    }

    static float[] floats(JsonNode array) {
        float[] out = new float[array.size()];
        for (int i = 0; i < out.length; i++) out[i] = (float) array.get(i).asDouble();
        return out;
    }

    private static Shape shape(JsonNode array) {
        long[] dims = new long[array.size()];
        for (int i = 0; i < dims.length; i++) dims[i] = array.get(i).asLong();
        return new Shape(dims);
    }
}
