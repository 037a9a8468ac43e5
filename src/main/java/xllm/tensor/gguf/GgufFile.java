package xllm.tensor.gguf;

import xllm.tensor.HostTensor;

import java.io.IOException;
import java.nio.BufferUnderflowException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.MappedByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;

/**
 * A GGUF file (versions 2 and 3, little-endian), as written by llama.cpp's converters: typed metadata, a tensor
 * table, and tensor data that is memory-mapped and dequantised to float32 on request.
 *
 * <p>Format per the GGUF spec ({@code ggml/docs/gguf.md}): magic {@code "GGUF"}, uint32 version, uint64 tensor
 * and key-value counts, the key-values, the tensor infos (name, ndims, {@code ne} innermost first, ggml type,
 * offset relative to the data section), then the data section starting at the next multiple of
 * {@code general.alignment} (default 32). Metadata values are widened: every integer type becomes
 * {@link Long} (uint64 values above {@link Long#MAX_VALUE} come back negative), float32/float64 become
 * {@link Double}, arrays become unmodifiable {@link List}s (nested arrays as lists of lists); strings are UTF-8,
 * with malformed bytes replaced by U+FFFD.
 *
 * <p>Nothing is read into the heap except the header: the header is parsed from a mapping of the file's start
 * and each tensor is mapped on its own when dequantised, with long offsets throughout, so files over 2 GiB work.
 *
 * <p>Note for llama-family files: llama.cpp's converter permutes the rows of {@code attn_q} / {@code attn_k}
 * weights (per head, from Hugging Face's half-split rotary layout to interleaved pairs); this class hands the
 * values out exactly as stored.
 *
 * <p>Tested by {@code GgufFileTest} (metadata, tensor table and every supported type against the Python
 * {@code gguf} package), {@code GgufFileErrorsTest} (malformed files) and {@code SmolLm2GgufTest} (a real
 * SmolLM2 Q4_1 file, tagged {@code realweights}).
 */
public final class GgufFile implements AutoCloseable {

    private static final int MAGIC = 0x46554747; // "GGUF" read little-endian
    private static final int DEFAULT_ALIGNMENT = 32;
    private static final String ALIGNMENT_KEY = "general.alignment";
    /** Most dimensions a ggml tensor can have (GGML_MAX_DIMS). */
    private static final int MAX_DIMENSIONS = 4;
    /** Elements all metadata arrays may hold together: every one becomes a heap object, several times its file size. */
    public static final long MAX_METADATA_ELEMENTS = 1L << 24;
    /** Largest region mapped at once; FileChannel.map cannot map more than Integer.MAX_VALUE bytes. */
    private static final long MAX_MAPPING = 1L << 30;

    // GGUF metadata value types (gguf_type)
    private static final int UINT8 = 0, INT8 = 1, UINT16 = 2, INT16 = 3, UINT32 = 4, INT32 = 5, FLOAT32 = 6,
            BOOL = 7, STRING = 8, ARRAY = 9, UINT64 = 10, INT64 = 11, FLOAT64 = 12;

    private final Path path;
    private final FileChannel channel;
    private final int version;
    private final Map<String, Object> metadata;
    private final List<GgufTensorInfo> tensors;
    private final Map<String, GgufTensorInfo> tensorsByName;

    private GgufFile(Path path, FileChannel channel, int version, Map<String, Object> metadata,
                     List<GgufTensorInfo> tensors) {
        this.path = path;
        this.channel = channel;
        this.version = version;
        this.metadata = metadata;
        this.tensors = tensors;
        Map<String, GgufTensorInfo> byName = new LinkedHashMap<>();
        for (GgufTensorInfo tensor : tensors) byName.put(tensor.name(), tensor);
        this.tensorsByName = Collections.unmodifiableMap(byName);
    }

    /** Opens and validates the file: header, tensor table, and that every tensor's data lies inside the file. */
    public static GgufFile open(Path file) throws IOException {
        FileChannel channel = FileChannel.open(file, StandardOpenOption.READ);
        try {
            return new HeaderParser(file, channel).parse();
        } catch (IOException | RuntimeException e) {
            channel.close();
            throw e;
        }
    }

    public Path path() {
        return path;
    }

    public int version() {
        return version;
    }

    /** All key-values in file order (unmodifiable). */
    public Map<String, Object> metadata() {
        return metadata;
    }

    public Optional<Object> get(String key) {
        return Optional.ofNullable(metadata.get(key));
    }

    public String getString(String key) {
        return typed(key, String.class, "a string");
    }

    /** Any integer-typed value (all are widened to long). */
    public long getLong(String key) {
        return typed(key, Long.class, "an integer");
    }

    /** A float32 or float64 value. */
    public double getDouble(String key) {
        return typed(key, Double.class, "a float");
    }

    /** The tensor table in file order (unmodifiable). */
    public List<GgufTensorInfo> tensors() {
        return tensors;
    }

    public boolean hasTensor(String name) {
        return tensorsByName.containsKey(name);
    }

    public GgufTensorInfo tensor(String name) {
        GgufTensorInfo info = tensorsByName.get(name);
        if (info == null) {
            throw new IllegalArgumentException(fileName() + ": no tensor '" + name + "' (file has " + tensors.size()
                    + " tensors)");
        }
        return info;
    }

    /** The whole tensor as float32, row-major in {@link GgufTensorInfo#shape()}. */
    public float[] dequantize(String name) {
        GgufTensorInfo info = tensor(name);
        GgmlType type = info.type();
        if (!type.supported()) {
            throw new IllegalArgumentException(fileName() + ": tensor '" + name + "' has GGML type " + type
                    + ", which xllm cannot dequantise");
        }
        long count = info.elementCount();
        if (count > Integer.MAX_VALUE - 8) {
            throw new IllegalArgumentException(fileName() + ": tensor '" + name + "' has " + count
                    + " values, too many for one float array");
        }
        if (!channel.isOpen()) {
            throw new IllegalStateException(fileName() + ": cannot map data of tensor '" + name + "': file is closed");
        }
        float[] out = new float[(int) count];
        long totalBlocks = count / type.blockSize;
        long blocksPerMapping = MAX_MAPPING / type.typeSize;
        try {
            for (long firstBlock = 0; firstBlock < totalBlocks; firstBlock += blocksPerMapping) {
                int blocks = (int) Math.min(blocksPerMapping, totalBlocks - firstBlock);
                MappedByteBuffer data = channel.map(FileChannel.MapMode.READ_ONLY,
                        info.offset() + firstBlock * type.typeSize, (long) blocks * type.typeSize);
                GgmlDequantizer.dequantize(type, data, blocks, out, (int) (firstBlock * type.blockSize));
            }
        } catch (IOException e) {
            throw new IllegalStateException(fileName() + ": cannot map data of tensor '" + name + "': "
                    + e.getMessage(), e);
        }
        return out;
    }

    /** The tensor dequantised to an F32 {@link HostTensor} with the row-major shape. */
    public HostTensor toHostTensor(String name) {
        float[] values = dequantize(name);
        return HostTensor.ofFloats(name, values, tensor(name).shape());
    }

    @Override
    public void close() throws IOException {
        channel.close();
    }

    @Override
    public String toString() {
        return "GgufFile[" + path + ", v" + version + ", " + tensors.size() + " tensors, " + metadata.size()
                + " keys]";
    }

    private String fileName() {
        return String.valueOf(path.getFileName());
    }

    private <T> T typed(String key, Class<T> type, String description) {
        Object value = metadata.get(key);
        if (value == null) {
            throw new IllegalArgumentException(fileName() + ": metadata key '" + key + "' is missing");
        }
        if (!type.isInstance(value)) {
            throw new IllegalArgumentException(fileName() + ": metadata key '" + key + "' is "
                    + describe(value) + ", not " + description);
        }
        return type.cast(value);
    }

    private static String describe(Object value) {
        if (value instanceof List<?> list) return "an array of " + list.size();
        if (value instanceof String) return "a string";
        if (value instanceof Long) return "an integer";
        if (value instanceof Double) return "a float";
        return "a " + value.getClass().getSimpleName().toLowerCase();
    }

    /**
     * Reads the header from a mapping of the file's start. Every read that runs past the end of the file
     * (a {@link BufferUnderflowException}) is reported as a truncated file, with what was being read.
     */
    private static final class HeaderParser {
        private final Path file;
        private final String fileName;
        private final FileChannel channel;
        private final long fileSize;
        private ByteBuffer buffer;
        /** What is being read, for error messages ("key 'general.name'", "tensor 'blk.0.attn_q.weight'"). */
        private String context = "header";
        /** Array elements read so far, against {@link #MAX_METADATA_ELEMENTS}. */
        private long metadataElements;

        HeaderParser(Path file, FileChannel channel) throws IOException {
            this.file = file;
            this.fileName = String.valueOf(file.getFileName());
            this.channel = channel;
            this.fileSize = channel.size();
        }

        GgufFile parse() throws IOException {
            // The header sits at the start; map as much as one mapping allows (headers are a few MB at most).
            long headerMapping = Math.min(fileSize, Integer.MAX_VALUE);
            buffer = channel.map(FileChannel.MapMode.READ_ONLY, 0, headerMapping).order(ByteOrder.LITTLE_ENDIAN);
            try {
                return parseHeader();
            } catch (BufferUnderflowException e) {
                throw new IOException(fileName + ": file is truncated: it ends (at byte " + fileSize
                        + ") inside the metadata, while reading " + context);
            }
        }

        private GgufFile parseHeader() throws IOException {
            if (fileSize < 4 || buffer.getInt() != MAGIC) {
                throw new IOException(fileName + ": not a GGUF file (bad magic " + magicDescription() + ")");
            }
            int version = buffer.getInt();
            if (version != 2 && version != 3) {
                if (Integer.reverseBytes(version) == 2 || Integer.reverseBytes(version) == 3) {
                    throw new IOException(fileName + ": big-endian GGUF files are not supported");
                }
                throw new IOException(fileName + ": unsupported GGUF version " + Integer.toUnsignedString(version)
                        + " (xllm reads versions 2 and 3)");
            }
            long tensorCount = buffer.getLong();
            long keyValueCount = buffer.getLong();
            // Each key-value and tensor info takes well over one byte, so a count beyond the file size is garbage.
            requireCount(tensorCount, "tensor count");
            requireCount(keyValueCount, "metadata key count");

            Map<String, Object> metadata = new LinkedHashMap<>();
            for (long i = 0; i < keyValueCount; i++) {
                context = "metadata key #" + i;
                String key = readString();
                context = "metadata key '" + key + "'";
                int valueType = buffer.getInt();
                if (metadata.put(key, readValue(valueType)) != null) {
                    throw new IOException(fileName + ": duplicate metadata key '" + key + "'");
                }
            }
            long alignment = alignment(metadata);

            List<RawTensorInfo> rawInfos = new ArrayList<>();
            for (long i = 0; i < tensorCount; i++) {
                context = "tensor info #" + i;
                String name = readString();
                context = "tensor info '" + name + "'";
                rawInfos.add(readTensorInfo(name));
            }
            context = "tensor data";
            long dataStart = alignUp(buffer.position(), alignment);

            List<GgufTensorInfo> tensors = new ArrayList<>();
            Set<String> names = new HashSet<>();
            for (RawTensorInfo raw : rawInfos) {
                if (!names.add(raw.name)) throw new IOException(fileName + ": duplicate tensor '" + raw.name + "'");
                tensors.add(validate(raw, dataStart, alignment));
            }
            return new GgufFile(file, channel, version, Collections.unmodifiableMap(metadata),
                    Collections.unmodifiableList(tensors));
        }

        private record RawTensorInfo(String name, long[] ne, long typeId, long relativeOffset) {
        }

        private RawTensorInfo readTensorInfo(String name) throws IOException {
            int dimensions = buffer.getInt();
            if (dimensions < 0 || dimensions > MAX_DIMENSIONS) {
                throw new IOException(fileName + ": tensor '" + name + "' has " + Integer.toUnsignedString(dimensions)
                        + " dimensions (ggml allows at most " + MAX_DIMENSIONS + ")");
            }
            long[] ne = new long[dimensions];
            for (int d = 0; d < dimensions; d++) {
                ne[d] = buffer.getLong();
                if (ne[d] < 0) {
                    throw new IOException(fileName + ": tensor '" + name + "' has a negative dimension "
                            + Long.toUnsignedString(ne[d]));
                }
            }
            long typeId = Integer.toUnsignedLong(buffer.getInt());
            long relativeOffset = buffer.getLong();
            return new RawTensorInfo(name, ne, typeId, relativeOffset);
        }

        private GgufTensorInfo validate(RawTensorInfo raw, long dataStart, long alignment) throws IOException {
            String where = fileName + ": tensor '" + raw.name + "'";
            GgmlType type = GgmlType.fromId(raw.typeId);
            if (type == null) throw new IOException(where + " has unknown GGML type id " + raw.typeId);
            long rowLength = raw.ne.length == 0 ? 1 : raw.ne[0];
            if (rowLength % type.blockSize != 0) {
                throw new IOException(where + " of type " + type + " has rows of " + rowLength
                        + " values, not a multiple of the block size " + type.blockSize);
            }
            long[] shape = new long[raw.ne.length];
            long count = 1;
            try {
                for (int d = 0; d < raw.ne.length; d++) {
                    shape[d] = raw.ne[raw.ne.length - 1 - d];
                    count = Math.multiplyExact(count, raw.ne[d]);
                }
                long byteSize = Math.multiplyExact(count / type.blockSize, (long) type.typeSize);
                if (raw.relativeOffset < 0 || raw.relativeOffset % alignment != 0) {
                    throw new IOException(where + " has data offset " + Long.toUnsignedString(raw.relativeOffset)
                            + ", not a multiple of the alignment " + alignment);
                }
                long offset = Math.addExact(dataStart, raw.relativeOffset);
                if (Math.addExact(offset, byteSize) > fileSize) {
                    throw new IOException(fileName + ": file is truncated: data of tensor '" + raw.name
                            + "' (bytes " + offset + " to " + (offset + byteSize) + ") runs past the end of the file ("
                            + fileSize + " bytes)");
                }
                return new GgufTensorInfo(raw.name, type, shape, offset, byteSize);
            } catch (ArithmeticException e) {
                throw new IOException(where + " has an impossible size: shape " + Arrays.toString(shape));
            }
        }

        private long alignment(Map<String, Object> metadata) throws IOException {
            Object value = metadata.get(ALIGNMENT_KEY);
            if (value == null) return DEFAULT_ALIGNMENT;
            if (!(value instanceof Long alignment) || alignment <= 0 || Long.bitCount(alignment) != 1) {
                throw new IOException(fileName + ": " + ALIGNMENT_KEY + " must be a power of two, got " + value);
            }
            return alignment;
        }

        private Object readValue(int valueType) throws IOException {
            return switch (valueType) {
                case UINT8 -> (long) (buffer.get() & 0xff);
                case INT8 -> (long) buffer.get();
                case UINT16 -> (long) (buffer.getShort() & 0xffff);
                case INT16 -> (long) buffer.getShort();
                case UINT32 -> Integer.toUnsignedLong(buffer.getInt());
                case INT32 -> (long) buffer.getInt();
                case UINT64, INT64 -> buffer.getLong();
                case FLOAT32 -> (double) buffer.getFloat();
                case FLOAT64 -> buffer.getDouble();
                case BOOL -> readBool();
                case STRING -> readString();
                case ARRAY -> readArray();
                default -> throw new IOException(fileName + ": " + context + " has unknown value type "
                        + Integer.toUnsignedString(valueType));
            };
        }

        private Boolean readBool() throws IOException {
            byte value = buffer.get();
            if (value != 0 && value != 1) {
                throw new IOException(fileName + ": " + context + " has bool byte " + value + " (must be 0 or 1)");
            }
            return value == 1;
        }

        private List<Object> readArray() throws IOException {
            int elementType = buffer.getInt();
            long length = buffer.getLong();
            // every element takes at least one byte, so a longer array cannot fit in what is left of the file
            if (length < 0 || length > buffer.remaining()) throw new BufferUnderflowException();
            if (length > MAX_METADATA_ELEMENTS - metadataElements) {
                throw new IOException(fileName + ": " + context + " holds an array of " + length + " elements, past "
                        + "the limit of " + MAX_METADATA_ELEMENTS + " metadata array elements in all");
            }
            metadataElements += length;
            List<Object> values = new ArrayList<>((int) length);
            for (long i = 0; i < length; i++) values.add(readValue(elementType));
            return Collections.unmodifiableList(values);
        }

        private String readString() {
            long length = buffer.getLong();
            if (length < 0 || length > buffer.remaining()) throw new BufferUnderflowException();
            byte[] bytes = new byte[(int) length];
            buffer.get(bytes);
            // Lenient like llama.cpp, which does not validate: a malformed sequence becomes U+FFFD rather than
            // making the whole file unreadable.
            return new String(bytes, StandardCharsets.UTF_8);
        }

        private void requireCount(long count, String what) throws IOException {
            if (count < 0 || count > fileSize) {
                throw new IOException(fileName + ": implausible " + what + " " + Long.toUnsignedString(count)
                        + " for a file of " + fileSize + " bytes");
            }
        }

        private String magicDescription() {
            StringBuilder hex = new StringBuilder();
            for (int i = 0; i < Math.min(4, fileSize); i++) hex.append(String.format("%02x", buffer.get(i)));
            return hex.length() == 0 ? "<empty file>" : "0x" + hex;
        }

        private static long alignUp(long position, long alignment) {
            return (position + alignment - 1) / alignment * alignment;
        }
    }
}
