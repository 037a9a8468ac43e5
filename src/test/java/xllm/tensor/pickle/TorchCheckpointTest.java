package xllm.tensor.pickle;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;
import xllm.tensor.HostTensor;

import java.io.IOException;
import java.io.InputStream;
import java.net.URISyntaxException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.BiFunction;
import java.util.zip.ZipEntry;
import java.util.zip.ZipFile;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@link TorchCheckpoint} against files written by torch ({@code tools/reference/make_pth_fixtures.py}: every
 * dtype, strided and offset views, pickle protocols 2/4/5, the legacy format, nested checkpoints), against
 * malicious pickles whose payload must not run, and against damaged archives whose errors must name the file.
 */
class TorchCheckpointTest {

    @TempDir
    Path temp;

    // --- parity with torch ---------------------------------------------------------------------------------------

    @ParameterizedTest
    @ValueSource(strings = {"tensors_protocol2.pth", "tensors_protocol4.pth", "tensors_protocol5.pth", "tensors_legacy.pth"})
    void readsEveryDtypeAndViewExactlyAsTorchSavedIt(String fixture) throws Exception {
        assertMatchesTorch(TorchCheckpoint.read(fixture(fixture)), "tensors_expected.json");
    }

    @Test
    void flattensNestedCheckpointKeysWithDotsAndSkipsNonTensorLeaves() throws Exception {
        Map<String, HostTensor> tensors = TorchCheckpoint.read(fixture("nested.pth"));
        assertEquals(List.of("state_dict.encoder.weight", "state_dict.encoder.bias", "ema.0", "ema.1", "step"),
                new ArrayList<>(tensors.keySet()));
        assertMatchesTorch(tensors, "nested_expected.json");
    }

    @Test
    void transposedViewIsTheTransposeOfItsBaseTensor() throws Exception {
        // Independent of the JSON: both tensors come from one storage, only the strides differ.
        Map<String, HostTensor> tensors = TorchCheckpoint.read(fixture("tensors_protocol2.pth"));
        float[] base = tensors.get("views.base").toFloats();          // (4, 6)
        float[] transposed = tensors.get("views.transposed").toFloats(); // (6, 4)
        assertArrayEquals(new long[] {6, 4}, tensors.get("views.transposed").shape());
        for (int row = 0; row < 4; row++) {
            for (int column = 0; column < 6; column++) assertEquals(base[row * 6 + column], transposed[column * 4 + row]);
        }
        float[] columnStep = tensors.get("views.column_step").toFloats(); // base[:, 1::2], (4, 3)
        for (int row = 0; row < 4; row++) {
            for (int j = 0; j < 3; j++) assertEquals(base[row * 6 + 1 + 2 * j], columnStep[row * 3 + j]);
        }
    }

    @Test
    void readsArchiveRezippedWithDeflate() throws Exception {
        Path deflated = rewrite("tensors_protocol2.pth", (name, data) -> data, ZipEntry.DEFLATED);
        assertMatchesTorch(TorchCheckpoint.read(deflated), "tensors_expected.json");
    }

    @Test
    void handBuiltTransposedViewReadsColumnMajor() throws Exception {
        // Positive control for the hand-built pickles below: a (2, 2) view with stride (1, 2) of [0, 1, 2, 3].
        byte[] pickle = PickleBytes.protocol(2).emptyDict().text("w")
                .floatTensor("0", 4, 0, new int[] {2, 2}, new int[] {1, 2}).setItem().stop().toByteArray();
        Path file = PickleBytes.torchZip(temp.resolve("control.pth"), pickle, Map.of("0", floats(0, 1, 2, 3)));
        HostTensor tensor = TorchCheckpoint.read(file).get("w");
        assertArrayEquals(new float[] {0, 2, 1, 3}, tensor.toFloats());
    }

    // --- nothing in a pickle ever runs -------------------------------------------------------------------------

    @ParameterizedTest
    @CsvSource({
            "evil_os_system_protocol2.pth, posix.system, xllm-pth-marker-os-system-protocol2",
            "evil_os_system_protocol4.pth, posix.system, xllm-pth-marker-os-system-protocol4",
            "evil_eval.pth, __builtin__.eval, xllm-pth-marker-eval",
            "evil_popen.pth, commands.Popen, xllm-pth-marker-popen"})
    void refusesPayloadsThatTorchLoadWouldRun(String fixture, String global, String markerName) throws Exception {
        // The generator checked that torch.load(weights_only=False) creates the marker in the working directory.
        Path marker = Path.of(markerName).toAbsolutePath();
        Files.deleteIfExists(marker);
        Path file = fixture(fixture);
        RefusedPickleException refused = assertThrows(RefusedPickleException.class, () -> TorchCheckpoint.read(file));
        assertTrue(refused.getMessage().contains(file.toString()), refused.getMessage());
        assertTrue(refused.getMessage().contains("global '" + global + "'"), refused.getMessage());
        assertEquals("global '" + global + "'", refused.refused());
        Thread.sleep(100); // a Popen would have run touch asynchronously
        assertFalse(Files.exists(marker), "payload ran: " + marker);
    }

    @ParameterizedTest
    @CsvSource({"os, system", "posix, system", "builtins, exec", "subprocess, getoutput"})
    void refusesCommandGlobalsWrittenByHand(String module, String name) throws Exception {
        Path marker = temp.resolve("marker");
        String command = name.equals("exec") ? "__import__('os').system('touch " + marker + "')" : "touch " + marker;
        for (boolean stackGlobal : new boolean[] {false, true}) {
            PickleBytes pickle = PickleBytes.protocol(stackGlobal ? 4 : 2).emptyDict().text("w");
            if (stackGlobal) pickle.stackGlobal(module, name);
            else pickle.global(module, name);
            byte[] bytes = pickle.text(command).tuple1().reduce().setItem().stop().toByteArray();
            Path file = PickleBytes.torchZip(temp.resolve("evil-" + stackGlobal + ".pth"), bytes, Map.of());
            RefusedPickleException refused = assertThrows(RefusedPickleException.class, () -> TorchCheckpoint.read(file));
            assertEquals("global '" + module + "." + name + "'", refused.refused());
            // PROTO (2 bytes), EMPTY_DICT (1), BINUNICODE 'w' (6); STACK_GLOBAL follows its two BINUNICODE operands.
            long opcodeOffset = stackGlobal ? 9 + 5 + module.length() + 5 + name.length() : 9;
            assertEquals(opcodeOffset, refused.offset());
            assertTrue(refused.getMessage().contains(file.toString()));
            assertFalse(Files.exists(marker));
        }
    }

    @Test
    void refusesSubprocessPopenAndGetattrAndBuiltinsEval() throws Exception {
        for (String[] global : new String[][] {{"subprocess", "Popen"}, {"__builtin__", "getattr"}, {"builtins", "eval"},
                {"torch._utils", "_rebuild_tensor_v2.__globals__"}, {"torch", "load"}, {"collections", "OrderedDict "}}) {
            byte[] bytes = PickleBytes.protocol(2).global(global[0], global[1]).text("x").tuple1().reduce().stop()
                    .toByteArray();
            Path file = PickleBytes.torchZip(temp.resolve("evil.pth"), bytes, Map.of());
            RefusedPickleException refused = assertThrows(RefusedPickleException.class, () -> TorchCheckpoint.read(file));
            assertEquals("global '" + global[0] + "." + global[1] + "'", refused.refused());
            assertEquals(2, refused.offset());
        }
    }

    @Test
    void refusesInstOpcodeThatWouldImportAndCall() throws Exception {
        // Protocol 0's INST imports os.system and calls it with the items since the MARK: no GLOBAL involved.
        Path marker = temp.resolve("marker");
        byte[] bytes = PickleBytes.protocol(2).mark().text("touch " + marker).inst("os", "system").stop().toByteArray();
        Path file = PickleBytes.torchZip(temp.resolve("inst.pth"), bytes, Map.of());
        RefusedPickleException refused = assertThrows(RefusedPickleException.class, () -> TorchCheckpoint.read(file));
        assertEquals("opcode 0x69 'i' (INST)", refused.refused());
        assertTrue(refused.getMessage().contains(file.toString()));
        assertFalse(Files.exists(marker));
    }

    @Test
    void refusesUnknownOpcodeWithItsOffset() throws Exception {
        byte[] bytes = PickleBytes.protocol(2).emptyDict().raw(0xff).stop().toByteArray();
        Path file = PickleBytes.torchZip(temp.resolve("unknown.pth"), bytes, Map.of());
        RefusedPickleException refused = assertThrows(RefusedPickleException.class, () -> TorchCheckpoint.read(file));
        assertEquals("opcode 0xff (unknown)", refused.refused());
        assertEquals(3, refused.offset());
        assertTrue(refused.getMessage().contains(file + " (entry archive/data.pkl)"), refused.getMessage());
    }

    @Test
    void refusesPayloadInLegacyFormatHeader() throws Exception {
        Path marker = temp.resolve("marker");
        byte[] bytes = PickleBytes.protocol(2).global("os", "system").text("touch " + marker).tuple1().reduce().stop()
                .toByteArray();
        Path file = Files.write(temp.resolve("legacy-evil.pth"), bytes);
        RefusedPickleException refused = assertThrows(RefusedPickleException.class, () -> TorchCheckpoint.read(file));
        assertEquals("global 'os.system'", refused.refused());
        assertFalse(Files.exists(marker));
    }

    @Test
    void refusesCallingSomethingThatIsNotAWhitelistedCallable() throws Exception {
        byte[] storageCall = PickleBytes.protocol(2).global("torch", "FloatStorage").text("x").tuple1().reduce().stop()
                .toByteArray();
        byte[] stringCall = PickleBytes.protocol(2).text("os.system").text("x").tuple1().reduce().stop().toByteArray();
        for (byte[] bytes : List.of(storageCall, stringCall)) {
            Path file = PickleBytes.torchZip(temp.resolve("call.pth"), bytes, Map.of());
            IOException error = assertThrows(IOException.class, () -> TorchCheckpoint.read(file));
            assertTrue(error.getMessage().contains("malformed state-dict pickle"), error.getMessage());
        }
    }

    // --- damaged files -------------------------------------------------------------------------------------

    @Test
    void rejectsFileThatIsNotAZip() throws Exception {
        Path file = Files.writeString(temp.resolve("text.pth"), "just some text, not a checkpoint");
        IOException error = assertThrows(IOException.class, () -> TorchCheckpoint.read(file));
        assertTrue(error.getMessage().startsWith(file.toString()), error.getMessage());
        assertTrue(error.getMessage().contains("not a zip"), error.getMessage());
    }

    @Test
    void rejectsZipWithoutDataPkl() throws Exception {
        Path file = PickleBytes.writeZip(temp.resolve("other.zip"), Map.of("readme.txt", new byte[] {1, 2}), ZipEntry.STORED);
        IOException error = assertThrows(IOException.class, () -> TorchCheckpoint.read(file));
        assertTrue(error.getMessage().startsWith(file.toString()), error.getMessage());
        assertTrue(error.getMessage().contains("data.pkl"), error.getMessage());
    }

    @Test
    void rejectsMissingStorageEntry() throws Exception {
        Path file = rewrite("tensors_protocol2.pth", (name, data) -> name.endsWith("/data/3") ? null : data,
                ZipEntry.STORED);
        IOException error = assertThrows(IOException.class, () -> TorchCheckpoint.read(file));
        assertTrue(error.getMessage().startsWith(file.toString()), error.getMessage());
        assertTrue(error.getMessage().contains("missing storage entry tensors_protocol2/data/3"), error.getMessage());
    }

    @Test
    void rejectsTruncatedPickle() throws Exception {
        Path file = rewrite("tensors_protocol2.pth",
                (name, data) -> name.endsWith("data.pkl") ? Arrays.copyOf(data, data.length / 2) : data, ZipEntry.STORED);
        IOException error = assertThrows(IOException.class, () -> TorchCheckpoint.read(file));
        assertTrue(error.getMessage().startsWith(file + " (entry tensors_protocol2/data.pkl)"), error.getMessage());
        assertTrue(error.getMessage().contains("truncated pickle"), error.getMessage());
    }

    @Test
    void rejectsStorageEntryOfWrongSize() throws Exception {
        Path file = rewrite("tensors_protocol2.pth",
                (name, data) -> name.endsWith("/data/0") ? Arrays.copyOf(data, 8) : data, ZipEntry.STORED);
        IOException error = assertThrows(IOException.class, () -> TorchCheckpoint.read(file));
        assertTrue(error.getMessage().startsWith(file.toString()), error.getMessage());
        assertTrue(error.getMessage().contains("tensors_protocol2/data/0 has 8 bytes but its persistent id declares 12"),
                error.getMessage());
    }

    @Test
    void rejectsDeflatedEntryDeclaringTwoGigabytesBeforeAllocatingIt() throws Exception {
        byte[] pickle = PickleBytes.protocol(2).emptyDict().text("w")
                .floatTensor("0", 2, 0, new int[] {2}, new int[] {1}).setItem().stop().toByteArray();
        Map<String, byte[]> entries = new LinkedHashMap<>();
        entries.put("archive/data.pkl", pickle);
        entries.put("archive/data/0", floats(1, 2));
        Path file = PickleBytes.writeZip(temp.resolve("bomb.pth"), entries, ZipEntry.DEFLATED);
        // The central directory now claims that data.pkl inflates to 2 GiB - 16 bytes.
        byte[] zip = Files.readAllBytes(file);
        ByteBuffer view = ByteBuffer.wrap(zip).order(java.nio.ByteOrder.LITTLE_ENDIAN);
        int patched = 0;
        for (int at = 0; at + 46 < zip.length; at++) {
            if (view.getInt(at) == 0x02014b50 && new String(zip, at + 46, view.getShort(at + 28),
                    StandardCharsets.UTF_8).equals("archive/data.pkl")) {
                view.putInt(at + 24, 0x7ffffff0);
                patched++;
            }
        }
        assertEquals(1, patched);
        Files.write(file, zip);
        long before = usedHeap();
        IOException error = assertThrows(IOException.class, () -> TorchCheckpoint.read(file));
        assertTrue(usedHeap() - before < 256L << 20, "no gigabyte buffer was allocated");
        assertTrue(error.getMessage().startsWith(file + " (entry archive/data.pkl)"), error.getMessage());
        assertTrue(error.getMessage().contains("2147483632") && error.getMessage().contains("at most"),
                error.getMessage());
    }

    @Test
    void rejectsZip64SizesBeyondTheFile() throws Exception {
        byte[] pickle = PickleBytes.protocol(2).emptyDict().stop().toByteArray();
        Path file = PickleBytes.torchZip(temp.resolve("zip64.pth"), pickle, Map.of());
        // Give archive/data.pkl a zip64 extra field whose sizes are 2^64-1, read as negative 64-bit numbers.
        byte[] zip = Files.readAllBytes(file);
        ByteBuffer view = ByteBuffer.wrap(zip).order(java.nio.ByteOrder.LITTLE_ENDIAN);
        int entry = -1;
        for (int at = 0; at + 46 < zip.length && entry < 0; at++) {
            if (view.getInt(at) == 0x02014b50 && new String(zip, at + 46, view.getShort(at + 28),
                    StandardCharsets.UTF_8).equals("archive/data.pkl")) entry = at;
        }
        assertTrue(entry >= 0);
        int insertAt = entry + 46 + view.getShort(entry + 28) + view.getShort(entry + 30);
        ByteBuffer extra = ByteBuffer.allocate(20).order(java.nio.ByteOrder.LITTLE_ENDIAN)
                .putShort((short) 1).putShort((short) 16).putLong(-1L).putLong(-1L);
        byte[] patched = new byte[zip.length + 20];
        System.arraycopy(zip, 0, patched, 0, insertAt);
        System.arraycopy(extra.array(), 0, patched, insertAt, 20);
        System.arraycopy(zip, insertAt, patched, insertAt + 20, zip.length - insertAt);
        ByteBuffer out = ByteBuffer.wrap(patched).order(java.nio.ByteOrder.LITTLE_ENDIAN);
        out.putInt(entry + 20, -1).putInt(entry + 24, -1); // sizes saturated: the zip64 field holds them
        out.putShort(entry + 30, (short) (view.getShort(entry + 30) + 20));
        int end = patched.length - 22;
        assertEquals(0x06054b50, out.getInt(end));
        out.putInt(end + 12, out.getInt(end + 12) + 20);
        Files.write(file, patched);
        IOException error = assertThrows(IOException.class, () -> TorchCheckpoint.read(file));
        assertTrue(error.getMessage().startsWith(file + " (entry archive/data.pkl)"), error.getMessage());
        assertTrue(error.getMessage().contains("18446744073709551615"), error.getMessage());
    }

    private static long usedHeap() {
        Runtime runtime = Runtime.getRuntime();
        return runtime.totalMemory() - runtime.freeMemory();
    }

    @Test
    void rejectsStorageWhoseByteCountOverflows() throws Exception {
        // 2^62 float32 elements are 2^64 bytes, which wraps to 0 and would "match" an empty entry.
        long numel = 1L << 62;
        byte[] pickle = PickleBytes.protocol(2).emptyDict().text("w")
                .floatTensor("0", numel, 0, new long[] {numel}, new long[] {1}).setItem().stop().toByteArray();
        Path file = PickleBytes.torchZip(temp.resolve("wrap.pth"), pickle, Map.of("0", new byte[0]));
        IOException error = assertThrows(IOException.class, () -> TorchCheckpoint.read(file));
        assertTrue(error.getMessage().startsWith(file.toString()), error.getMessage());
        assertTrue(error.getMessage().contains("archive/data/0") && error.getMessage().contains("overflows"),
                error.getMessage());

        // A broadcast view (stride 0) of one element with 2^61 elements: 2^63 bytes, which wraps negative.
        byte[] broadcast = PickleBytes.protocol(2).emptyDict().text("w")
                .floatTensor("0", 1, 0, new long[] {1L << 61}, new long[] {0}).setItem().stop().toByteArray();
        Path broadcastFile = PickleBytes.torchZip(temp.resolve("broadcast.pth"), broadcast, Map.of("0", floats(1)));
        error = assertThrows(IOException.class, () -> TorchCheckpoint.read(broadcastFile));
        assertTrue(error.getMessage().startsWith(broadcastFile.toString()), error.getMessage());
        assertTrue(error.getMessage().contains("tensor 'w'") && error.getMessage().contains("exceeds 2 GiB"),
                error.getMessage());
    }

    @Test
    void rejectsViewReachingPastItsStorage() throws Exception {
        // shape (2, 3) with stride (3, 1) needs 6 elements; the storage declares and holds 4.
        byte[] pickle = PickleBytes.protocol(2).emptyDict().text("w")
                .floatTensor("0", 4, 0, new int[] {2, 3}, new int[] {3, 1}).setItem().stop().toByteArray();
        Path file = PickleBytes.torchZip(temp.resolve("overrun.pth"), pickle, Map.of("0", floats(0, 1, 2, 3)));
        IOException error = assertThrows(IOException.class, () -> TorchCheckpoint.read(file));
        assertTrue(error.getMessage().startsWith(file.toString()), error.getMessage());
        assertTrue(error.getMessage().contains("tensor 'w'") && error.getMessage().contains("reaches element 5")
                && error.getMessage().contains("holds only 4"), error.getMessage());

        // Same geometry, pushed past the end by the storage offset alone.
        byte[] offsetPickle = PickleBytes.protocol(2).emptyDict().text("w")
                .floatTensor("0", 4, 3, new int[] {2}, new int[] {1}).setItem().stop().toByteArray();
        Path offsetFile = PickleBytes.torchZip(temp.resolve("offset.pth"), offsetPickle, Map.of("0", floats(0, 1, 2, 3)));
        IOException offsetError = assertThrows(IOException.class, () -> TorchCheckpoint.read(offsetFile));
        assertTrue(offsetError.getMessage().contains("reaches element 4"), offsetError.getMessage());
    }

    @Test
    void rejectsTruncatedLegacyFile() throws Exception {
        byte[] whole = Files.readAllBytes(fixture("tensors_legacy.pth"));
        Path file = Files.write(temp.resolve("cut.pth"), Arrays.copyOf(whole, whole.length - 10));
        IOException error = assertThrows(IOException.class, () -> TorchCheckpoint.read(file));
        assertTrue(error.getMessage().startsWith(file.toString()), error.getMessage());
        assertTrue(error.getMessage().contains("runs past the end of the file"), error.getMessage());
    }

    @Test
    void rejectsLegacyTarFormatWithAdvice() throws Exception {
        byte[] tar = new byte[1024];
        System.arraycopy("ustar".getBytes(StandardCharsets.US_ASCII), 0, tar, 257, 5);
        Path file = Files.write(temp.resolve("ancient.pth"), tar);
        IOException error = assertThrows(IOException.class, () -> TorchCheckpoint.read(file));
        assertTrue(error.getMessage().contains("re-save with torch>=1.6"), error.getMessage());
    }

    // --- helpers -------------------------------------------------------------------------------------------

    static void assertMatchesTorch(Map<String, HostTensor> actual, String expectedJson) throws IOException {
        JsonNode expected;
        try (InputStream in = TorchCheckpointTest.class.getResourceAsStream("/fixtures/pth/" + expectedJson)) {
            expected = new ObjectMapper().readTree(in).get("tensors");
        }
        List<String> expectedNames = new ArrayList<>();
        expected.forEach(tensor -> expectedNames.add(tensor.get("name").asText()));
        assertEquals(expectedNames, new ArrayList<>(actual.keySet()), "keys in pickle order");
        for (JsonNode tensor : expected) {
            String name = tensor.get("name").asText();
            HostTensor loaded = actual.get(name);
            assertEquals(tensor.get("dtype").asText(), loaded.dtype().safetensorsName, name);
            long[] shape = new long[tensor.get("shape").size()];
            for (int i = 0; i < shape.length; i++) shape[i] = tensor.get("shape").get(i).asLong();
            assertArrayEquals(shape, loaded.shape(), name);
            ByteBuffer data = loaded.data().duplicate();
            byte[] bytes = new byte[data.remaining()];
            data.get(bytes);
            assertEquals(tensor.get("hex").asText(), HexFormat.of().formatHex(bytes), name + " bytes");
            if (tensor.has("values")) {
                float[] values = loaded.toFloats();
                assertEquals(tensor.get("values").size(), values.length, name);
                for (int i = 0; i < values.length; i++) {
                    float want = (float) tensor.get("values").get(i).asDouble();
                    assertEquals(Float.floatToIntBits(want), Float.floatToIntBits(values[i]), name + "[" + i + "]");
                }
            }
        }
    }

    static Path fixture(String name) throws URISyntaxException {
        return Path.of(TorchCheckpointTest.class.getResource("/fixtures/pth/" + name).toURI());
    }

    /** Copies a fixture zip entry by entry through {@code transform} (null drops the entry). */
    private Path rewrite(String fixture, BiFunction<String, byte[], byte[]> transform, int method) throws Exception {
        Map<String, byte[]> entries = new LinkedHashMap<>();
        try (ZipFile zip = new ZipFile(fixture(fixture).toFile())) {
            for (ZipEntry entry : java.util.Collections.list(zip.entries())) {
                byte[] data = transform.apply(entry.getName(), zip.getInputStream(entry).readAllBytes());
                if (data != null) entries.put(entry.getName(), data);
            }
        }
        return PickleBytes.writeZip(temp.resolve("rewritten-" + fixture), entries, method);
    }

    private static byte[] floats(float... values) {
        ByteBuffer buffer = ByteBuffer.allocate(values.length * 4).order(java.nio.ByteOrder.LITTLE_ENDIAN);
        for (float value : values) buffer.putFloat(value);
        return buffer.array();
    }
}
