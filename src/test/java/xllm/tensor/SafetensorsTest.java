package xllm.tensor;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

/** Safetensors reader against files written by the Python package; writer round trips; damaged files. */
class SafetensorsTest {

    static final Path FIXTURES = Path.of("src/test/resources/fixtures/safetensors");

    @Test
    void readsEveryDtypeExactlyAsWrittenByTheReference() throws IOException {
        JsonNode expected = new ObjectMapper().readTree(FIXTURES.resolve("expected.json").toFile());
        try (Safetensors st = Safetensors.open(FIXTURES.resolve("dtypes.safetensors"))) {
            assertEquals("xllm fixture", st.metadata().get("note"));
            for (String name : List.of("f64", "f32", "f16", "bf16", "i64", "i32", "i16", "i8", "u8", "bool", "scalar", "empty")) {
                HostTensor t = st.get(name);
                JsonNode e = expected.get(name);
                assertEquals(e.get("shape").size(), t.shape().length, name);
                float[] values = t.toFloats();
                assertEquals(e.get("values").size(), values.length, name);
                for (int i = 0; i < values.length; i++) {
                    // exact: every dtype widens to float without rounding except f64 and large ints
                    assertEquals((float) e.get("values").get(i).asDouble(), values[i], 0f, name + "[" + i + "]");
                }
            }
            assertEquals(DType.BF16, st.dtype("bf16"));
        }
    }

    @Test
    void readsShardedCheckpointThroughItsIndex() throws IOException {
        JsonNode expected = new ObjectMapper().readTree(FIXTURES.resolve("expected.json").toFile());
        try (Safetensors st = Safetensors.open(FIXTURES.resolve("sharded"))) {
            assertEquals(4, st.names().size());
            for (String name : st.names()) {
                float[] values = st.get(name).toFloats();
                JsonNode e = expected.get("sharded/" + name).get("values");
                for (int i = 0; i < values.length; i++) assertEquals((float) e.get(i).asDouble(), values[i], 0f);
            }
        }
    }

    @Test
    void writerRoundTripsAndLeavesNoTemporaryFiles(@TempDir Path dir) throws IOException {
        Path file = dir.resolve("out.safetensors");
        HostTensor a = HostTensor.ofFloats("a", new float[] {1, -2, 3.5f, 1e-8f, Float.MAX_VALUE, -0f}, 2, 3);
        ByteBuffer ints = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN).putLong(1L << 40).putLong(-7);
        HostTensor b = new HostTensor("b", DType.I64, new long[] {2}, ints.flip());
        SafetensorsWriter.write(file, List.of(a, b), Map.of("stage", "test"));
        try (Safetensors st = Safetensors.open(file)) {
            assertArrayEquals(a.toFloats(), st.get("a").toFloats());
            assertEquals(1L << 40, st.get("b").data().getLong(0));
            assertEquals(-7, st.get("b").data().getLong(8));
            assertEquals("test", st.metadata().get("stage"));
        }
        SafetensorsWriter.write(file, List.of(b), Map.of()); // overwrite in place
        try (Safetensors st = Safetensors.open(file)) {
            assertEquals(List.of("b"), st.names());
        }
        try (var files = Files.list(dir)) {
            assertEquals(List.of(file), files.toList(), "only the final file remains");
        }
    }

    @Test
    void truncatedFileIsRejectedNamingFileAndTensor(@TempDir Path dir) throws IOException {
        byte[] bytes = Files.readAllBytes(FIXTURES.resolve("dtypes.safetensors"));
        Path cut = dir.resolve("cut.safetensors");
        Files.write(cut, java.util.Arrays.copyOf(bytes, bytes.length - 10));
        IOException e = assertThrows(IOException.class, () -> Safetensors.open(cut));
        assertTrue(e.getMessage().contains("cut.safetensors") && e.getMessage().contains("truncated"), e.getMessage());
        assertTrue(e.getMessage().contains("tensor '"), e.getMessage());

        Path tiny = dir.resolve("tiny.safetensors");
        Files.write(tiny, new byte[] {1, 2, 3});
        assertTrue(assertThrows(IOException.class, () -> Safetensors.open(tiny)).getMessage().contains("tiny.safetensors"));
    }

    @Test
    void corruptHeaderAndInconsistentOffsetsAreRejected(@TempDir Path dir) throws IOException {
        Path garbage = dir.resolve("garbage.safetensors");
        writeRaw(garbage, "{not json", 0);
        assertTrue(assertThrows(IOException.class, () -> Safetensors.open(garbage)).getMessage().contains("malformed"));

        Path wrongSize = dir.resolve("wrong.safetensors");
        writeRaw(wrongSize, "{\"w\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,12]}}", 12);
        IOException e = assertThrows(IOException.class, () -> Safetensors.open(wrongSize));
        assertTrue(e.getMessage().contains("'w'") && e.getMessage().contains("do not match"), e.getMessage());

        Path badType = dir.resolve("type.safetensors");
        writeRaw(badType, "{\"w\":{\"dtype\":\"F8_E4M3\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1);
        assertTrue(assertThrows(IOException.class, () -> Safetensors.open(badType)).getMessage().contains("F8_E4M3"));

        Path twice = dir.resolve("twice.safetensors");   // one name twice: refused, not last-one-wins
        writeRaw(twice, "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                + "\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8);
        String twiceMessage = assertThrows(IOException.class, () -> Safetensors.open(twice)).getMessage();
        assertTrue(twiceMessage.contains("Duplicate field 'w'"), twiceMessage);

        Path index = dir.resolve("model.safetensors.index.json");
        Files.writeString(index, "{\"weight_map\":{\"x\":\"missing-shard.safetensors\"}}");
        assertTrue(assertThrows(IOException.class, () -> Safetensors.open(index)).getMessage().contains("missing-shard"));
        for (String shard : new String[] {"../outside.safetensors", "/etc/passwd", "sub/x.safetensors", ".."}) {
            Files.writeString(index, "{\"weight_map\":{\"x\":\"" + shard + "\"}}");
            String message = assertThrows(IOException.class, () -> Safetensors.open(index)).getMessage();
            assertTrue(message.contains("'" + shard + "' is not a file name beside the index"), message);
        }
        Files.writeString(index, "{\"weight_map\":{\"x\":\"a.safetensors\",\"x\":\"b.safetensors\"}}");
        String duplicate = assertThrows(IOException.class, () -> Safetensors.open(index)).getMessage();
        assertTrue(duplicate.contains("Duplicate field 'x'"), duplicate);
    }

    @Test
    void shapeWhoseSizeOverflowsIsAnErrorNamingFileAndTensor(@TempDir Path dir) throws IOException {
        long big = 1L << 40; // 2^40 × 2^40 elements overflow a 64-bit count
        Path file = dir.resolve("huge.safetensors");
        writeRaw(file, "{\"w\":{\"dtype\":\"F32\",\"shape\":[" + big + "," + big + "],\"data_offsets\":[0,0]}}", 0);
        IOException e = assertThrows(IOException.class, () -> Safetensors.open(file));
        assertTrue(e.getMessage().contains("huge.safetensors") && e.getMessage().contains("'w'")
                && e.getMessage().contains("overflows"), e.getMessage());

        // 2^62 F32 elements: the element count fits in a long, the byte count (2^64) wraps to 0
        Path wraps = dir.resolve("wraps.safetensors");
        writeRaw(wraps, "{\"w\":{\"dtype\":\"F32\",\"shape\":[" + (1L << 62) + "],\"data_offsets\":[0,0]}}", 0);
        e = assertThrows(IOException.class, () -> Safetensors.open(wraps));
        assertTrue(e.getMessage().contains("wraps.safetensors") && e.getMessage().contains("overflows"), e.getMessage());

        // a dimension beyond 64 bits, or not an integer at all, is not read as something else
        Path beyond = dir.resolve("beyond.safetensors");
        writeRaw(beyond, "{\"w\":{\"dtype\":\"U8\",\"shape\":[18446744073709551616],\"data_offsets\":[0,0]}}", 0);
        e = assertThrows(IOException.class, () -> Safetensors.open(beyond));
        assertTrue(e.getMessage().contains("beyond.safetensors") && e.getMessage().contains("18446744073709551616"),
                e.getMessage());
        Path text = dir.resolve("text.safetensors");
        writeRaw(text, "{\"w\":{\"dtype\":\"U8\",\"shape\":[\"two\"],\"data_offsets\":[0,2]}}", 2);
        e = assertThrows(IOException.class, () -> Safetensors.open(text));
        assertTrue(e.getMessage().contains("text.safetensors") && e.getMessage().contains("\"two\""), e.getMessage());
    }

    @Test
    void overlappingOrOutOfRangeDataOffsetsAreRejectedNamingBothTensors(@TempDir Path dir) throws IOException {
        Path overlap = dir.resolve("overlap.safetensors");
        writeRaw(overlap, "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
                + "\"b\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[8,24]}}", 24);
        IOException e = assertThrows(IOException.class, () -> Safetensors.open(overlap));
        assertTrue(e.getMessage().contains("overlap.safetensors") && e.getMessage().contains("'a'")
                && e.getMessage().contains("'b'") && e.getMessage().contains("overlap"), e.getMessage());

        Path same = dir.resolve("same.safetensors"); // two names for one byte range
        writeRaw(same, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                + "\"b\":{\"dtype\":\"I32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8);
        e = assertThrows(IOException.class, () -> Safetensors.open(same));
        assertTrue(e.getMessage().contains("'a'") && e.getMessage().contains("'b'"), e.getMessage());

        Path beyond = dir.resolve("beyond.safetensors");
        writeRaw(beyond, "{\"a\":{\"dtype\":\"U8\",\"shape\":[8],\"data_offsets\":[" + Long.MAX_VALUE + ","
                + Long.MAX_VALUE + "]}}", 8);
        e = assertThrows(IOException.class, () -> Safetensors.open(beyond));
        assertTrue(e.getMessage().contains("beyond.safetensors") && e.getMessage().contains("'a'"), e.getMessage());

        Path reversed = dir.resolve("reversed.safetensors");
        writeRaw(reversed, "{\"a\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[8,0]}}", 8);
        e = assertThrows(IOException.class, () -> Safetensors.open(reversed));
        assertTrue(e.getMessage().contains("reversed.safetensors") && e.getMessage().contains("'a'"), e.getMessage());

        // like the reference (Rust) reader: the tensors tile the data section, no gap and nothing after them
        Path gap = dir.resolve("gap.safetensors");
        writeRaw(gap, "{\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]},"
                + "\"b\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[6,10]}}", 10);
        e = assertThrows(IOException.class, () -> Safetensors.open(gap));
        assertTrue(e.getMessage().contains("gap.safetensors") && e.getMessage().contains("'a'")
                && e.getMessage().contains("'b'"), e.getMessage());
        Path trailing = dir.resolve("trailing.safetensors");
        writeRaw(trailing, "{\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]}}", 9);
        e = assertThrows(IOException.class, () -> Safetensors.open(trailing));
        assertTrue(e.getMessage().contains("trailing.safetensors") && e.getMessage().contains("5 bytes"), e.getMessage());
    }

    @Test
    void tensorsBeyondTwoGibibytesAreMappedWithLongOffsets(@TempDir Path dir) throws IOException {
        long gap = (2L << 30) + 4096; // data of the second tensor starts past 2 GiB (sparse file: no disk used)
        String header = "{\"pad\":{\"dtype\":\"U8\",\"shape\":[" + gap + "],\"data_offsets\":[0," + gap + "]},"
                + "\"far\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[" + gap + "," + (gap + 12) + "]}}";
        Path file = dir.resolve("big.safetensors");
        byte[] h = header.getBytes(StandardCharsets.UTF_8);
        try (RandomAccessFile raf = new RandomAccessFile(file.toFile(), "rw")) {
            ByteBuffer prefix = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(h.length);
            raf.write(prefix.array());
            raf.write(h);
            raf.seek(8 + h.length + gap);
            ByteBuffer data = ByteBuffer.allocate(12).order(ByteOrder.LITTLE_ENDIAN).putFloat(1.5f).putFloat(-2f).putFloat(7f);
            raf.write(data.array());
        }
        try (Safetensors st = Safetensors.open(file)) {
            assertArrayEquals(new float[] {1.5f, -2f, 7f}, st.get("far").toFloats());
        }
    }

    private static void writeRaw(Path file, String header, int dataBytes) throws IOException {
        byte[] h = header.getBytes(StandardCharsets.UTF_8);
        ByteBuffer b = ByteBuffer.allocate(8 + h.length + dataBytes).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(h.length).put(h);
        Files.write(file, b.array());
    }
}
