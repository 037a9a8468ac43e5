package xllm.llm;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import xllm.tensor.Safetensors;

import java.io.IOException;
import java.nio.file.Path;

/** Reads the transformers fixtures of tools/reference/make_llm_fixtures.py. */
final class ReferenceFixture {

    static final Path ROOT = Path.of("src/test/resources/fixtures/llm");

    final Path dir;
    final JsonNode json;

    ReferenceFixture(String model) throws IOException {
        this.dir = ROOT.resolve(model);
        this.json = new ObjectMapper().readTree(dir.resolve("reference.json").toFile());
    }

    static long[] ids(JsonNode array) {
        long[] out = new long[array.size()];
        for (int i = 0; i < out.length; i++) out[i] = array.get(i).asLong();
        return out;
    }

    float[] tensor(String file, String key) throws IOException {
        try (Safetensors st = Safetensors.open(dir.resolve(file))) {
            return st.get(key).toFloats();
        }
    }

    long[] shape(String file, String key) throws IOException {
        try (Safetensors st = Safetensors.open(dir.resolve(file))) {
            return st.shape(key);
        }
    }

    static float maxAbsDifference(float[] a, int aOffset, float[] b, int bOffset, int length) {
        float max = 0;
        for (int i = 0; i < length; i++) max = Math.max(max, Math.abs(a[aOffset + i] - b[bOffset + i]));
        return max;
    }
}
