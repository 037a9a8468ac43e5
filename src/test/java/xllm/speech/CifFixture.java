package xllm.speech;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.nio.file.Path;

/** Reads {@code fixtures/cif/cif_reference.json} (FunASR outputs, float64; tensors are {shape, data} row-major). */
final class CifFixture {

    static final Path FILE = Path.of("src/test/resources/fixtures/cif/cif_reference.json");

    private CifFixture() {}

    static JsonNode load() throws IOException {
        return new ObjectMapper().readTree(FILE.toFile());
    }

    static double[] data(JsonNode tensor) {
        JsonNode data = tensor.get("data");
        double[] out = new double[data.size()];
        for (int i = 0; i < out.length; i++) out[i] = data.get(i).asDouble();
        return out;
    }

    static Shape shape(JsonNode tensor) {
        JsonNode shape = tensor.get("shape");
        long[] out = new long[shape.size()];
        for (int i = 0; i < out.length; i++) out[i] = shape.get(i).asLong();
        return new Shape(out);
    }

    static NDArray tensor(NDManager manager, JsonNode tensor, DataType type) {
        return manager.create(data(tensor), shape(tensor)).toType(type, false);
    }

    static long[] longs(JsonNode array) {
        long[] out = new long[array.size()];
        for (int i = 0; i < out.length; i++) out[i] = array.get(i).asLong();
        return out;
    }

    static double maxAbsDifference(double[] expected, double[] actual) {
        if (expected.length != actual.length) throw new AssertionError(expected.length + " vs " + actual.length + " values");
        double max = 0;
        for (int i = 0; i < expected.length; i++) max = Math.max(max, Math.abs(expected[i] - actual[i]));
        return max;
    }
}
