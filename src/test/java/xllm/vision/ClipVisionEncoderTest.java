package xllm.vision;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import xllm.tensor.HostTensor;
import xllm.tensor.Safetensors;
import xllm.tensor.SafetensorsWriter;
import xllm.vision.ClipVisionEncoder.FeatureLayer;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@link ClipVisionEncoder} against transformers' {@code CLIPVisionModel} (fixtures of
 * tools/reference/make_clip_fixtures.py: image 32, patch 8, hidden 32; one model with quick_gelu and 3 layers, one
 * with gelu and 2 layers; weights N(0, 0.2)): hidden_states[-2], last_hidden_state and pooler_output within 1e-4,
 * loaded from safetensors, a .pth and a whole CLIPModel; strict loading; batch-vs-single equality; identity strings.
 */
class ClipVisionEncoderTest {

    private static final Path FIXTURES = Path.of("src/test/resources/fixtures/clip");
    private static final float TOLERANCE = 1e-4f;

    @TempDir
    Path temp;

    private NDManager manager;
    private Map<String, HostTensor> reference;

    @BeforeEach
    void setUp() throws IOException {
        manager = NDManager.newBaseManager();
        reference = new HashMap<>();
        try (Safetensors file = Safetensors.open(FIXTURES.resolve("reference.safetensors"))) {
            for (String name : file.names()) reference.put(name, file.get(name));
        }
    }

    @AfterEach
    void tearDown() {
        manager.close();
    }

    private NDArray pixels() {
        return reference.get("pixel_values").toFloatNDArray(manager); // (2, 3, 32, 32)
    }

    private float difference(NDArray actual, String referenceName) {
        HostTensor expected = reference.get(referenceName);
        assertArrayEquals(expected.shape(), actual.getShape().getShape(), referenceName);
        float[] a = actual.toFloatArray();
        float[] b = expected.toFloats();
        float max = 0;
        for (int i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i] - b[i]));
        System.out.printf("%s: max |java - transformers| = %.3g%n", referenceName, max);
        return max;
    }

    @Test
    void matchesTransformersForQuickGeluAndGelu() throws IOException {
        for (String model : new String[] {"quick_gelu", "gelu"}) {
            Path directory = FIXTURES.resolve(model);
            try (ClipVisionEncoder penultimate = ClipVisionEncoder.load(directory, FeatureLayer.PENULTIMATE, manager);
                 ClipVisionEncoder last = ClipVisionEncoder.load(directory, FeatureLayer.LAST, manager)) {
                assertEquals(model, penultimate.config().hiddenAct());
                assertArrayEquals(new long[] {17, 32}, penultimate.featureShape());
                assertArrayEquals(new long[] {3, 32, 32}, penultimate.inputShape());
                assertTrue(difference(penultimate.features(pixels()), model + ".penultimate") <= TOLERANCE, model);
                assertTrue(difference(last.features(pixels()), model + ".last_hidden_state") <= TOLERANCE, model);
                assertTrue(difference(penultimate.pooled(pixels()), model + ".pooler_output") <= TOLERANCE, model);
            }
        }
    }

    @Test
    void pthAndWholeClipModelGiveTheSameFeatures() throws IOException {
        ClipVisionConfig config = ClipVisionConfig.fromJson(
                new ObjectMapper().readTree(FIXTURES.resolve("quick_gelu/config.json").toFile()));
        try (ClipVisionEncoder fromPth = ClipVisionEncoder.loadPth(FIXTURES.resolve("quick_gelu/model.pth"), config,
                FeatureLayer.PENULTIMATE, manager);
             ClipVisionEncoder fromClip = ClipVisionEncoder.load(FIXTURES.resolve("full_clip"), FeatureLayer.PENULTIMATE,
                     manager)) {
            assertEquals(config, fromClip.config(), "vision_config of the whole CLIPConfig");
            assertTrue(difference(fromPth.features(pixels()), "quick_gelu.penultimate") <= TOLERANCE);
            assertTrue(difference(fromClip.features(pixels()), "quick_gelu.penultimate") <= TOLERANCE);
        }
    }

    @Test
    void oneImageAloneEqualsItsRowOfTheBatch() throws IOException {
        try (ClipVisionEncoder encoder = ClipVisionEncoder.load(FIXTURES.resolve("quick_gelu"), FeatureLayer.PENULTIMATE,
                manager)) {
            NDArray batch = encoder.features(pixels());
            NDArray single = encoder.features(pixels().get(new NDIndex("1:2")));
            float[] a = batch.get(new NDIndex("1:2")).toFloatArray();
            float[] b = single.toFloatArray();
            for (int i = 0; i < a.length; i++) assertEquals(a[i], b[i], 1e-5f);
        }
    }

    @Test
    void strictLoadingNamesTheKeyAndTheFile() throws IOException {
        Map<String, HostTensor> state = new java.util.LinkedHashMap<>();
        try (Safetensors file = Safetensors.open(FIXTURES.resolve("quick_gelu/model.safetensors"))) {
            for (String name : file.names()) state.put(name, file.get(name));
        }
        // an unexpected tensor (a fourth layer the config does not have)
        Map<String, HostTensor> extra = new java.util.LinkedHashMap<>(state);
        extra.put("vision_model.encoder.layers.3.mlp.fc1.bias", HostTensor.ofFloats("x", new float[64], 64));
        assertLoadFails(extra, "unexpected tensor 'vision_model.encoder.layers.3.mlp.fc1.bias'");
        // a missing one
        Map<String, HostTensor> missing = new java.util.LinkedHashMap<>(state);
        missing.remove("vision_model.encoder.layers.1.self_attn.v_proj.weight");
        assertLoadFails(missing, "missing tensor 'vision_model.encoder.layers.1.self_attn.v_proj.weight'");
        // a wrong shape
        Map<String, HostTensor> wrong = new java.util.LinkedHashMap<>(state);
        wrong.put("vision_model.post_layernorm.bias", HostTensor.ofFloats("x", new float[31], 31));
        assertLoadFails(wrong, "'vision_model.post_layernorm.bias' has shape [31]");
        // text-tower keys are refused when the config is a vision-only CLIPVisionConfig
        Map<String, HostTensor> text = new java.util.LinkedHashMap<>(state);
        text.put("text_projection.weight", HostTensor.ofFloats("x", new float[16 * 16], 16, 16));
        assertLoadFails(text, "unexpected tensor 'text_projection.weight'");
        // the old position_ids buffer is the one key allowed without a parameter
        Map<String, HostTensor> buffer = new java.util.LinkedHashMap<>(state);
        buffer.put("vision_model.embeddings.position_ids", HostTensor.ofFloats("x", new float[17], 1, 17));
        try (ClipVisionEncoder encoder = ClipVisionEncoder.load(write(buffer, "buffer"), FeatureLayer.LAST, manager)) {
            assertTrue(difference(encoder.features(pixels()), "quick_gelu.last_hidden_state") <= TOLERANCE);
        }
    }

    private void assertLoadFails(Map<String, HostTensor> tensors, String message) throws IOException {
        Path directory = write(tensors, "case" + Math.abs(message.hashCode()));
        IOException e = assertThrows(IOException.class,
                () -> ClipVisionEncoder.load(directory, FeatureLayer.PENULTIMATE, manager));
        System.out.println(e.getMessage());
        assertTrue(e.getMessage().contains(message), e.getMessage());
        assertTrue(e.getMessage().contains(directory.toString()), e.getMessage());
    }

    private Path write(Map<String, HostTensor> tensors, String name) throws IOException {
        Path directory = Files.createDirectories(temp.resolve(name));
        Files.copy(FIXTURES.resolve("quick_gelu/config.json"), directory.resolve("config.json"));
        List<HostTensor> list = new ArrayList<>();
        tensors.forEach((key, tensor) -> list.add(new HostTensor(key, tensor.dtype(), tensor.shape(), tensor.data())));
        SafetensorsWriter.write(directory.resolve("model.safetensors"), list, Map.of("format", "pt"));
        return directory;
    }

    @Test
    void badConfigAndInputsAreRefused() throws IOException {
        Path directory = Files.createDirectories(temp.resolve("siglip"));
        Files.writeString(directory.resolve("config.json"), "{\"model_type\": \"siglip_vision_model\"}");
        Files.copy(FIXTURES.resolve("quick_gelu/model.safetensors"), directory.resolve("model.safetensors"));
        IOException e = assertThrows(IOException.class,
                () -> ClipVisionEncoder.load(directory, FeatureLayer.LAST, manager));
        assertTrue(e.getMessage().contains("config.json") && e.getMessage().contains("siglip_vision_model"), e.getMessage());
        assertThrows(IllegalArgumentException.class,
                () -> new ClipVisionConfig(32, 64, 2, 4, 3, 32, 8, "relu", 1e-5));
        try (ClipVisionEncoder encoder = ClipVisionEncoder.load(FIXTURES.resolve("gelu"), FeatureLayer.LAST, manager)) {
            NDArray wrongSize = manager.zeros(new ai.djl.ndarray.types.Shape(1, 3, 40, 40));
            IllegalArgumentException size = assertThrows(IllegalArgumentException.class, () -> encoder.features(wrongSize));
            assertTrue(size.getMessage().contains("(B, 3, 32, 32)"), size.getMessage());
        }
    }

    @Test
    void identityNamesWeightsAndFeatureLayer() throws IOException {
        try (ClipVisionEncoder penultimate = ClipVisionEncoder.load(FIXTURES.resolve("quick_gelu"), FeatureLayer.PENULTIMATE, manager);
             ClipVisionEncoder last = ClipVisionEncoder.load(FIXTURES.resolve("quick_gelu"), FeatureLayer.LAST, manager);
             ClipVisionEncoder gelu = ClipVisionEncoder.load(FIXTURES.resolve("gelu"), FeatureLayer.PENULTIMATE, manager)) {
            String identity = penultimate.identity();
            assertTrue(identity.startsWith("clip-vit hidden=32 layers=3 heads=4 patch=8 image=32 act=quick_gelu "
                    + "features=penultimate sha256="), identity);
            assertEquals(identity, penultimate.identity());
            assertNotEquals(identity, last.identity());
            assertNotEquals(identity.substring(identity.indexOf("sha256")), gelu.identity().substring(
                    gelu.identity().indexOf("sha256")));
            assertEquals(32, penultimate.transforms().crop());
            assertArrayEquals(ImageTransforms.CLIP_MEAN, penultimate.transforms().mean());
        }
    }
}
