package xllm.vision;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import xllm.tensor.Safetensors;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;

/** Reads the fixtures of tools/reference/make_efficientnet_fixtures.py. */
final class VisionFixtures {

    static final Path ROOT = Path.of("src/test/resources/fixtures/vision");
    static final String[] PHOTOS = {"cat", "espresso", "tripod"};

    private VisionFixtures() {}

    static JsonNode expected() {
        try {
            return new ObjectMapper().readTree(ROOT.resolve("efficientnet_lite0_expected.json").toFile());
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    static Path photo(String key) {
        return ROOT.resolve(expected().get("photos").get(key).get("file").asText());
    }

    /** A float tensor of efficientnet_lite0_reference.safetensors, flattened. */
    static float[] reference(String name) {
        try (Safetensors file = Safetensors.open(ROOT.resolve("efficientnet_lite0_reference.safetensors"))) {
            return file.get(name).toFloats();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    static double maxAbsDiff(float[] a, float[] b) {
        if (a.length != b.length) {
            throw new IllegalArgumentException("lengths " + a.length + " vs " + b.length);
        }
        double max = 0;
        for (int i = 0; i < a.length; i++) {
            max = Math.max(max, Math.abs(a[i] - b[i]));
        }
        return max;
    }

    static int argmax(float[] values) {
        int best = 0;
        for (int i = 1; i < values.length; i++) {
            if (values[i] > values[best]) {
                best = i;
            }
        }
        return best;
    }
}
