package xllm.tensor.gguf;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import xllm.tensor.DType;
import xllm.tensor.HostTensor;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Parity of {@link GgufFile} with the Python {@code gguf} package on {@code tiny.gguf}
 * (made by {@code tools/reference/make_gguf_fixtures.py}): metadata of every value type, the tensor table, and
 * dequantised values of every supported GGML type. Values must be bit-identical (tolerance 0): both sides do
 * the same float32 operations in the same order.
 */
class GgufFileTest {

    private static GgufFile tiny;
    private static JsonNode expected;

    @BeforeAll
    static void open() throws IOException {
        tiny = GgufFile.open(GgufTestFiles.fixture("tiny.gguf"));
        expected = new ObjectMapper().readTree(GgufTestFiles.fixture("tiny_expected.json").toFile());
    }

    @AfterAll
    static void close() throws IOException {
        tiny.close();
    }

    @Test
    void readsVersionAndEveryMetadataValueType() {
        assertEquals(3, tiny.version());
        assertEquals("tiny", tiny.getString("general.architecture"));
        assertEquals(64L, tiny.getLong("general.alignment"));
        assertEquals(200L, tiny.getLong("test.uint8"));
        assertEquals(-100L, tiny.getLong("test.int8"));
        assertEquals(60000L, tiny.getLong("test.uint16"));
        assertEquals(-30000L, tiny.getLong("test.int16"));
        assertEquals(4000000000L, tiny.getLong("test.uint32"));
        assertEquals(-2000000000L, tiny.getLong("test.int32"));
        assertEquals(1L << 40, tiny.getLong("test.uint64"));
        assertEquals(-(1L << 50), tiny.getLong("test.int64"));
        assertEquals((double) 0.1f, tiny.getDouble("test.float32"));
        assertEquals(2.718281828459045, tiny.getDouble("test.float64"));
        assertEquals(true, tiny.metadata().get("test.bool_true"));
        assertEquals(false, tiny.metadata().get("test.bool_false"));
        assertEquals("héllo ✓ gguf", tiny.getString("test.string"));
        assertEquals(List.of("alpha", "", "γάμμα"), tiny.metadata().get("test.strings"));
        assertEquals(List.of(1L, -2L, 3L), tiny.metadata().get("test.int32s"));
        assertEquals(List.of(0L, 255L, 7L), tiny.metadata().get("test.uint8s"));
        assertEquals(List.of(0.5, -1.25), tiny.metadata().get("test.float32s"));
        assertEquals(List.of(true, false, true), tiny.metadata().get("test.bools"));
        assertEquals(List.of(List.of(1L, 2L), List.of(3L), List.of(4L, 5L, 6L)), tiny.metadata().get("test.nested"));
        assertEquals(List.of(List.of("a", "b"), List.of("c")), tiny.metadata().get("test.nested_strings"));
        assertTrue(tiny.get("test.string").isPresent());
        assertTrue(tiny.get("no.such.key").isEmpty());
        // file order is kept: the writer puts the architecture first
        assertEquals("general.architecture", tiny.metadata().keySet().iterator().next());
    }

    @Test
    void tensorTableMatchesThePythonReader() {
        JsonNode tensors = expected.get("tensors");
        assertEquals(tensors.size(), tiny.tensors().size());
        for (int i = 0; i < tensors.size(); i++) {
            JsonNode want = tensors.get(i);
            GgufTensorInfo info = tiny.tensors().get(i);
            String name = want.get("name").asText();
            assertEquals(name, info.name());
            assertEquals(want.get("type").asText(), info.type().name(), name);
            assertArrayEquals(longs(want.get("shape")), info.shape(), name);
            assertEquals(want.get("offset").asLong(), info.offset(), name);
            assertEquals(want.get("byteSize").asLong(), info.byteSize(), name);
            assertEquals(0, info.offset() % 64, name + " respects general.alignment = 64");
            assertTrue(tiny.hasTensor(name));
            assertEquals(info, tiny.tensor(name));
        }
        assertFalse(tiny.hasTensor("nope"));
    }

    @Test
    void everyTypeDequantisesBitIdenticallyToThePythonPackage() {
        List<String> typesSeen = new ArrayList<>();
        for (JsonNode want : expected.get("tensors")) {
            String name = want.get("name").asText();
            float[] values = tiny.dequantize(name);
            assertBitIdentical(floats(want.get("values")), values, name);
            typesSeen.add(want.get("type").asText());
        }
        for (GgmlType type : GgmlType.values()) {
            if (type.supported()) assertTrue(typesSeen.contains(type.name()), "fixture lacks a " + type + " tensor");
        }
    }

    @Test
    void hostTensorIsFloat32WithRowMajorShape() {
        HostTensor tensor = tiny.toHostTensor("q8_0_3d");
        assertEquals(DType.F32, tensor.dtype());
        assertEquals("q8_0_3d", tensor.name());
        assertArrayEquals(new long[]{2, 3, 64}, tensor.shape());
        assertBitIdentical(tiny.dequantize("q8_0_3d"), tensor.toFloats(), "q8_0_3d");
    }

    @Test
    void version2FilesReadLikeVersion3(@TempDir Path directory) throws IOException {
        byte[] bytes = Files.readAllBytes(GgufTestFiles.fixture("tiny.gguf"));
        bytes[4] = 2; // the version is the uint32 after the magic; v2 and v3 share the layout
        Path copy = directory.resolve("tiny_v2.gguf");
        Files.write(copy, bytes);
        try (GgufFile file = GgufFile.open(copy)) {
            assertEquals(2, file.version());
            assertBitIdentical(tiny.dequantize("q6_k"), file.dequantize("q6_k"), "q6_k");
        }
    }

    /**
     * Tensors big enough to be split into several chunks decoded in parallel: the fixture's blocks repeated
     * many times must decode to the fixture's values repeated, across every chunk boundary.
     */
    @Test
    void largeTensorsDecodeAcrossChunksAndThreads(@TempDir Path directory) throws IOException {
        List<GgufTestFiles.Tensor> tensors = new ArrayList<>();
        Map<String, Integer> repeats = Map.of("q4_1", 700, "q6_k", 300, "f16", 400, "q3_k", 350);
        for (String name : List.of("q4_1", "q6_k", "f16", "q3_k")) {
            GgufTensorInfo info = tiny.tensor(name);
            byte[] blocks = readBytes(tiny.path(), info);
            int times = repeats.get(name);
            byte[] repeated = new byte[blocks.length * times];
            for (int i = 0; i < times; i++) System.arraycopy(blocks, 0, repeated, i * blocks.length, blocks.length);
            long[] shape = info.shape();
            long rowLength = shape[shape.length - 1];
            long rows = info.elementCount() / rowLength * times;
            tensors.add(new GgufTestFiles.Tensor(name, new long[]{rowLength, rows}, info.type().id, repeated));
        }
        Path big = directory.resolve("big.gguf");
        Files.write(big, GgufTestFiles.write(tensors));
        try (GgufFile file = GgufFile.open(big)) {
            for (String name : List.of("q4_1", "q6_k", "f16", "q3_k")) {
                float[] once = tiny.dequantize(name);
                float[] values = file.dequantize(name);
                assertTrue(values.length >= 1 << 18, name + " is large enough to take the parallel path");
                assertEquals(once.length * repeats.get(name), values.length, name);
                for (int i = 0; i < values.length; i++) {
                    if (Float.floatToRawIntBits(values[i]) != Float.floatToRawIntBits(once[i % once.length])) {
                        fail(name + ": value " + i + " is " + values[i] + ", expected " + once[i % once.length]);
                    }
                }
            }
        }
    }

    @Test
    void halfToFloatIsExactForEveryHalf() {
        for (int bits = 0; bits < 1 << 16; bits++) {
            float value = GgmlDequantizer.halfToFloat(bits);
            int exponent = (bits >>> 10) & 0x1f;
            if (exponent == 0x1f && (bits & 0x3ff) != 0) {
                assertTrue(Float.isNaN(value));
                continue;
            }
            // reference: sign * mantissa * 2^(exponent - 25), with the implicit 1 for normal numbers
            double magnitude = exponent == 0x1f ? Double.POSITIVE_INFINITY
                    : exponent == 0 ? (bits & 0x3ff) * 0x1p-24
                    : ((bits & 0x3ff) + 1024) * Math.pow(2, exponent - 25);
            double reference = (bits & 0x8000) != 0 ? -magnitude : magnitude;
            assertEquals(Double.doubleToRawLongBits(reference), Double.doubleToRawLongBits(value), "half 0x"
                    + Integer.toHexString(bits));
        }
    }

    static void assertBitIdentical(float[] want, float[] got, String name) {
        assertEquals(want.length, got.length, name + ": value count");
        for (int i = 0; i < want.length; i++) {
            if (Float.floatToRawIntBits(want[i]) != Float.floatToRawIntBits(got[i])) {
                fail(name + ": value " + i + " is " + got[i] + ", the gguf package gives " + want[i]);
            }
        }
    }

    static float[] floats(JsonNode array) {
        float[] values = new float[array.size()];
        // the JSON holds the exact float32 values as doubles, so the cast is exact
        for (int i = 0; i < values.length; i++) values[i] = (float) array.get(i).asDouble();
        return values;
    }

    private static long[] longs(JsonNode array) {
        long[] values = new long[array.size()];
        for (int i = 0; i < values.length; i++) values[i] = array.get(i).asLong();
        return values;
    }

    private static byte[] readBytes(Path file, GgufTensorInfo info) throws IOException {
        byte[] all = Files.readAllBytes(file); // a 12 kB fixture
        byte[] bytes = new byte[(int) info.byteSize()];
        System.arraycopy(all, (int) info.offset(), bytes, 0, bytes.length);
        return bytes;
    }
}
