package xllm.llm;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
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
    private boolean[][] valid;       // (B, capacity): slot holds a real token (re-allocated on growth and joins)
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

    /**
     * Continuous batching: adds {@code other}'s rows after this cache's rows and closes {@code other}. The shorter
     * history is left-padded (invalid slots) so that both share one write position; keys keep their RoPE rotation,
     * so moving them along the slot axis changes nothing the attention sees.
     */
    void absorb(KvCache other) {
        if (other.keys.length != keys.length) throw new IllegalArgumentException("caches of different models");
        int newLength = Math.max(length, other.length);
        int newCapacity = Math.max(newLength, Math.max(capacity, other.capacity));
        if (newCapacity > context) throw new IllegalStateException("joined history of " + newLength + " positions "
                + "exceeds the model's context of " + context);
        for (int l = 0; l < keys.length; l++) {
            keys[l] = stacked(keys[l], length, other.keys[l], other.length, newLength, newCapacity);
            values[l] = stacked(values[l], length, other.values[l], other.length, newLength, newCapacity);
        }
        boolean[][] joined = new boolean[valid.length + other.valid.length][newCapacity];
        for (int b = 0; b < valid.length; b++) {
            System.arraycopy(valid[b], 0, joined[b], newLength - length, length);
        }
        for (int b = 0; b < other.valid.length; b++) {
            System.arraycopy(other.valid[b], 0, joined[valid.length + b], newLength - other.length, other.length);
        }
        valid = joined;
        length = newLength;
        capacity = newCapacity;
        other.close();
    }

    /** [a's rows; b's rows], each history right-aligned at {@code newLength}, zeros up to {@code newCapacity}. */
    private NDArray stacked(NDArray a, int aLength, NDArray b, int bLength, int newLength, int newCapacity) {
        try (NDManager temp = manager.newSubManager()) {
            NDArray result = NDArrays.concat(new NDList(aligned(a, aLength, newLength, newCapacity, temp),
                    aligned(b, bLength, newLength, newCapacity, temp)), 0);
            result.attach(manager);
            a.close();
            return result;
        }
    }

    /** A buffer's first {@code length} slots moved to end at {@code newLength}, in a new (B, KV, newCapacity, hd). */
    private static NDArray aligned(NDArray buffer, int length, int newLength, int newCapacity, NDManager temp) {
        Shape s = buffer.getShape();
        NDList parts = new NDList();
        if (newLength > length) {
            parts.add(temp.zeros(new Shape(s.get(0), s.get(1), newLength - length, s.get(3)), buffer.getDataType()));
        }
        if (length > 0) {
            NDArray history = buffer.get(new NDIndex(":, :, :{}", length));
            history.attach(temp);
            parts.add(history);
        }
        if (newCapacity > newLength) {
            parts.add(temp.zeros(new Shape(s.get(0), s.get(1), newCapacity - newLength, s.get(3)), buffer.getDataType()));
        }
        NDArray out = parts.size() == 1 ? parts.get(0).duplicate() : NDArrays.concat(parts, 2);
        out.attach(temp);
        return out;
    }

    /**
     * Continuous batching: keeps only {@code rows} (in that order) and drops the leading slots no kept row uses, so
     * that the history stays as short as the longest live row rather than growing with every row that ever ran.
     */
    void keep(int[] rows) {
        if (rows.length == 0) throw new IllegalArgumentException("keep at least one row (close an empty cache)");
        int first = length;
        for (int r : rows) {
            for (int t = 0; t < length; t++) {
                if (valid[r][t]) {
                    first = Math.min(first, t);
                    break;
                }
            }
        }
        int newCapacity = capacity - first;
        for (int l = 0; l < keys.length; l++) {
            keys[l] = selected(keys[l], rows, first);
            values[l] = selected(values[l], rows, first);
        }
        boolean[][] kept = new boolean[rows.length][];
        for (int i = 0; i < rows.length; i++) kept[i] = java.util.Arrays.copyOfRange(valid[rows[i]], first, capacity);
        valid = kept;
        length -= first;
        capacity = newCapacity;
    }

    private NDArray selected(NDArray buffer, int[] rows, int first) {
        try (NDManager temp = manager.newSubManager()) {
            NDList parts = new NDList();
            for (int r : rows) {
                NDArray row = buffer.get(new NDIndex("{}:{}, :, {}:", r, r + 1, first));
                row.attach(temp);
                parts.add(row);
            }
            NDArray result = parts.size() == 1 ? parts.get(0).duplicate() : NDArrays.concat(parts, 0);
            result.attach(manager);
            buffer.close();
            return result;
        }
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
