package xllm.tensor;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;

/**
 * A tensor as a checkpoint reader hands it out: element type, row-major shape and the little-endian bytes
 * (often a slice of a memory-mapped file, so nothing is copied until {@link #toNDArray} or {@link #toFloats}).
 */
public record HostTensor(String name, DType dtype, long[] shape, ByteBuffer data) {

    public HostTensor {
        long count = 1;
        for (long d : shape) count *= d; // numel() would read fields that a compact constructor has not set yet
        long expected = count * dtype.bytes;
        if (data.remaining() != expected) {
            throw new IllegalArgumentException("tensor '" + name + "': " + data.remaining() + " bytes for shape "
                    + Arrays.toString(shape) + " of " + dtype + " (expected " + expected + ")");
        }
        data = data.slice().order(ByteOrder.LITTLE_ENDIAN);
    }

    public long numel() {
        long n = 1;
        for (long d : shape) n *= d;
        return n;
    }

    /** Values widened to float32 (F16/BF16 converted exactly, integers cast). */
    /** Writes the values as float32 into {@code out} (float32 data is copied in bulk, with no array in between). */
    public void putFloats(java.nio.FloatBuffer out) {
        if (dtype == DType.F32) out.put(data.duplicate().order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer());
        else out.put(toFloats());
    }

    public float[] toFloats() {
        int n = Math.toIntExact(numel());
        float[] out = new float[n];
        ByteBuffer b = data.duplicate().order(ByteOrder.LITTLE_ENDIAN);
        switch (dtype) {
            case F32 -> b.asFloatBuffer().get(out);
            case F64 -> { for (int i = 0; i < n; i++) out[i] = (float) b.getDouble(i * 8); }
            case F16 -> { for (int i = 0; i < n; i++) out[i] = halfToFloat(b.getShort(i * 2)); }
            case BF16 -> { for (int i = 0; i < n; i++) out[i] = Float.intBitsToFloat((b.getShort(i * 2) & 0xffff) << 16); }
            case I64 -> { for (int i = 0; i < n; i++) out[i] = b.getLong(i * 8); }
            case I32 -> { for (int i = 0; i < n; i++) out[i] = b.getInt(i * 4); }
            case I16 -> { for (int i = 0; i < n; i++) out[i] = b.getShort(i * 2); }
            case I8 -> { for (int i = 0; i < n; i++) out[i] = b.get(i); }
            case U8 -> { for (int i = 0; i < n; i++) out[i] = b.get(i) & 0xff; }
            case BOOL -> { for (int i = 0; i < n; i++) out[i] = b.get(i) != 0 ? 1f : 0f; }
        }
        return out;
    }

    /** Copies into an NDArray of the file's own dtype (F16/BF16 stay 16-bit). */
    public NDArray toNDArray(NDManager manager) {
        ByteBuffer direct = ByteBuffer.allocateDirect(data.remaining()).order(ByteOrder.nativeOrder());
        direct.put(data.duplicate()).flip();
        return manager.create(direct, new Shape(shape), dtype.djl);
    }

    /** Copies into a float32 NDArray whatever the file's dtype. */
    public NDArray toFloatNDArray(NDManager manager) {
        if (dtype == DType.F32) return toNDArray(manager);
        return manager.create(toFloats(), new Shape(shape));
    }

    /** IEEE 754 binary16 → float32, exact (Float.float16ToFloat needs Java 20). */
    public static float halfToFloat(short half) {
        int bits = half & 0xffff;
        int sign = (bits & 0x8000) << 16;
        int exponent = (bits >>> 10) & 0x1f;
        int mantissa = bits & 0x3ff;
        if (exponent == 0x1f) return Float.intBitsToFloat(sign | 0x7f800000 | (mantissa << 13)); // inf / NaN
        if (exponent == 0) {
            if (mantissa == 0) return Float.intBitsToFloat(sign);
            float value = mantissa * 0x1p-24f; // subnormal: exact in float32
            return sign == 0 ? value : -value;
        }
        return Float.intBitsToFloat(sign | ((exponent + 112) << 23) | (mantissa << 13));
    }

    public static HostTensor ofFloats(String name, float[] values, long... shape) {
        ByteBuffer b = ByteBuffer.allocate(values.length * 4).order(ByteOrder.LITTLE_ENDIAN);
        b.asFloatBuffer().put(values);
        return new HostTensor(name, DType.F32, shape, b);
    }
}
