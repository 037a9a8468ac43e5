package xllm.llm;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;

/**
 * Key/value history of every decoder layer: keys and values (B, KV, capacity, hd) per layer, written in place as
 * tokens arrive, plus which slots hold real (non-padding) tokens. Rows are left-padded, so all rows of a batch share
 * one write position.
 *
 * <p>Allocated at the capacity the caller expects to use and, when more tokens arrive, grown by doubling up to the
 * model's context: a token budget is a user's number (it may be 2³¹−1), and a cache sized to the full context would
 * take gigabytes for long-context models even when a reply is three words.
 */
public final class KvCache implements AutoCloseable {

    private final NDManager manager;
    private final NDArray[] keys;    // per layer (B, KV, capacity, hd)
    private final NDArray[] values;  // per layer (B, KV, capacity, hd)
    private final boolean[][] valid; // (B, capacity): slot holds a real token (rows re-allocated on growth)
    private int capacity;
    private final int context;       // the model's context: the most positions the cache may grow to
    private int length;

    public KvCache(NDManager parent, LlamaConfig config, int batch, int capacity, DataType type) {
        if (capacity < 1 || capacity > config.maxPositions()) {
            throw new IllegalArgumentException("KV cache of " + capacity + " positions is outside 1.."
                    + config.maxPositions() + " (the model's context)");
        }
        this.manager = parent.newSubManager();
        this.capacity = capacity;
        this.context = config.maxPositions();
        this.keys = new NDArray[config.numLayers()];
        this.values = new NDArray[config.numLayers()];
        Shape shape = new Shape(batch, config.numKeyValueHeads(), capacity, config.headDim());
        for (int l = 0; l < config.numLayers(); l++) {
            keys[l] = manager.zeros(shape, type);
            values[l] = manager.zeros(shape, type);
        }
        this.valid = new boolean[batch][capacity];
    }

    public int length() {
        return length;
    }

    public int capacity() {
        return capacity;
    }

    public int batchSize() {
        return valid.length;
    }

    public boolean[][] validity() {
        return valid;
    }

    /**
     * Marks the next {@code tokenValid[b].length} slots, growing the cache if they do not fit, then the layers write
     * their keys/values there.
     */
    void reserve(boolean[][] tokenValid) {
        int count = tokenValid[0].length;
        if ((long) length + count > context) {
            throw new IllegalStateException("KV cache full: " + length + " + " + count
                    + " positions exceed the model's context of " + context);
        }
        if (length + count > capacity) grow((int) Math.min(context, Math.max(length + count, 2L * capacity)));
        for (int b = 0; b < valid.length; b++) System.arraycopy(tokenValid[b], 0, valid[b], length, count);
    }

    /** Re-allocates every layer's buffers at {@code newCapacity} positions, keeping the history. */
    private void grow(int newCapacity) {
        for (int l = 0; l < keys.length; l++) {
            keys[l] = extended(keys[l], newCapacity);
            values[l] = extended(values[l], newCapacity);
        }
        for (int b = 0; b < valid.length; b++) valid[b] = java.util.Arrays.copyOf(valid[b], newCapacity);
        capacity = newCapacity;
    }

    private NDArray extended(NDArray buffer, int newCapacity) {
        Shape shape = buffer.getShape();  // (B, KV, capacity, hd)
        try (NDArray tail = manager.zeros(new Shape(shape.get(0), shape.get(1), newCapacity - capacity, shape.get(3)),
                buffer.getDataType())) {
            NDArray grown = buffer.concat(tail, 2);  // (B, KV, newCapacity, hd)
            grown.attach(manager);
            buffer.close();
            return grown;
        }
    }

    /** The write slot [start, end) and the history [0, end) of one forward step, shared by all layers. */
    static NDIndex[] slots(int start, int end) {
        return new NDIndex[] {new NDIndex(":, :, {}:{}", start, end), new NDIndex(":, :, :{}", end)};
    }

    /** Writes one layer's keys and values (B, KV, T, hd) at [start, end); returns views of the history [0, end). */
    NDArray[] append(int layer, NDIndex[] slots, NDArray newKeys, NDArray newValues) {
        keys[layer].set(slots[0], newKeys);
        values[layer].set(slots[0], newValues);
        return new NDArray[] {keys[layer].get(slots[1]), values[layer].get(slots[1])};
    }

    void advance(int count) {
        length += count;
    }

    /** Forgets everything (the buffers stay allocated). */
    public void reset() {
        length = 0;
        for (boolean[] row : valid) java.util.Arrays.fill(row, false);
    }

    @Override
    public void close() {
        manager.close();
    }
}
