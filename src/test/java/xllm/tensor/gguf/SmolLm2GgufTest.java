package xllm.tensor.gguf;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * {@link GgufFile} on the real SmolLM2-135M-Instruct Q4_1 file: its metadata, dequantising all 272 tensors, and
 * four tensors (Q8_0 embedding, two Q4_1 matrices, an F32 norm) against values from the Python {@code gguf}
 * package ({@code smollm2_expected.json}, made by {@code tools/reference/make_gguf_fixtures.py --smollm2}).
 * Sampled values must be bit-identical; sums (over ~28M values, summed in a different order than numpy's
 * pairwise sum) agree to 1e-9 of the sum of magnitudes.
 *
 * <p>Needs the pulled model ({@code ./xllm models pull smollm2-135m-instruct}) and fails, naming that command,
 * without it.
 */
class SmolLm2GgufTest {

    @Test
    void readsMetadataAndDequantisesEveryTensorLikeThePythonPackage() throws IOException {
        Path model = xllm.RealWeights.require("smollm2-135m-instruct");
        JsonNode expected = new ObjectMapper().readTree(GgufTestFiles.fixture("smollm2_expected.json").toFile());

        try (GgufFile file = GgufFile.open(model)) {
            // metadata
            assertEquals(3, file.version());
            assertEquals("llama", file.getString("general.architecture"));
            assertEquals(30, file.getLong("llama.block_count"));
            assertEquals(576, file.getLong("llama.embedding_length"));
            assertEquals(9, file.getLong("llama.attention.head_count"));
            assertEquals(3, file.getLong("llama.attention.head_count_kv"));
            assertEquals(100000.0, file.getDouble("llama.rope.freq_base"));
            assertEquals((double) 1e-5f, file.getDouble("llama.attention.layer_norm_rms_epsilon"));
            assertEquals("gpt2", file.getString("tokenizer.ggml.model"));
            List<?> tokens = (List<?>) file.get("tokenizer.ggml.tokens").orElseThrow();
            assertEquals(49152, tokens.size());
            assertTrue(tokens.get(0) instanceof String);
            assertEquals(48900, ((List<?>) file.metadata().get("tokenizer.ggml.merges")).size());
            assertTrue(file.getString("tokenizer.chat_template").contains("<|im_start|>"));
            assertEquals(expected.get("tensorCount").asInt(), file.tensors().size());

            // every tensor dequantises to finite values
            long start = System.nanoTime();
            long values = 0;
            for (GgufTensorInfo info : file.tensors()) {
                float[] data = file.dequantize(info.name());
                assertEquals(info.elementCount(), data.length, info.name());
                for (float value : data) {
                    if (!Float.isFinite(value)) fail(info.name() + " has a non-finite value " + value);
                }
                values += data.length;
            }
            System.out.printf("dequantised %d tensors, %d values of %s in %.0f ms (including the finiteness scan)%n",
                    file.tensors().size(), values, model.getFileName(), (System.nanoTime() - start) / 1e6);

            // parity with the Python package
            for (JsonNode want : expected.get("tensors")) {
                String name = want.get("name").asText();
                GgufTensorInfo info = file.tensor(name);
                assertEquals(want.get("type").asText(), info.type().name(), name);
                long[] shape = new long[want.get("shape").size()];
                for (int i = 0; i < shape.length; i++) shape[i] = want.get("shape").get(i).asLong();
                assertArrayEquals(shape, info.shape(), name);

                float[] data = file.dequantize(name);
                float[] first = GgufFileTest.floats(want.get("first"));
                GgufFileTest.assertBitIdentical(first, Arrays.copyOf(data, first.length), name + " (first)");
                int stride = want.get("stride").asInt();
                float[] strided = GgufFileTest.floats(want.get("strided"));
                float[] ours = new float[strided.length];
                for (int i = 0; i < ours.length; i++) ours[i] = data[i * stride];
                GgufFileTest.assertBitIdentical(strided, ours, name + " (every " + stride + "th)");
                double sum = 0, sumAbs = 0;
                for (float value : data) {
                    sum += value;
                    sumAbs += Math.abs(value);
                }
                double tolerance = 1e-9 * want.get("sumAbs").asDouble();
                assertEquals(want.get("sum").asDouble(), sum, tolerance, name + " sum");
                assertEquals(want.get("sumAbs").asDouble(), sumAbs, tolerance, name + " sum of magnitudes");
            }
        }
    }
}
