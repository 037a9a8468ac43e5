package xllm.data;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import xllm.tensor.HostTensor;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.*;

/** Frozen-encoder feature cache: shards round trip, fingerprints, fill, awkward ids, crashes, damaged files. */
class FeatureCacheTest {

    private static final String ENCODER = "vit";
    private static final String FINGERPRINT = "0123456789abcdef";

    private static float[] values(Random random, int n) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) v[i] = (float) random.nextGaussian();
        return v;
    }

    /** Deterministic features of a sample, as a frozen encoder would give. */
    private static float[] encode(String id) {
        return values(new Random(id.hashCode()), 6);
    }

    private static List<String> shardFiles(Path dir) throws IOException {
        try (var s = Files.list(dir)) {
            return s.map(p -> p.getFileName().toString()).filter(n -> n.startsWith("shard-")).sorted().toList();
        }
    }

    @Test
    void roundTripsManySamplesAcrossShards(@TempDir Path root) throws IOException {
        Random random = new Random(7);
        Map<String, float[]> expected = new LinkedHashMap<>();
        Map<String, long[]> shapes = new LinkedHashMap<>();
        Path dir;
        try (FeatureCache cache = FeatureCache.open(root, ENCODER, FINGERPRINT, 7, Long.MAX_VALUE)) {
            dir = cache.directory();
            assertEquals(root.resolve(ENCODER + "-" + FINGERPRINT), dir);
            for (int i = 0; i < 50; i++) {
                long[] shape = i % 3 == 0 ? new long[] {2, 3} : new long[] {i % 5 + 1}; // (queries, hidden) or (hidden)
                float[] v = values(random, (int) (shape.length == 2 ? 6 : shape[0]));
                if (i == 1) v[0] = Float.NaN;
                if (i == 2) v[0] = -0f;
                if (i == 4) v[1] = Float.NEGATIVE_INFINITY;
                String id = "sample-" + i;
                expected.put(id, v.clone());
                cache.put(id, v, shape);
                v[0] = 42f; // the cache holds a copy
                shapes.put(id, shape);
            }
            assertEquals(List.of("shard-00000.safetensors", "shard-00001.safetensors", "shard-00002.safetensors",
                    "shard-00003.safetensors", "shard-00004.safetensors", "shard-00005.safetensors",
                    "shard-00006.safetensors"), shardFiles(dir)); // 49 flushed, 1 buffered
            assertEquals(50, cache.size());
            // buffered and flushed samples read alike
            assertArrayEquals(expected.get("sample-49"), cache.get("sample-49", new long[] {5}).orElseThrow());
            assertArrayEquals(expected.get("sample-3"), cache.get("sample-3", new long[] {2, 3}).orElseThrow());
        }
        assertEquals(8, shardFiles(dir).size()); // close flushed the last one
        assertTrue(Files.exists(dir.resolve(FeatureCache.INDEX)));

        try (FeatureCache cache = FeatureCache.open(root, ENCODER, FINGERPRINT)) {
            assertEquals(50, cache.size());
            for (var e : expected.entrySet()) {
                assertTrue(cache.contains(e.getKey()));
                assertArrayEquals(shapes.get(e.getKey()), cache.shape(e.getKey()));
                assertArrayEquals(e.getValue(), cache.get(e.getKey(), null).orElseThrow(), e.getKey()); // bit-exact
            }
            assertTrue(Float.isNaN(cache.get("sample-1", null).orElseThrow()[0]));
            assertEquals(Float.floatToIntBits(-0f), Float.floatToIntBits(cache.get("sample-2", null).orElseThrow()[0]));
            assertFalse(cache.contains("sample-50"));
            assertTrue(cache.get("sample-50", null).isEmpty());
            assertThrows(IllegalArgumentException.class, () -> cache.shape("sample-50"));
        }
    }

    @Test
    void largeFeaturesEndAShardByBytes(@TempDir Path root) throws IOException {
        try (FeatureCache cache = FeatureCache.open(root, ENCODER, FINGERPRINT, 1000, 4 * 100)) {
            for (int i = 0; i < 5; i++) cache.put("s" + i, new float[60], new long[] {60}); // 240 bytes each
            assertEquals(2, shardFiles(cache.directory()).size()); // after s1 and s3
        }
    }

    @Test
    void fingerprintFollowsConfigAndEveryWeightByte(@TempDir Path root) throws IOException {
        HostTensor weight = HostTensor.ofFloats("patch_embed.weight", new float[] {1, 2, 3, 4}, 2, 2);
        HostTensor bias = HostTensor.ofFloats("patch_embed.bias", new float[] {0.5f, -0.5f}, 2);
        String config = "{\"hidden_size\": 2}";
        String base = xllm.tensor.Fingerprint.of(config, List.of(weight, bias));
        assertTrue(base.matches("[0-9a-f]{16}"), base);
        assertEquals(base, xllm.tensor.Fingerprint.of(config, List.of(weight, bias)));

        byte[] bytes = new byte[16];
        weight.data().duplicate().get(bytes);
        bytes[13] ^= 1; // one bit of one weight
        HostTensor flipped = new HostTensor(weight.name(), weight.dtype(), weight.shape(), java.nio.ByteBuffer.wrap(bytes));
        String changedWeight = xllm.tensor.Fingerprint.of(config, List.of(flipped, bias));
        String changedConfig = xllm.tensor.Fingerprint.of("{\"hidden_size\": 3}", List.of(weight, bias));
        String reordered = xllm.tensor.Fingerprint.of(config, List.of(bias, weight));
        String reshaped = xllm.tensor.Fingerprint.of(config, List.of(
                HostTensor.ofFloats("patch_embed.weight", new float[] {1, 2, 3, 4}, 4), bias));
        assertEquals(5, java.util.Set.of(base, changedWeight, changedConfig, reordered, reshaped).size());

        try (FeatureCache cache = FeatureCache.open(root, ENCODER, base)) {
            cache.put("a", new float[] {1, 2}, new long[] {2});
        }
        Files.createDirectories(root.resolve(ENCODER + "-large-" + base)); // another encoder's directory
        try (FeatureCache cache = FeatureCache.open(root, ENCODER, changedWeight)) {
            assertEquals(0, cache.size());
            assertFalse(cache.contains("a"));
            assertTrue(cache.get("a", null).isEmpty());
            assertNotEquals(root.resolve(ENCODER + "-" + base), cache.directory());
        }
        // the old directory is kept for other runs, and listed for a clean-up
        assertEquals(List.of(root.resolve(ENCODER + "-" + base)), FeatureCache.stale(root, ENCODER, changedWeight));
        assertEquals(List.of(root.resolve(ENCODER + "-" + changedWeight)), FeatureCache.stale(root, ENCODER, base));
        try (FeatureCache cache = FeatureCache.open(root, ENCODER, base)) {
            assertArrayEquals(new float[] {1, 2}, cache.get("a", null).orElseThrow());
        }
        assertEquals(List.of(), FeatureCache.stale(root.resolve("absent"), ENCODER, base));
    }

    @Test
    void fillComputesOnlyMissingSamples(@TempDir Path root) throws IOException {
        AtomicInteger calls = new AtomicInteger();
        List<String> computed = new ArrayList<>();
        List<String> ids = new ArrayList<>();
        for (int i = 0; i < 20; i++) ids.add("img-" + i);
        try (FeatureCache cache = FeatureCache.open(root, ENCODER, FINGERPRINT, 6, Long.MAX_VALUE)) {
            cache.put("img-3", encode("img-3"), new long[] {2, 3});
            cache.put("img-11", encode("img-11"), new long[] {2, 3});
            List<String> withRepeat = new ArrayList<>(ids);
            withRepeat.add("img-0");
            int n = cache.fill(withRepeat, id -> {
                calls.incrementAndGet();
                computed.add(id);
                return encode(id);
            }, new long[] {2, 3});
            assertEquals(18, n);
            assertEquals(18, calls.get());
            assertFalse(computed.contains("img-3"));
            assertFalse(computed.contains("img-11"));
            assertEquals(20, cache.size());
            assertEquals(0, cache.fill(ids, id -> fail("recomputed " + id), new long[] {2, 3}));
        }
        try (FeatureCache cache = FeatureCache.open(root, ENCODER, FINGERPRINT)) {
            List<String> more = new ArrayList<>(ids);
            more.add("img-20");
            assertEquals(1, cache.fill(more, id -> {
                calls.incrementAndGet();
                return encode(id);
            }, new long[] {2, 3}));
            assertEquals(19, calls.get());
            for (String id : more) assertArrayEquals(encode(id), cache.get(id, new long[] {2, 3}).orElseThrow(), id);
            IllegalArgumentException wrongLength = assertThrows(IllegalArgumentException.class,
                    () -> cache.fill(List.of("short"), id -> new float[5], new long[] {2, 3}));
            assertTrue(wrongLength.getMessage().contains("'short'"), wrongLength.getMessage());
        }
    }

    @Test
    void idsWithSlashesSpacesAndUnicode(@TempDir Path root) throws IOException {
        List<String> ids = List.of("coco/train2014/COCO_000000001.jpg", "with space.jpg", "ünïcødé 图像/猫.png",
                "__metadata__", "", "a/b", "a b", "a_b", "../../escape", "tilde~name", "x".repeat(300),
                "emoji \uD83D\uDC31", "plain-id_1.0");
        try (FeatureCache cache = FeatureCache.open(root, ENCODER, FINGERPRINT, 5, Long.MAX_VALUE)) {
            for (String id : ids) cache.put(id, encode(id), new long[] {6});
        }
        assertEquals("plain-id_1.0", FeatureCache.tensorName("plain-id_1.0"));
        assertNotEquals(FeatureCache.tensorName("a/b"), FeatureCache.tensorName("a b"));
        assertTrue(FeatureCache.tensorName("ünïcødé 图像/猫.png").matches("[A-Za-z0-9._~-]+"));
        try (FeatureCache cache = FeatureCache.open(root, ENCODER, FINGERPRINT)) {
            assertEquals(ids.size(), cache.size());
            for (String id : ids) assertArrayEquals(encode(id), cache.get(id, new long[] {6}).orElseThrow(), id);
        }
        try (var s = Files.list(root.resolve(ENCODER + "-" + FINGERPRINT))) {
            assertTrue(s.allMatch(p -> p.getFileName().toString().matches("shard-\\d{5}\\.safetensors|index\\.json")));
        }
    }

    @Test
    void crashBetweenShardAndIndexLeavesThoseSamplesMissing(@TempDir Path root) throws IOException {
        List<String> ids = List.of("s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7");
        FeatureCache crashing = FeatureCache.open(root, ENCODER, FINGERPRINT, 4, Long.MAX_VALUE);
        Path dir = crashing.directory();
        for (int i = 0; i < 4; i++) crashing.put(ids.get(i), encode(ids.get(i)), new long[] {6}); // shard 0 + index
        crashing.afterShardWritten = () -> {
            throw new IllegalStateException("simulated crash");
        };
        for (int i = 4; i < 7; i++) crashing.put(ids.get(i), encode(ids.get(i)), new long[] {6});
        assertThrows(IllegalStateException.class, () -> crashing.put("s7", encode("s7"), new long[] {6}));
        assertEquals(List.of("shard-00000.safetensors", "shard-00001.safetensors"), shardFiles(dir)); // written, unindexed
        // close retries the flush, which crashes again (orphan shard 2); the readers are closed all the same
        assertThrows(IllegalStateException.class, crashing::close);
        assertThrows(IllegalStateException.class, () -> crashing.contains("s0"));

        AtomicInteger calls = new AtomicInteger();
        try (FeatureCache cache = FeatureCache.open(root, ENCODER, FINGERPRINT, 4, Long.MAX_VALUE)) {
            assertEquals(4, cache.size());
            for (int i = 0; i < 8; i++) assertEquals(i < 4, cache.contains(ids.get(i)), ids.get(i));
            assertEquals(4, cache.fill(ids, id -> {
                calls.incrementAndGet();
                return encode(id);
            }, new long[] {6}));
        }
        assertEquals(4, calls.get());
        // orphans are never overwritten: the recomputed samples went into a new shard
        assertEquals(List.of("shard-00000.safetensors", "shard-00001.safetensors", "shard-00002.safetensors",
                "shard-00003.safetensors"), shardFiles(dir));
        try (FeatureCache cache = FeatureCache.open(root, ENCODER, FINGERPRINT)) {
            for (String id : ids) assertArrayEquals(encode(id), cache.get(id, null).orElseThrow(), id);
        }
    }

    @Test
    void damagedOrMissingFilesAreErrorsNamingTheFile(@TempDir Path root) throws IOException {
        Path dir;
        try (FeatureCache cache = FeatureCache.open(root, ENCODER, FINGERPRINT, 2, Long.MAX_VALUE)) {
            dir = cache.directory();
            for (String id : List.of("a", "b", "c", "d")) cache.put(id, encode(id), new long[] {6});
        }
        Path shard0 = dir.resolve("shard-00000.safetensors");
        Path shard1 = dir.resolve("shard-00001.safetensors");
        byte[] original1 = Files.readAllBytes(shard1);

        // truncated shard
        try (RandomAccessFile f = new RandomAccessFile(shard1.toFile(), "rw")) {
            f.setLength(original1.length - 10);
        }
        IOException truncated = assertThrows(IOException.class, () -> FeatureCache.open(root, ENCODER, FINGERPRINT));
        assertTrue(truncated.getMessage().contains(shard1.toString()), truncated.getMessage());

        // missing shard
        Files.delete(shard1);
        IOException missing = assertThrows(IOException.class, () -> FeatureCache.open(root, ENCODER, FINGERPRINT));
        assertTrue(missing.getMessage().contains(shard1.toString()), missing.getMessage());

        // garbage header
        Files.write(shard1, new byte[] {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12});
        IOException garbage = assertThrows(IOException.class, () -> FeatureCache.open(root, ENCODER, FINGERPRINT));
        assertTrue(garbage.getMessage().contains(shard1.toString()), garbage.getMessage());

        // a flipped byte in the data: caught by the checksum when read
        Files.write(shard1, original1);
        byte[] bytes = Files.readAllBytes(shard0);
        bytes[bytes.length - 3] ^= 0x40;
        Files.write(shard0, bytes);
        try (FeatureCache cache = FeatureCache.open(root, ENCODER, FINGERPRINT)) {
            assertArrayEquals(encode("c"), cache.get("c", null).orElseThrow());
            UncheckedIOException flipped = assertThrows(UncheckedIOException.class, () -> cache.get("b", null));
            assertTrue(flipped.getMessage().contains(shard0.toString()), flipped.getMessage());
        }

        // damaged index
        Files.writeString(dir.resolve(FeatureCache.INDEX), "{\"format\": \"xllm-feature-cache/1\", \"samp");
        IOException index = assertThrows(IOException.class, () -> FeatureCache.open(root, ENCODER, FINGERPRINT));
        assertTrue(index.getMessage().contains(dir.resolve(FeatureCache.INDEX).toString()), index.getMessage());
    }

    @Test
    void shapeMismatchNamesTheSample(@TempDir Path root) throws IOException {
        try (FeatureCache cache = FeatureCache.open(root, ENCODER, FINGERPRINT, 2, Long.MAX_VALUE)) {
            cache.put("coco/42.jpg", encode("x"), new long[] {2, 3});
            cache.put("flushed", encode("y"), new long[] {2, 3});
            cache.put("buffered", encode("z"), new long[] {2, 3});
            for (String id : List.of("coco/42.jpg", "buffered")) {
                IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                        () -> cache.get(id, new long[] {3, 2}));
                assertTrue(e.getMessage().contains("'" + id + "'") && e.getMessage().contains("[2, 3]"), e.getMessage());
            }
            assertArrayEquals(encode("x"), cache.get("coco/42.jpg", new long[] {2, 3}).orElseThrow());
            IllegalArgumentException wrongCount = assertThrows(IllegalArgumentException.class,
                    () -> cache.put("bad", new float[5], new long[] {2, 3}));
            assertTrue(wrongCount.getMessage().contains("'bad'"), wrongCount.getMessage());
        }
        assertThrows(IllegalArgumentException.class, () -> FeatureCache.open(root, "../up", FINGERPRINT));
        assertThrows(IllegalArgumentException.class, () -> FeatureCache.open(root, ENCODER, "NOT-HEX"));
    }
}
