package xllm.x2l;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import org.junit.jupiter.api.Test;
import xllm.RealWeights;
import xllm.tensor.Safetensors;

import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The C-Former's BERT encoder against transformers' BertModel (fixtures of tools/reference/make_cformer_fixtures.py). */
class BertEncoderTest {

    private static final Path FIXTURES = Path.of("src/test/resources/fixtures/cformer");

    @Test
    void equalsTransformersBertModelOnInputEmbeddingsWithPadding() throws Exception {
        try (NDManager manager = NDManager.newBaseManager(); Safetensors io = Safetensors.open(FIXTURES.resolve("io.safetensors"))) {
            BertEncoder encoder = BertEncoder.fromBert(FIXTURES.resolve("bert"), manager);
            NDArray inputs = io.get("inputs_embeds").toFloatNDArray(manager);
            NDArray expected = io.get("last_hidden_state").toFloatNDArray(manager);
            long[] lengths = {7, 4};
            NDArray actual = encoder.forward(inputs, lengths);
            for (int b = 0; b < 2; b++) {
                NDIndex valid = new NDIndex("{}, 0:{}, :", b, lengths[b]);
                float diff = actual.get(valid).sub(expected.get(valid)).abs().max().getFloat();
                assertTrue(diff <= 1e-5, "row " + b + " max |diff| " + diff + " > 1e-5");
            }
            // the padded row alone, unpadded, gives the same valid outputs
            NDArray alone = encoder.forward(inputs.get("1:2, 0:4, :"), new long[] {4});
            float diff = alone.sub(actual.get("1:2, 0:4, :")).abs().max().getFloat();
            assertTrue(diff <= 1e-5, "padding changed the valid outputs by " + diff);
        }
    }

    @Test
    void gradientsReachTheInputsAndEveryTensor() throws Exception {
        try (NDManager manager = NDManager.newBaseManager()) {
            BertEncoder encoder = BertEncoder.initialise(new BertEncoder.Config(16, 2, 2, 32, 8, 2, 1e-12), 5, manager);
            encoder.tensors().values().forEach(t -> t.setRequiresGradient(true));
            NDArray inputs = manager.randomNormal(new Shape(2, 5, 16));
            inputs.setRequiresGradient(true);
            try (GradientCollector collector = manager.getEngine().newGradientCollector()) {
                NDArray out = encoder.forward(inputs, new long[] {5, 3});
                // weighted: a plain sum of LayerNorm outputs (gain 1, bias 0) is constant and has no gradient
                collector.backward(out.get(":, 0:3, :").mul(manager.randomNormal(new Shape(2, 3, 16))).sum());
            }
            assertTrue(inputs.getGradient().abs().sum().getFloat() > 0);
            // padded positions of row 1 never influence its valid outputs
            assertEquals(0f, inputs.getGradient().get("1, 3:, :").abs().sum().getFloat(), 0f);
            encoder.tensors().forEach((name, t) -> {
                // token type row 1 is never used (token type 0 only), positions past 5 never reached
                if (!name.startsWith("embeddings.token_type") && !name.startsWith("embeddings.position")) {
                    assertTrue(t.getGradient().abs().sum().getFloat() > 0, name + " gets no gradient");
                }
            });
        }
    }

    @Test
    void loadsAllMiniLmL6V2ByName() throws Exception {
        Path minilm = RealWeights.require("all-minilm-l6-v2");
        try (NDManager manager = NDManager.newBaseManager(); Safetensors file = Safetensors.open(minilm.resolve("model.safetensors"))) {
            BertEncoder encoder = BertEncoder.fromBert(minilm, manager);
            assertEquals(new BertEncoder.Config(384, 6, 12, 1536, 512, 2, 1e-12), encoder.config());
            for (String name : new String[] {"embeddings.position_embeddings.weight", "encoder.layer.5.output.dense.weight"}) {
                String key = file.contains(name) ? name : "bert." + name;
                assertArrayEquals(file.get(key).toFloatNDArray(manager).toFloatArray(), encoder.tensors().get(name).toFloatArray(), name);
            }
        }
    }

    @Test
    void tooManyPositionsAndBadLengthsAreRefused() {
        try (NDManager manager = NDManager.newBaseManager()) {
            BertEncoder encoder = BertEncoder.initialise(new BertEncoder.Config(16, 1, 2, 32, 8, 2, 1e-12), 5, manager);
            assertThrows(IllegalArgumentException.class, () -> encoder.forward(manager.zeros(new Shape(1, 9, 16)), new long[] {9}));
            assertThrows(IllegalArgumentException.class, () -> encoder.forward(manager.zeros(new Shape(1, 4, 16)), new long[] {5}));
            assertThrows(IllegalArgumentException.class, () -> encoder.forward(manager.zeros(new Shape(2, 4, 16)), new long[] {4}));
        }
    }
}
