package xllm.data;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import xllm.tensor.DType;
import xllm.tensor.HostTensor;
import xllm.tensor.Safetensors;
import xllm.tensor.SafetensorsWriter;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.HexFormat;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.function.Function;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.zip.CRC32;

/**
 * Outputs of a frozen encoder, computed once per sample and stored on disk (DESIGN.md §7 "feature cache").
 *
 * <p>In X-LLM stage 2 only the interfaces (Q-Former, adapters) train; the image and speech encoders are frozen, so
 * each sample's encoder output is the same in every epoch. One cache directory holds the features of one encoder:
 * <pre>
 *   &lt;root&gt;/&lt;encoderName&gt;-&lt;fingerprint&gt;/
 *       shard-00000.safetensors    F32 tensors, one per sample
 *       shard-00001.safetensors
 *       index.json                 sample id -> {shard, tensor name, crc32}
 * </pre>
 * The fingerprint ({@link #fingerprint}) hashes the encoder's config and frozen weights, so a changed encoder
 * opens a different, empty directory and stale features are never read. Older directories are kept (another run
 * may still use them); {@link #stale} lists them for a clean-up command.
 *
 * <p>Crash safety: {@link #put} buffers samples; every {@code shardSize} samples (or {@code maxShardBytes}
 * buffered bytes, or on {@link #flush}) the shard is written atomically, then the index is rewritten atomically
 * (temporary file, fsync, rename). A crash between the two leaves an index that does not mention the new shard,
 * so its samples count as missing and {@link #fill} recomputes them; the index never names a shard that is not
 * on disk. A shard the index names that is missing or damaged is an {@link IOException} naming the file when the
 * cache opens; flipped bytes inside a tensor are caught by a CRC32 when it is read.
 *
 * <p>Tensor names inside shards are the sample ids when those are plain ({@code [A-Za-z0-9._-]}, up to 100
 * characters); other ids ('/', spaces, unicode, {@code __metadata__}) get a sanitised name with a hash suffix,
 * recorded in the index. Reading goes through the memory-mapped {@link Safetensors} reader; one reader per shard
 * stays open until {@link #close}. Methods are synchronized; concurrent processes on one directory are not
 * supported. Tested in {@code FeatureCacheTest}.
 */
public final class FeatureCache implements AutoCloseable {

    public static final int DEFAULT_SHARD_SIZE = 1024;
    /** Buffered bytes that also end a shard, so that large per-sample features do not fill the heap. */
    public static final long DEFAULT_MAX_SHARD_BYTES = 256L << 20;
    public static final String INDEX = "index.json";
    private static final String FORMAT = "xllm-feature-cache/1";

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final Pattern PLAIN_NAME = Pattern.compile("[A-Za-z0-9._-]{1,100}");
    private static final Pattern ENCODER_NAME = Pattern.compile("[A-Za-z0-9_][A-Za-z0-9._-]*");
    private static final Pattern FINGERPRINT = Pattern.compile("[0-9a-f]{1,64}");
    private static final Pattern SHARD_NAME = Pattern.compile("shard-(\\d{5,})\\.safetensors");

    /** Where a flushed sample lives. */
    private record Stored(String shard, String tensor, long crc32) {}

    /** A sample put but not yet written. */
    private record Pending(float[] values, long[] shape) {}

    private final Path directory;
    private final String encoderName;
    private final String fingerprint;
    private final int shardSize;
    private final long maxShardBytes;
    private final Map<String, Stored> index;            // sample id -> location, in insertion order
    private final Map<String, Safetensors> shards;       // shard file name -> open reader
    private final Map<String, Pending> pending = new LinkedHashMap<>();
    private long pendingBytes;
    private int nextShard;
    private boolean closed;

    /** Test hook: runs after a shard is on disk and before the index names it (a crash there is simulated). */
    Runnable afterShardWritten = () -> {};

    private FeatureCache(Path directory, String encoderName, String fingerprint, int shardSize, long maxShardBytes,
                         Map<String, Stored> index, Map<String, Safetensors> shards, int nextShard) {
        this.directory = directory;
        this.encoderName = encoderName;
        this.fingerprint = fingerprint;
        this.shardSize = shardSize;
        this.maxShardBytes = maxShardBytes;
        this.index = index;
        this.shards = shards;
        this.nextShard = nextShard;
    }

    /**
     * Opens (creating if needed) the cache directory {@code <root>/<encoderName>-<fingerprint>/} with shards of
     * {@value #DEFAULT_SHARD_SIZE} samples.
     */
    public static FeatureCache open(Path root, String encoderName, String fingerprint) throws IOException {
        return open(root, encoderName, fingerprint, DEFAULT_SHARD_SIZE, DEFAULT_MAX_SHARD_BYTES);
    }

    /**
     * @param shardSize     samples per shard file
     * @param maxShardBytes buffered feature bytes that end a shard early
     */
    public static FeatureCache open(Path root, String encoderName, String fingerprint, int shardSize,
                                    long maxShardBytes) throws IOException {
        if (encoderName == null || !ENCODER_NAME.matcher(encoderName).matches()) {
            throw new IllegalArgumentException("encoder name '" + encoderName + "' must match " + ENCODER_NAME);
        }
        if (fingerprint == null || !FINGERPRINT.matcher(fingerprint).matches()) {
            throw new IllegalArgumentException("fingerprint '" + fingerprint + "' must be lower-case hex");
        }
        if (shardSize < 1) throw new IllegalArgumentException("shardSize must be positive, got " + shardSize);
        if (maxShardBytes < 1) throw new IllegalArgumentException("maxShardBytes must be positive, got " + maxShardBytes);
        Path directory = root.resolve(encoderName + "-" + fingerprint);
        Files.createDirectories(directory);

        Map<String, Stored> index = new LinkedHashMap<>();
        Map<String, Safetensors> shards = new LinkedHashMap<>();
        try {
            Path indexFile = directory.resolve(INDEX);
            if (Files.exists(indexFile)) readIndex(indexFile, encoderName, fingerprint, index, shards);
            // Number new shards past every shard file present, indexed or not: a shard a crash left unindexed
            // is never overwritten while something might still be reading it.
            int next = 0;
            try (var listing = Files.list(directory)) {
                for (Path p : (Iterable<Path>) listing::iterator) {
                    Matcher m = SHARD_NAME.matcher(p.getFileName().toString());
                    if (m.matches()) next = Math.max(next, Integer.parseInt(m.group(1)) + 1);
                }
            }
            return new FeatureCache(directory, encoderName, fingerprint, shardSize, maxShardBytes, index, shards, next);
        } catch (IOException | RuntimeException e) {
            for (Safetensors s : shards.values()) s.close();
            throw e;
        }
    }

    private static void readIndex(Path indexFile, String encoderName, String fingerprint,
                                  Map<String, Stored> index, Map<String, Safetensors> shards) throws IOException {
        JsonNode root;
        try {
            root = JSON.readTree(indexFile.toFile());
        } catch (IOException e) {
            throw new IOException(indexFile + ": malformed JSON: " + e.getMessage(), e);
        }
        if (root == null || !root.isObject() || !FORMAT.equals(root.path("format").asText())) {
            throw new IOException(indexFile + ": not a feature cache index (expected format '" + FORMAT + "')");
        }
        if (!encoderName.equals(root.path("encoder").asText()) || !fingerprint.equals(root.path("fingerprint").asText())) {
            throw new IOException(indexFile + ": written for encoder '" + root.path("encoder").asText() + "' fingerprint '"
                    + root.path("fingerprint").asText() + "', opened as '" + encoderName + "' '" + fingerprint + "'");
        }
        JsonNode samples = root.get("samples");
        if (samples == null || !samples.isObject()) throw new IOException(indexFile + ": no 'samples' object");
        for (Iterator<Map.Entry<String, JsonNode>> it = samples.fields(); it.hasNext(); ) {
            var e = it.next();
            String id = e.getKey();
            JsonNode node = e.getValue();
            String shard = node.path("shard").asText("");
            String tensor = node.path("tensor").asText("");
            JsonNode crc = node.get("crc32");
            if (!SHARD_NAME.matcher(shard).matches() || tensor.isEmpty() || crc == null || !crc.canConvertToLong()) {
                throw new IOException(indexFile + ": sample '" + id + "' lacks a valid shard, tensor or crc32");
            }
            Safetensors reader = shards.get(shard);
            Path shardFile = indexFile.resolveSibling(shard);
            if (reader == null) {
                // Safetensors.open names the file when it is missing, truncated or its header is damaged
                reader = Safetensors.open(shardFile);
                shards.put(shard, reader);
            }
            if (!reader.contains(tensor)) {
                throw new IOException(shardFile + ": tensor '" + tensor + "' of sample '" + id + "' is missing from the shard");
            }
            if (reader.dtype(tensor) != DType.F32) {
                throw new IOException(shardFile + ": tensor '" + tensor + "' is " + reader.dtype(tensor) + ", expected F32");
            }
            index.put(id, new Stored(shard, tensor, crc.asLong()));
        }
    }

    /** Sibling directories {@code <root>/<encoderName>-<other fingerprint>} of this encoder, for clean-up. */
    public static List<Path> stale(Path root, String encoderName, String currentFingerprint) throws IOException {
        if (!Files.isDirectory(root)) return List.of();
        String prefix = encoderName + "-";
        List<Path> out = new ArrayList<>();
        try (var listing = Files.list(root)) {
            for (Path p : (Iterable<Path>) listing::iterator) {
                String name = p.getFileName().toString();
                if (!name.startsWith(prefix) || !Files.isDirectory(p)) continue;
                String other = name.substring(prefix.length());
                // "clip-large-<fp>" belongs to encoder "clip-large", not to "clip": its rest is not bare hex
                if (FINGERPRINT.matcher(other).matches() && !other.equals(currentFingerprint)) out.add(p);
            }
        }
        out.sort(null);
        return out;
    }

    /**
     * The cached values of a sample, or empty when it is not cached.
     *
     * @param expectedShape the shape the caller needs, or null to accept any; a different cached shape is an
     *                      {@link IllegalArgumentException} naming the sample
     * @throws UncheckedIOException naming the shard when the stored bytes fail their checksum
     */
    public synchronized Optional<float[]> get(String sampleId, long[] expectedShape) {
        ensureOpen();
        Pending p = pending.get(sampleId);
        if (p != null) {
            checkShape(sampleId, p.shape, expectedShape);
            return Optional.of(p.values.clone());
        }
        Stored s = index.get(sampleId);
        if (s == null) return Optional.empty();
        Safetensors reader = shards.get(s.shard);
        checkShape(sampleId, reader.shape(s.tensor), expectedShape);
        HostTensor tensor = reader.get(s.tensor);
        CRC32 crc = new CRC32();
        crc.update(tensor.data().duplicate());
        if (crc.getValue() != s.crc32) {
            throw new UncheckedIOException(new IOException(directory.resolve(s.shard) + ": tensor '" + s.tensor
                    + "' of sample '" + sampleId + "' fails its CRC32 check — damaged shard; delete " + directory
                    + " to recompute"));
        }
        return Optional.of(tensor.toFloats());
    }

    private void checkShape(String sampleId, long[] cached, long[] expected) {
        if (expected != null && !Arrays.equals(cached, expected)) {
            throw new IllegalArgumentException("sample '" + sampleId + "' is cached in " + directory + " with shape "
                    + Arrays.toString(cached) + ", expected " + Arrays.toString(expected));
        }
    }

    /** The cached shape of a sample; an {@link IllegalArgumentException} when it is not cached. */
    public synchronized long[] shape(String sampleId) {
        ensureOpen();
        Pending p = pending.get(sampleId);
        if (p != null) return p.shape.clone();
        Stored s = index.get(sampleId);
        if (s == null) throw new IllegalArgumentException("sample '" + sampleId + "' is not cached in " + directory);
        return shards.get(s.shard).shape(s.tensor);
    }

    public synchronized boolean contains(String sampleId) {
        ensureOpen();
        return pending.containsKey(sampleId) || index.containsKey(sampleId);
    }

    /**
     * Stores a sample's features (copied). They are buffered and written with the shard that the
     * {@code shardSize}-th sample, {@code maxShardBytes} or {@link #flush} ends. A later put of the same id
     * replaces the earlier values.
     */
    public synchronized void put(String sampleId, float[] values, long[] shape) throws IOException {
        ensureOpen();
        if (sampleId == null) throw new IllegalArgumentException("sample id is null");
        if (values == null) throw new IllegalArgumentException("sample '" + sampleId + "': values are null");
        long numel = 1;
        for (long d : shape) {
            if (d < 0) throw new IllegalArgumentException("sample '" + sampleId + "': negative dimension in " + Arrays.toString(shape));
            numel = Math.multiplyExact(numel, d);
        }
        if (numel != values.length) {
            throw new IllegalArgumentException("sample '" + sampleId + "': " + values.length + " values for shape "
                    + Arrays.toString(shape));
        }
        Pending previous = pending.put(sampleId, new Pending(values.clone(), shape.clone()));
        if (previous != null) pendingBytes -= 4L * previous.values.length;
        pendingBytes += 4L * values.length;
        if (pending.size() >= shardSize || pendingBytes >= maxShardBytes) flush();
    }

    /** Writes the buffered samples as a new shard, then the index naming it; both atomically, in that order. */
    public synchronized void flush() throws IOException {
        ensureOpen();
        if (pending.isEmpty()) return;
        String shard = String.format("shard-%05d.safetensors", nextShard);
        Path shardFile = directory.resolve(shard);

        // step 1: the shard, under names unique within it
        Map<String, Stored> added = new LinkedHashMap<>();
        List<HostTensor> tensors = new ArrayList<>(pending.size());
        Set<String> used = new HashSet<>();
        for (var e : pending.entrySet()) {
            String tensorName = tensorName(e.getKey());
            for (int n = 1; !used.add(tensorName); n++) tensorName = tensorName(e.getKey()) + "." + n;
            HostTensor t = HostTensor.ofFloats(tensorName, e.getValue().values, e.getValue().shape);
            CRC32 crc = new CRC32();
            crc.update(t.data().duplicate());
            tensors.add(t);
            added.put(e.getKey(), new Stored(shard, tensorName, crc.getValue()));
        }
        SafetensorsWriter.write(shardFile, tensors,
                Map.of("format", FORMAT, "encoder", encoderName, "fingerprint", fingerprint));
        nextShard++; // the file exists now: never reuse its number, even if what follows fails
        afterShardWritten.run();

        // step 2: the index that names it; until this rename the samples count as missing
        Safetensors reader = Safetensors.open(shardFile);
        try {
            Map<String, Stored> updated = new LinkedHashMap<>(index);
            updated.putAll(added);
            writeIndex(updated);
            index.clear();
            index.putAll(updated);
        } catch (IOException | RuntimeException e) {
            reader.close();
            throw e;
        }
        shards.put(shard, reader);
        pending.clear();
        pendingBytes = 0;
    }

    /** The id itself when it is a plain name, otherwise a sanitised form with a hash of the id appended. */
    static String tensorName(String sampleId) {
        if (PLAIN_NAME.matcher(sampleId).matches() && !sampleId.equals("__metadata__")) return sampleId;
        StringBuilder b = new StringBuilder();
        sampleId.codePoints().limit(64).forEach(c -> b.append(c < 128 && (Character.isLetterOrDigit(c) || c == '.' || c == '-') ? (char) c : '_'));
        byte[] hash;
        try {
            hash = MessageDigest.getInstance("SHA-256").digest(sampleId.getBytes(StandardCharsets.UTF_8));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-256 unavailable", e);
        }
        // '~' never occurs in a plain id, so a sanitised name cannot equal another sample's plain name
        return b + "~" + HexFormat.of().formatHex(hash, 0, 6);
    }

    private void writeIndex(Map<String, Stored> entries) throws IOException {
        ObjectNode root = JSON.createObjectNode();
        root.put("format", FORMAT);
        root.put("encoder", encoderName);
        root.put("fingerprint", fingerprint);
        ObjectNode samples = root.putObject("samples");
        for (var e : entries.entrySet()) {
            samples.putObject(e.getKey())
                    .put("shard", e.getValue().shard)
                    .put("tensor", e.getValue().tensor)
                    .put("crc32", e.getValue().crc32);
        }
        Path indexFile = directory.resolve(INDEX);
        Path temp = Files.createTempFile(directory, "." + INDEX + ".", ".tmp");
        try (FileChannel out = FileChannel.open(temp, StandardOpenOption.WRITE, StandardOpenOption.TRUNCATE_EXISTING)) {
            ByteBuffer bytes = ByteBuffer.wrap(JSON.writeValueAsBytes(root));
            while (bytes.hasRemaining()) out.write(bytes);
            out.force(true);
        } catch (IOException | RuntimeException e) {
            Files.deleteIfExists(temp);
            throw e;
        }
        Files.move(temp, indexFile, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        try (FileChannel dir = FileChannel.open(directory, StandardOpenOption.READ)) {
            dir.force(true); // make the rename durable
        } catch (IOException e) {
            // some platforms cannot fsync a directory; the rename is still atomic there
        }
    }

    /** Cached samples, flushed or buffered. */
    public synchronized int size() {
        int n = index.size();
        for (String id : pending.keySet()) if (!index.containsKey(id)) n++;
        return n;
    }

    public Path directory() {
        return directory;
    }

    /**
     * Computes, one at a time and in order, each id not yet cached ({@code compute} returns its values of the
     * given shape), puts it and flushes at the end. A repeated id is computed once.
     *
     * @return how many samples were computed
     */
    public int fill(List<String> sampleIds, Function<String, float[]> compute, long[] shape) throws IOException {
        return fill(sampleIds, ids -> ids.stream().map(compute).toList(), shape, 1, null);
    }

    /**
     * Computes the ids not yet cached in batches of {@code batchSize} ({@code computeBatch} returns one value array
     * per id, in order), puts them, reports progress (one unit per sample) and flushes at the end.
     *
     * @return how many samples were computed
     */
    public int fill(List<String> sampleIds, Function<List<String>, List<float[]>> computeBatch, long[] shape,
                    int batchSize, ProgressBar progress) throws IOException {
        List<String> missing = new ArrayList<>(new java.util.LinkedHashSet<>(sampleIds));
        synchronized (this) {
            missing.removeIf(this::contains);
        }
        if (progress != null) progress.start(0);
        for (int from = 0; from < missing.size(); from += batchSize) {
            List<String> ids = missing.subList(from, Math.min(missing.size(), from + batchSize));
            List<float[]> values = computeBatch.apply(ids);
            if (values == null || values.size() != ids.size()) {
                throw new IllegalArgumentException("encoder returned " + (values == null ? "null" : values.size() + " results")
                        + " for " + ids.size() + " samples starting at '" + ids.get(0) + "'");
            }
            for (int i = 0; i < ids.size(); i++) {
                if (values.get(i) == null) throw new IllegalArgumentException("sample '" + ids.get(i) + "': the encoder returned null");
                put(ids.get(i), values.get(i), shape);
            }
            if (progress != null) progress.update(from + ids.size(), Double.NaN, Double.NaN, ids.size());
        }
        flush();
        if (progress != null) progress.finish();
        return missing.size();
    }

    private void ensureOpen() {
        if (closed) throw new IllegalStateException(directory + ": feature cache is closed");
    }

    /** Flushes buffered samples, then closes the shard readers (also when the flush fails). */
    @Override
    public synchronized void close() throws IOException {
        if (closed) return;
        Exception failure = null;
        try {
            flush();
        } catch (IOException | RuntimeException e) {
            failure = e;
        }
        closed = true;
        for (Safetensors s : shards.values()) {
            try {
                s.close();
            } catch (IOException e) {
                if (failure == null) failure = e;
                else failure.addSuppressed(e);
            }
        }
        shards.clear();
        if (failure instanceof IOException io) throw io;
        if (failure instanceof RuntimeException runtime) throw runtime;
    }
}
