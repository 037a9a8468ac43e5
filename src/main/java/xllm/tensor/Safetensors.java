package xllm.tensor;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Comparator;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Memory-mapped reader of Hugging Face safetensors checkpoints: a single {@code *.safetensors} file, a sharded
 * checkpoint through its {@code *.safetensors.index.json}, or a directory holding either.
 *
 * <p>Format: an 8-byte little-endian header length, a JSON header {@code name -> {dtype, shape, data_offsets}}
 * (offsets relative to the end of the header) and the raw little-endian data. Each tensor is mapped on its own
 * (long file offsets, files over 2 GiB) and nothing is read until asked. Every inconsistency (header past the end
 * of the file, a shape whose byte count overflows 64 bits, data offsets that do not match dtype × shape,
 * overlapping or out-of-file tensors, and, as in the reference Rust reader, gaps or trailing bytes in the data
 * section) is an {@link IOException} naming the file and the tensor. Tested in {@code SafetensorsTest} against files written by
 * the Python {@code safetensors} package and by {@link SafetensorsWriter}.
 */
public final class Safetensors implements AutoCloseable {

    /** A key given twice in a header or index is an error, not a silent last-one-wins. */
    private static final ObjectMapper JSON = new ObjectMapper()
            .enable(com.fasterxml.jackson.core.JsonParser.Feature.STRICT_DUPLICATE_DETECTION);
    private static final long MAX_HEADER_BYTES = 100L << 20;

    private record Entry(Path file, DType dtype, long[] shape, long start, long end) {}

    private final Path source;
    private final Map<String, Entry> entries;
    private final Map<String, String> metadata;
    private final Map<Path, FileChannel> channels;

    private Safetensors(Path source, Map<String, Entry> entries, Map<String, String> metadata,
                        Map<Path, FileChannel> channels) {
        this.source = source;
        this.entries = entries;
        this.metadata = metadata;
        this.channels = channels;
    }

    /** Opens a {@code .safetensors} file, an {@code .index.json}, or a directory containing one of them. */
    public static Safetensors open(Path path) throws IOException {
        if (Files.isDirectory(path)) {
            Path single = path.resolve("model.safetensors");
            Path index = path.resolve("model.safetensors.index.json");
            if (Files.exists(index)) return open(index);
            if (Files.exists(single)) return open(single);
            try (var listing = Files.list(path)) {
                List<Path> candidates = listing.filter(p -> p.getFileName().toString().endsWith(".safetensors")).sorted().toList();
                if (candidates.size() == 1) return open(candidates.get(0));
                throw new IOException(path + ": expected model.safetensors or model.safetensors.index.json, found "
                        + candidates.size() + " .safetensors files");
            }
        }
        if (!Files.exists(path)) throw new IOException(path + ": file not found");
        Map<String, Entry> entries = new LinkedHashMap<>();
        Map<String, String> metadata = new LinkedHashMap<>();
        Map<Path, FileChannel> channels = new LinkedHashMap<>();
        try {
            if (path.getFileName().toString().endsWith(".json")) {
                JsonNode index = readJson(path);
                JsonNode weightMap = index.get("weight_map");
                if (weightMap == null || !weightMap.isObject()) {
                    throw new IOException(path + ": index has no 'weight_map' object");
                }
                Map<String, List<String>> byShard = new LinkedHashMap<>();
                for (Iterator<Map.Entry<String, JsonNode>> it = weightMap.fields(); it.hasNext(); ) {
                    var e = it.next();
                    byShard.computeIfAbsent(e.getValue().asText(), k -> new ArrayList<>()).add(e.getKey());
                }
                for (var shard : byShard.entrySet()) {
                    Path shardName = Path.of(shard.getKey());   // a plain file name beside the index, as HF writes it
                    if (shardName.isAbsolute() || shardName.getNameCount() != 1 || shard.getKey().matches("\\.{1,2}")) {
                        throw new IOException(path + ": shard '" + shard.getKey() + "' is not a file name beside the index");
                    }
                    Path shardPath = path.resolveSibling(shardName);
                    Map<String, Entry> shardEntries = readHeader(shardPath, channels, metadata);
                    for (String name : shard.getValue()) {
                        Entry entry = shardEntries.get(name);
                        if (entry == null) {
                            throw new IOException(shardPath + ": tensor '" + name + "' listed in " + path.getFileName()
                                    + " is missing from the shard");
                        }
                        entries.put(name, entry);
                    }
                }
            } else {
                entries.putAll(readHeader(path, channels, metadata));
            }
        } catch (IOException | RuntimeException e) {
            for (FileChannel c : channels.values()) c.close();
            throw e;
        }
        return new Safetensors(path, entries, Collections.unmodifiableMap(metadata), channels);
    }

    private static JsonNode readJson(Path path) throws IOException {
        try {
            return JSON.readTree(path.toFile());
        } catch (IOException e) {
            throw new IOException(path + ": malformed JSON: " + e.getMessage(), e);
        }
    }

    private static Map<String, Entry> readHeader(Path file, Map<Path, FileChannel> channels,
                                                 Map<String, String> metadata) throws IOException {
        if (!Files.exists(file)) throw new IOException(file + ": file not found");
        FileChannel channel = FileChannel.open(file, StandardOpenOption.READ);
        channels.put(file, channel);
        long size = channel.size();
        if (size < 8) throw new IOException(file + ": truncated (" + size + " bytes, no safetensors header)");
        ByteBuffer lengthBytes = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
        readFully(channel, lengthBytes, 0);
        long headerLength = lengthBytes.getLong(0);
        if (headerLength <= 0 || headerLength > MAX_HEADER_BYTES || 8 + headerLength > size) {
            throw new IOException(file + ": invalid safetensors header length " + headerLength + " (file has " + size
                    + " bytes) — truncated or not a safetensors file");
        }
        ByteBuffer headerBytes = ByteBuffer.allocate((int) headerLength);
        readFully(channel, headerBytes, 8);
        JsonNode header;
        try {
            header = JSON.readTree(headerBytes.array());
        } catch (IOException e) {
            throw new IOException(file + ": malformed safetensors header: " + e.getMessage(), e);
        }
        if (header == null || !header.isObject()) throw new IOException(file + ": safetensors header is not a JSON object");
        long dataStart = 8 + headerLength;
        long dataSize = size - dataStart;
        Map<String, Entry> out = new LinkedHashMap<>();
        List<Span> spans = new ArrayList<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = header.fields(); it.hasNext(); ) {
            var e = it.next();
            String name = e.getKey();
            JsonNode node = e.getValue();
            if (name.equals("__metadata__")) {
                node.fields().forEachRemaining(m -> metadata.put(m.getKey(), m.getValue().asText()));
                continue;
            }
            String where = file + ": tensor '" + name + "'";
            JsonNode offsets = node.get("data_offsets");
            JsonNode shapeNode = node.get("shape");
            JsonNode dtypeNode = node.get("dtype");
            if (offsets == null || !offsets.isArray() || offsets.size() != 2 || shapeNode == null
                    || !shapeNode.isArray() || dtypeNode == null) {
                throw new IOException(where + " lacks dtype, shape or data_offsets");
            }
            DType dtype;
            try {
                dtype = DType.fromSafetensors(dtypeNode.asText());
            } catch (IllegalArgumentException ex) {
                throw new IOException(where + ": " + ex.getMessage());
            }
            long[] shape = new long[shapeNode.size()];
            for (int i = 0; i < shape.length; i++) shape[i] = nonNegativeLong(shapeNode.get(i), where, "shape");
            long begin = nonNegativeLong(offsets.get(0), where, "data_offsets");
            long end = nonNegativeLong(offsets.get(1), where, "data_offsets");
            // Counted with overflow checks: a shape like [2^40, 2^40] must not wrap into a small, "matching" size.
            long byteSize;
            try {
                long numel = 1;
                for (long dimension : shape) numel = Math.multiplyExact(numel, dimension);
                byteSize = Math.multiplyExact(numel, (long) dtype.bytes);
            } catch (ArithmeticException overflow) {
                throw new IOException(where + ": shape " + Arrays.toString(shape) + " of " + dtype
                        + " overflows a 64-bit byte count");
            }
            if (end < begin || end - begin != byteSize) {
                throw new IOException(where + " data_offsets [" + begin + ", " + end + ") do not match " + dtype
                        + " × " + Arrays.toString(shape) + " (" + byteSize + " bytes)");
            }
            if (end > dataSize) {
                throw new IOException(where + " ends at byte " + (dataStart + end) + " but the file has " + size
                        + " bytes — truncated file");
            }
            out.put(name, new Entry(file, dtype, shape, dataStart + begin, dataStart + end));
            spans.add(new Span(name, begin, end));
        }
        requireContiguous(file, spans, dataSize);
        return out;
    }

    /** A tensor's byte range relative to the start of the data section. */
    private record Span(String name, long begin, long end) {}

    /**
     * The tensors must tile the data section exactly, as the reference (Rust) reader requires: an overlap would hand
     * out the same bytes as two tensors, and a gap or trailing bytes mean the header and the data disagree.
     */
    private static void requireContiguous(Path file, List<Span> spans, long dataSize) throws IOException {
        spans.sort(Comparator.comparingLong(Span::begin).thenComparingLong(Span::end));
        long covered = 0;
        Span previous = null;
        for (Span span : spans) {
            if (previous != null && span.begin < covered) {
                throw new IOException(file + ": tensors '" + previous.name + "' [" + previous.begin + ", "
                        + previous.end + ") and '" + span.name + "' [" + span.begin + ", " + span.end
                        + ") overlap in data_offsets");
            }
            if (span.begin > covered) {
                throw new IOException(file + ": bytes [" + covered + ", " + span.begin + ") of the data section "
                        + (previous == null ? "before tensor '" + span.name + "'"
                                : "between tensors '" + previous.name + "' and '" + span.name + "'")
                        + " belong to no tensor (safetensors data must be contiguous)");
            }
            covered = span.end;
            previous = span;
        }
        if (covered != dataSize) {
            throw new IOException(file + ": " + (dataSize - covered) + " bytes after the last tensor belong to no tensor"
                    + " (the header describes " + covered + " data bytes, the file holds " + dataSize + ")");
        }
    }

    /** A shape entry or data offset: a JSON integer in 0..2^63-1, never a float, string or wrapped big number. */
    private static long nonNegativeLong(JsonNode value, String where, String field) throws IOException {
        if (value == null || !value.isIntegralNumber() || !value.canConvertToLong() || value.asLong() < 0) {
            throw new IOException(where + ": " + field + " entry " + value + " is not an integer in 0.."
                    + Long.MAX_VALUE);
        }
        return value.asLong();
    }

    private static void readFully(FileChannel channel, ByteBuffer buffer, long position) throws IOException {
        while (buffer.hasRemaining()) {
            int n = channel.read(buffer, position + buffer.position());
            if (n < 0) throw new IOException("unexpected end of file");
        }
        buffer.flip();
    }

    public Path source() {
        return source;
    }

    /** Tensor names in file order. */
    public List<String> names() {
        return List.copyOf(entries.keySet());
    }

    public boolean contains(String name) {
        return entries.containsKey(name);
    }

    public Map<String, String> metadata() {
        return metadata;
    }

    public long[] shape(String name) {
        return entry(name).shape.clone();
    }

    public DType dtype(String name) {
        return entry(name).dtype;
    }

    /** The tensor as a read-only view of the mapped file. */
    public HostTensor get(String name) {
        Entry e = entry(name);
        try {
            ByteBuffer mapped = e.end == e.start ? ByteBuffer.allocate(0)
                    : channels.get(e.file).map(FileChannel.MapMode.READ_ONLY, e.start, e.end - e.start);
            return new HostTensor(name, e.dtype, e.shape.clone(), mapped);
        } catch (IOException ex) {
            throw new java.io.UncheckedIOException(e.file + ": cannot map tensor '" + name + "'", ex);
        }
    }

    private Entry entry(String name) {
        Entry e = entries.get(name);
        if (e == null) throw new IllegalArgumentException(source + ": no tensor named '" + name + "'");
        return e;
    }

    @Override
    public void close() throws IOException {
        for (FileChannel c : channels.values()) c.close();
    }
}
