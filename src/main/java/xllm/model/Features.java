package xllm.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * One medium as plain host data: the prepared input of a frozen encoder (pixels, fbank) or its output (what the
 * feature cache stores). Host arrays, not NDArrays, so they can be built on loader threads, cached, and kept across
 * chat turns without holding native memory.
 *
 * @param values row-major values
 * @param shape  the shape, e.g. (3, 224, 224) pixels, (49, 1280) image features, (L, d) fired speech tokens
 */
public record Features(float[] values, long[] shape) {

    public Features {
        long count = 1;
        for (long d : shape) {
            if (d < 0) throw new IllegalArgumentException("negative dimension in " + Arrays.toString(shape));
            count = Math.multiplyExact(count, d);
        }
        if (count != values.length) {
            throw new IllegalArgumentException(values.length + " values do not fill shape " + Arrays.toString(shape));
        }
    }

    /** The first dimension (frames, tokens). */
    public long length() {
        return shape.length == 0 ? 1 : shape[0];
    }

    /** Equal-shaped items → one (B, shape…) array in {@code scope}; items of different shapes are an error. */
    public static NDArray stack(List<Features> items, NDManager scope) {
        long[] shape = items.get(0).shape();
        int per = items.get(0).values().length;
        float[] flat = new float[Math.multiplyExact(items.size(), per)];
        for (int i = 0; i < items.size(); i++) {
            if (!Arrays.equals(items.get(i).shape(), shape)) {
                throw new IllegalArgumentException("item " + i + " has shape " + Arrays.toString(items.get(i).shape())
                        + ", item 0 " + Arrays.toString(shape));
            }
            System.arraycopy(items.get(i).values(), 0, flat, i * per, per);
        }
        long[] batched = new long[shape.length + 1];
        batched[0] = items.size();
        System.arraycopy(shape, 0, batched, 1, shape.length);
        return scope.create(flat, new Shape(batched));
    }

    /** A (B, shape…) array → B host items of shape {@code item}. */
    public static List<Features> unstack(NDArray batch, long[] item) {
        float[] all = batch.toFloatArray();
        int count = Math.toIntExact(batch.getShape().get(0));
        int per = all.length / Math.max(1, count);
        List<Features> out = new ArrayList<>(count);
        for (int i = 0; i < count; i++) out.add(new Features(Arrays.copyOfRange(all, i * per, (i + 1) * per), item.clone()));
        return out;
    }

    /** Rows of a (B, L, D) array as B arrays (L, D), in the array's manager. */
    static List<NDArray> rows(NDArray batch) {
        List<NDArray> out = new ArrayList<>();
        for (int i = 0; i < batch.getShape().get(0); i++) out.add(batch.get(i));
        return out;
    }
}
