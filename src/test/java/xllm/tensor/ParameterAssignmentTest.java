package xllm.tensor;

import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Strict assignment of checkpoint tensors into parameters. DJL's {@code set} of a direct buffer makes it the tensor's
 * storage, so a buffer reused across tensors would leave every parameter with the last one's values (seen here).
 */
class ParameterAssignmentTest {

    static HostTensor f32(String name, long[] shape, float... values) {
        ByteBuffer b = ByteBuffer.allocate(values.length * 4).order(ByteOrder.LITTLE_ENDIAN);
        for (float v : values) b.putFloat(v);
        return new HostTensor(name, DType.F32, shape, b.flip());
    }

    static HostTensor f16(String name, long[] shape, short... halves) {
        ByteBuffer b = ByteBuffer.allocate(halves.length * 2).order(ByteOrder.LITTLE_ENDIAN);
        for (short h : halves) b.putShort(h);
        return new HostTensor(name, DType.F16, shape, b.flip());
    }

    @Test
    void everyParameterKeepsItsOwnValues() throws IOException {
        try (NDManager manager = NDManager.newBaseManager()) {
            Map<String, TrainableParameter> params = new LinkedHashMap<>();
            params.put("a", new TrainableParameter("a", manager.zeros(new Shape(2, 3))));
            params.put("b", new TrainableParameter("b", manager.zeros(new Shape(2))));
            params.put("c", new TrainableParameter("c", manager.zeros(new Shape(2))));
            Map<String, HostTensor> tensors = new LinkedHashMap<>();
            tensors.put("a", f32("a", new long[] {2, 3}, 1, 2, 3, 4, 5, 6));
            tensors.put("b", f32("b", new long[] {2}, -7, 8));
            tensors.put("c", f16("c", new long[] {2}, (short) 0x3C00, (short) 0xC000)); // 1.0, -2.0
            ParameterAssignment.assign(params, tensors, Map.of(), Path.of("test.safetensors"), Set.of("a", "b", "c"));
            assertArrayEquals(new float[] {1, 2, 3, 4, 5, 6}, params.get("a").value().toFloatArray());
            assertArrayEquals(new float[] {-7, 8}, params.get("b").value().toFloatArray());
            assertArrayEquals(new float[] {1, -2}, params.get("c").value().toFloatArray());
        }
    }

    @Test
    void unknownMissingAndMisshapenTensorsAreNamed() {
        try (NDManager manager = NDManager.newBaseManager()) {
            Map<String, TrainableParameter> params = Map.of("a", new TrainableParameter("a", manager.zeros(new Shape(2))));
            IOException unknown = assertThrows(IOException.class, () -> ParameterAssignment.assign(params,
                    Map.of("z", f32("z", new long[] {2}, 1, 2)), Map.of(), Path.of("m.safetensors"), Set.of()));
            assertTrue(unknown.getMessage().contains("m.safetensors") && unknown.getMessage().contains("'z'"));
            IOException shape = assertThrows(IOException.class, () -> ParameterAssignment.assign(params,
                    Map.of("a", f32("a", new long[] {3}, 1, 2, 3)), Map.of(), Path.of("m.safetensors"), Set.of()));
            assertTrue(shape.getMessage().contains("'a' has shape [3]"), shape.getMessage());
            IOException missing = assertThrows(IOException.class, () -> ParameterAssignment.assign(params, Map.of(),
                    Map.of(), Path.of("m.safetensors"), Set.of("a")));
            assertTrue(missing.getMessage().contains("lacks trainable parameter 'a'"), missing.getMessage());
        }
    }
}
