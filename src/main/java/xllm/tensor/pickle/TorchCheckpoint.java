package xllm.tensor.pickle;

import xllm.tensor.DType;
import xllm.tensor.HostTensor;
import xllm.tensor.pickle.RestrictedUnpickler.StorageRef;
import xllm.tensor.pickle.RestrictedUnpickler.TensorRef;
import xllm.tensor.pickle.RestrictedUnpickler.Tuple;

import java.io.IOException;
import java.math.BigInteger;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashMap;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Reads a PyTorch {@code torch.save} state dict without executing anything: the pickle runs on
 * {@link RestrictedUnpickler}, which knows only the state-dict opcodes and a whitelist of torch globals.
 * Both on-disk formats are read, following {@code torch/serialization.py}: the zip format of torch ≥ 1.6
 * ({@code <folder>/data.pkl} plus one {@code <folder>/data/<key>} record per storage) and the legacy stream
 * (five pickles, magic number to storage keys, then each storage as int64 element count plus raw bytes).
 * Tensor views are resolved with their storage offset and strides; a contiguous view is a zero-copy slice of the
 * storage (memory-mapped when large), any other is copied into a dense row-major buffer. Nested containers are
 * flattened with "." ({@code {"state_dict": {"w": t}}} gives {@code state_dict.w}, list items their index);
 * non-tensor leaves such as epoch numbers or strings are left out.
 *
 * <p>Tested by {@code TorchCheckpointTest}: byte-exact comparison with fixtures written by torch
 * ({@code tools/reference/make_pth_fixtures.py}) in all dtypes, views, pickle protocols 2/4/5 and the legacy format;
 * live malicious payloads that must be refused with no side effect; and a real EfficientNet-Lite0 checkpoint.
 */
public final class TorchCheckpoint {

    /** torch.serialization.MAGIC_NUMBER and PROTOCOL_VERSION, the first two pickles of a legacy file. */
    private static final BigInteger LEGACY_MAGIC_NUMBER = new BigInteger("1950a86a20f9469cfc6c", 16);
    private static final long LEGACY_PROTOCOL_VERSION = 1001;
    /** Containers nested deeper than this are not a state dict (and guard the flattening recursion). */
    private static final int MAX_NESTING = 64;

    private TorchCheckpoint() {}

    /**
     * Reads a torch.save() file, zip (any top-level folder name) or legacy, as a state dict.
     *
     * @return tensors by flattened key, in the order the pickle inserted them
     * @throws RefusedPickleException if the pickle names a non-whitelisted global or opcode (nothing is run)
     * @throws IOException            for any other malformed, truncated or unsupported file; messages name the file
     */
    public static Map<String, HostTensor> read(Path file) throws IOException {
        try (FileChannel channel = FileChannel.open(file, StandardOpenOption.READ)) {
            long size = channel.size();
            ByteBuffer head = ZipDirectory.readAt(channel, file.toString(), 0, (int) Math.min(size, 512));
            if (head.limit() >= 4 && head.getShort(0) == 0x4b50 && (head.getShort(2) == 0x0403 || head.getShort(2) == 0x0605)) {
                return readZip(file, channel);
            }
            if (head.limit() >= 262 && "ustar".equals(new String(bytes(head, 257, 5), StandardCharsets.US_ASCII))) {
                throw new IOException(file + ": legacy tar torch.save format (torch < 0.4) not supported, "
                        + "re-save with torch>=1.6");
            }
            if (head.limit() >= 2 && (head.get(0) & 0xff) == 0x80) return readLegacy(file, channel);
            throw new IOException(file + ": not a torch.save checkpoint: not a zip archive and not a legacy pickle "
                    + "stream (first bytes " + hex(bytes(head, 0, Math.min(head.limit(), 8))) + ")");
        }
    }

    // --- zip format (torch >= 1.6) ---------------------------------------------------------------------------

    private static Map<String, HostTensor> readZip(Path file, FileChannel channel) throws IOException {
        ZipDirectory zip = ZipDirectory.read(file, channel);

        // step 1: find <folder>/data.pkl; torch names the folder after the file stem ("archive" for streams)
        List<String> pickles = new ArrayList<>();
        for (String name : zip.entries().keySet()) {
            int slash = name.indexOf('/');
            if (slash > 0 && name.substring(slash).equals("/data.pkl")) pickles.add(name);
        }
        if (pickles.isEmpty()) {
            throw new IOException(file + ": zip archive without <folder>/data.pkl, not a torch.save checkpoint (entries: "
                    + firstNames(zip.entries().keySet()) + ")");
        }
        if (pickles.size() > 1) throw new IOException(file + ": several data.pkl records " + pickles + ", expected one");
        String folder = pickles.get(0).substring(0, pickles.get(0).indexOf('/'));

        ZipDirectory.Entry byteOrder = zip.entries().get(folder + "/byteorder");
        if (byteOrder != null) {
            String order = StandardCharsets.US_ASCII.decode(zip.contents(byteOrder)).toString().trim();
            if (!order.equals("little")) throw new IOException(file + ": byteorder '" + order + "' not supported, only little");
        }

        // step 2: run the pickle; persistent ids are ('storage', storage_type, key, location, numel)
        String pickleSource = file + " (entry " + pickles.get(0) + ")";
        Map<String, StorageRef> storages = new HashMap<>();
        RestrictedUnpickler unpickler = new RestrictedUnpickler(zip.contents(zip.entries().get(pickles.get(0))), 0,
                pickleSource, (id, where) -> {
                    if (id.size() != 5) throw badPersistentId(pickleSource, where, id);
                    return storage(pickleSource, where, id, storages);
                });
        Object root = unpickler.load();

        // step 3: flatten, then read each storage record once and cut the tensors out of it
        Map<String, TensorRef> tensors = flatten(file, root);
        Map<String, ByteBuffer> storageBytes = new HashMap<>();
        Map<String, HostTensor> result = new LinkedHashMap<>();
        for (Map.Entry<String, TensorRef> tensor : tensors.entrySet()) {
            StorageRef storage = tensor.getValue().storage();
            ByteBuffer bytes = storageBytes.get(storage.key());
            if (bytes == null) {
                String entryName = folder + "/data/" + storage.key();
                ZipDirectory.Entry entry = zip.entries().get(entryName);
                if (entry == null) {
                    throw new IOException(file + ": missing storage entry " + entryName + " for tensor '" + tensor.getKey() + "'");
                }
                long expected = storageBytes(file + ": storage entry " + entryName, storage);
                if (entry.size() != expected) {
                    throw new IOException(file + ": storage entry " + entryName + " has " + entry.size() + " bytes but "
                            + "its persistent id declares " + storage.elementCount() + " " + storage.dtype()
                            + " elements (" + expected + " bytes)");
                }
                bytes = zip.contents(entry);
                storageBytes.put(storage.key(), bytes);
            }
            result.put(tensor.getKey(), materialise(file, tensor.getKey(), tensor.getValue(), bytes));
        }
        return Collections.unmodifiableMap(result);
    }

    // --- legacy format (torch < 1.6, or _use_new_zipfile_serialization=False) --------------------------------

    private static Map<String, HostTensor> readLegacy(Path file, FileChannel channel) throws IOException {
        String source = file.toString();
        // The pickles come first; map at most 2 GiB of the file's start for them (storages are mapped one by one).
        long headLength = Math.min(channel.size(), Integer.MAX_VALUE);
        ByteBuffer head = channel.map(FileChannel.MapMode.READ_ONLY, 0, headLength).order(ByteOrder.LITTLE_ENDIAN);
        RestrictedUnpickler.PersistentLoader noStorages = (id, where) -> {
            throw new IOException(source + ": unexpected persistent id in the legacy header (" + where + ")");
        };

        // step 1: magic number, protocol version, system info
        Object magic = new RestrictedUnpickler(head, 0, source, noStorages).load();
        if (!LEGACY_MAGIC_NUMBER.equals(magic instanceof Long number ? BigInteger.valueOf(number) : magic)) {
            throw new IOException(source + ": a pickle, but not a torch.save file (no torch magic number)");
        }
        Object protocol = new RestrictedUnpickler(head, head.position(), source, noStorages).load();
        if (!Long.valueOf(LEGACY_PROTOCOL_VERSION).equals(protocol)) {
            throw new IOException(source + ": legacy torch.save protocol " + protocol + " not supported (expected 1001)");
        }
        Object systemInfo = new RestrictedUnpickler(head, head.position(), source, noStorages).load();
        if (!(systemInfo instanceof Map<?, ?> info) || !Boolean.TRUE.equals(info.get("little_endian"))) {
            throw new IOException(source + ": legacy torch.save file from a big-endian machine is not supported");
        }

        // step 2: the object; ids are ('storage', storage_type, root_key, location, numel, view_metadata)
        Map<String, StorageRef> roots = new HashMap<>();
        Object root = new RestrictedUnpickler(head, head.position(), source, (id, where) -> {
            if (id.size() == 6 && "module".equals(id.get(0))) {
                throw new IOException(source + ": the checkpoint pickles a whole nn.Module, re-save model.state_dict()");
            }
            if (id.size() != 6) throw badPersistentId(source, where, id);
            StorageRef storage = storage(source, where, new Tuple(id.items().subList(0, 5)), roots);
            Object view = id.get(5);
            if (view == null) return storage;
            // Storage views (torch < 0.4): (view_key, element offset, element count) inside the root storage.
            if (!(view instanceof Tuple metadata) || metadata.size() != 3 || !(metadata.get(1) instanceof Long offset)
                    || !(metadata.get(2) instanceof Long count) || offset < 0 || count < 0
                    || offset + count > storage.elementCount()) {
                throw new IOException(source + ": malformed storage view " + view + " (" + where + ")");
            }
            return new StorageRef(storage.key(), storage.dtype(), offset, count);
        }).load();

        // step 3: the storage keys in the order their bytes follow
        RestrictedUnpickler keysReader = new RestrictedUnpickler(head, head.position(), source, noStorages);
        Object keys = keysReader.load();
        if (!(keys instanceof List<?> keyList)) throw new IOException(source + ": legacy storage key list missing");
        Map<String, ByteBuffer> storageBytes = new HashMap<>();
        long position = keysReader.endOffset();
        for (Object key : keyList) {
            StorageRef storage = roots.get(key);
            if (storage == null) throw new IOException(source + ": storage '" + key + "' is saved but no tensor refers to it");
            if (position + 8 > channel.size()) {
                throw new IOException(source + ": storage '" + key + "' runs past the end of the file (truncated?)");
            }
            long count = ZipDirectory.readAt(channel, source, position, 8).getLong(0);
            if (count != storage.elementCount()) {
                throw new IOException(source + ": storage '" + key + "' holds " + count + " elements but its persistent id "
                        + "declares " + storage.elementCount());
            }
            long length = storageBytes(source + ": storage '" + key + "'", storage);
            if (length > channel.size() - position - 8) {
                throw new IOException(source + ": storage '" + key + "' runs past the end of the file (truncated?)");
            }
            if (length > Integer.MAX_VALUE) throw new IOException(source + ": storage '" + key + "' exceeds 2 GiB");
            storageBytes.put((String) key, length < (1 << 20)
                    ? ZipDirectory.readAt(channel, source, position + 8, (int) length)
                    : channel.map(FileChannel.MapMode.READ_ONLY, position + 8, length).order(ByteOrder.LITTLE_ENDIAN));
            position += 8 + length;
        }

        Map<String, HostTensor> result = new LinkedHashMap<>();
        for (Map.Entry<String, TensorRef> tensor : flatten(file, root).entrySet()) {
            ByteBuffer bytes = storageBytes.get(tensor.getValue().storage().key());
            if (bytes == null) {
                throw new IOException(source + ": missing storage '" + tensor.getValue().storage().key()
                        + "' for tensor '" + tensor.getKey() + "'");
            }
            result.put(tensor.getKey(), materialise(file, tensor.getKey(), tensor.getValue(), bytes));
        }
        return Collections.unmodifiableMap(result);
    }

    // --- shared --------------------------------------------------------------------------------------------

    /** ('storage', storage_type, key, location, numel): the same storage key always yields the same StorageRef. */
    private static StorageRef storage(String source, String where, Tuple id, Map<String, StorageRef> known)
            throws IOException {
        if (!"storage".equals(id.get(0)) || !(id.get(1) instanceof TorchGlobal type) || type.storageType == null
                || !(id.get(2) instanceof String key) || !(id.get(4) instanceof Long count) || count < 0) {
            throw badPersistentId(source, where, id);
        }
        StorageRef storage = new StorageRef(key, type.storageType, 0, count);
        StorageRef previous = known.putIfAbsent(key, storage);
        if (previous == null) return storage;
        if (!previous.equals(storage)) {
            throw new IOException(source + ": storage '" + key + "' declared twice with different types or sizes ("
                    + where + ")");
        }
        return previous;
    }

    /** Bytes of a storage's elements; a count whose byte size overflows 64 bits is an error, not a wrapped size. */
    private static long storageBytes(String where, StorageRef storage) throws IOException {
        try {
            return Math.multiplyExact(storage.elementCount(), (long) storage.dtype().bytes);
        } catch (ArithmeticException overflow) {
            throw new IOException(where + ": " + storage.elementCount() + " " + storage.dtype()
                    + " elements: their byte count overflows 64 bits");
        }
    }

    private static IOException badPersistentId(String source, String where, Tuple id) {
        return new IOException(source + ": unsupported persistent id with " + id.size() + " fields " + "(" + where
                + "); only ('storage', <torch storage type>, key, location, numel) is understood");
    }

    /** Tensors of the pickled object by dotted path, in the pickle's insertion order. */
    private static Map<String, TensorRef> flatten(Path file, Object root) throws IOException {
        if (root instanceof TensorRef) throw new IOException(file + ": holds a single tensor, not a state dict");
        if (!(root instanceof Map)) {
            throw new IOException(file + ": top-level object is a " + root.getClass().getSimpleName() + ", not a state dict");
        }
        Map<String, TensorRef> tensors = new LinkedHashMap<>();
        flatten(file, "", root, tensors, Collections.newSetFromMap(new IdentityHashMap<>()), 0);
        return tensors;
    }

    private static void flatten(Path file, String path, Object value, Map<String, TensorRef> out, Set<Object> open,
                                int depth) throws IOException {
        if (value instanceof TensorRef tensor) {
            if (out.put(path, tensor) != null) throw new IOException(file + ": two tensors flatten to the key '" + path + "'");
            return;
        }
        boolean container = value instanceof Map || value instanceof List || value instanceof Tuple;
        if (!container) return; // numbers, strings, None, bytes: checkpoint metadata, not weights
        if (depth >= MAX_NESTING || !open.add(value)) {
            throw new IOException(file + ": containers nested too deep or in a cycle at '" + path + "'");
        }
        String prefix = path.isEmpty() ? "" : path + ".";
        if (value instanceof Map<?, ?> map) {
            for (Map.Entry<?, ?> entry : map.entrySet()) {
                Object key = entry.getKey();
                if (!(key instanceof String || key instanceof Long || key instanceof BigInteger)) {
                    throw new IOException(file + ": dict key of type " + (key == null ? "None" : key.getClass().getSimpleName())
                            + " under '" + path + "' cannot name a tensor");
                }
                flatten(file, prefix + key, entry.getValue(), out, open, depth + 1);
            }
        } else {
            List<?> items = value instanceof Tuple tuple ? tuple.items() : (List<?>) value;
            for (int i = 0; i < items.size(); i++) flatten(file, prefix + i, items.get(i), out, open, depth + 1);
        }
        open.remove(value);
    }

    /**
     * Cuts one tensor out of its storage bytes: a slice when the view is row-major contiguous, otherwise a dense
     * copy gathered through the strides. Checks that every element the view can address lies inside the storage.
     */
    static HostTensor materialise(Path file, String name, TensorRef tensor, ByteBuffer storageBytes) throws IOException {
        StorageRef storage = tensor.storage();
        DType dtype = storage.dtype();
        long[] shape = tensor.shape();
        long[] stride = tensor.stride();
        String view = "tensor '" + name + "' (shape " + Arrays.toString(shape) + ", stride " + Arrays.toString(stride)
                + ", storage offset " + tensor.storageOffset() + ")";

        long count = 1;
        long lastElement = tensor.storageOffset();
        try {
            for (int d = 0; d < shape.length; d++) {
                if (shape[d] < 0 || stride[d] < 0) throw new IOException(file + ": " + view + " has a negative size or stride");
                count = Math.multiplyExact(count, shape[d]);
                if (shape[d] > 0) lastElement = Math.addExact(lastElement, Math.multiplyExact(shape[d] - 1, stride[d]));
            }
        } catch (ArithmeticException overflow) {
            throw new IOException(file + ": " + view + " overflows 64-bit element indices");
        }
        if (tensor.storageOffset() < 0) throw new IOException(file + ": " + view + " has a negative storage offset");
        if (count > 0 && lastElement >= storage.elementCount()) {
            throw new IOException(file + ": " + view + " reaches element " + lastElement + " but storage '" + storage.key()
                    + "' holds only " + storage.elementCount() + " " + dtype + " elements (shape/storage size mismatch)");
        }
        if (count > Integer.MAX_VALUE / dtype.bytes) {
            throw new IOException(file + ": " + view + " has " + count + " " + dtype + " elements, which exceeds 2 GiB");
        }

        // The storage run this tensor indexes into (legacy storage views start inside their root storage).
        ByteBuffer run = storageBytes.duplicate().order(ByteOrder.LITTLE_ENDIAN);
        run.position(Math.toIntExact(storage.elementOffset() * dtype.bytes));
        run = run.slice().order(ByteOrder.LITTLE_ENDIAN);
        int elementBytes = dtype.bytes;
        int byteCount = (int) (count * elementBytes);

        if (count == 0) return new HostTensor(name, dtype, shape, ByteBuffer.allocate(0));
        if (isContiguous(shape, stride)) {
            int from = (int) (tensor.storageOffset() * elementBytes);
            return new HostTensor(name, dtype, shape, run.duplicate().position(from).limit(from + byteCount));
        }

        // Gather: walk the outer dimensions with an odometer, copy the innermost one run or element at a time.
        ByteBuffer dense = ByteBuffer.allocate(byteCount).order(ByteOrder.LITTLE_ENDIAN);
        int rank = shape.length;
        long innerSize = shape[rank - 1];
        long innerStride = stride[rank - 1];
        long[] index = new long[rank - 1];
        int written = 0;
        for (long outer = 0, outerCount = count / innerSize; outer < outerCount; outer++) {
            long element = tensor.storageOffset();
            for (int d = 0; d < rank - 1; d++) element += index[d] * stride[d];
            if (innerStride == 1) {
                int length = (int) (innerSize * elementBytes);
                dense.put(written, run, (int) (element * elementBytes), length);
                written += length;
            } else {
                for (long i = 0; i < innerSize; i++) {
                    dense.put(written, run, (int) ((element + i * innerStride) * elementBytes), elementBytes);
                    written += elementBytes;
                }
            }
            for (int d = rank - 2; d >= 0; d--) {
                if (++index[d] < shape[d]) break;
                index[d] = 0;
            }
        }
        return new HostTensor(name, dtype, shape, dense);
    }

    /** Row-major contiguous; a dimension of size 1 may carry any stride (torch leaves them arbitrary). */
    private static boolean isContiguous(long[] shape, long[] stride) {
        long expected = 1;
        for (int d = shape.length - 1; d >= 0; d--) {
            if (shape[d] != 1 && stride[d] != expected) return false;
            expected *= shape[d];
        }
        return true;
    }

    private static byte[] bytes(ByteBuffer buffer, int from, int length) {
        byte[] bytes = new byte[length];
        buffer.get(from, bytes);
        return bytes;
    }

    private static String hex(byte[] bytes) {
        StringBuilder text = new StringBuilder();
        for (byte b : bytes) text.append(String.format("%02x", b & 0xff));
        return text.toString();
    }

    private static String firstNames(Set<String> names) {
        List<String> first = new ArrayList<>(names).subList(0, Math.min(names.size(), 8));
        return first + (names.size() > 8 ? " and " + (names.size() - 8) + " more" : "");
    }
}
