package xllm.tensor.gguf;

import java.util.Arrays;

/**
 * One entry of a GGUF file's tensor table, as {@link GgufFile} reads it (checked against the Python
 * {@code gguf} reader in {@code GgufFileTest}).
 *
 * @param name     tensor name as stored, e.g. {@code blk.0.attn_q.weight}
 * @param type     element type of the stored data
 * @param shape    row-major shape, i.e. ggml's {@code ne} reversed: a ggml matrix with {@code ne = [576, 49152]}
 *                 is {@code (49152, 576)} here, rows of 576 values
 * @param offset   absolute byte offset of the data in the file
 * @param byteSize bytes of stored data
 */
public record GgufTensorInfo(String name, GgmlType type, long[] shape, long offset, long byteSize) {

    public GgufTensorInfo {
        shape = shape.clone();
    }

    @Override
    public long[] shape() {
        return shape.clone();
    }

    /** Number of values in the tensor. */
    public long elementCount() {
        long count = 1;
        for (long dimension : shape) count *= dimension;
        return count;
    }

    // records compare arrays by identity; a tensor info is a value
    @Override
    public boolean equals(Object other) {
        return other instanceof GgufTensorInfo that && name.equals(that.name) && type == that.type
                && Arrays.equals(shape, that.shape) && offset == that.offset && byteSize == that.byteSize;
    }

    @Override
    public int hashCode() {
        return 31 * name.hashCode() + Long.hashCode(offset);
    }

    @Override
    public String toString() {
        return name + " " + type + " " + Arrays.toString(shape) + " @" + offset + " (" + byteSize + " bytes)";
    }
}
