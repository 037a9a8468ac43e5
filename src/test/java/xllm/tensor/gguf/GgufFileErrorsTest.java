package xllm.tensor.gguf;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Malformed or unsupported GGUF files give errors that name the file and, where one is to blame, the tensor or
 * key: broken copies of {@code tiny.gguf}, {@code unsupported.gguf} (an IQ2_XS tensor) and hand-made files.
 */
class GgufFileErrorsTest {

    @TempDir
    Path directory;

    @Test
    void badMagic() throws IOException {
        byte[] bytes = tinyBytes();
        bytes[3] = 'X';
        Path file = write("model.gguf", bytes);
        IOException error = assertThrows(IOException.class, () -> GgufFile.open(file));
        assertEquals("model.gguf: not a GGUF file (bad magic 0x47475558)", error.getMessage());
    }

    @Test
    void emptyFile() throws IOException {
        Path file = write("empty.gguf", new byte[0]);
        IOException error = assertThrows(IOException.class, () -> GgufFile.open(file));
        assertTrue(error.getMessage().startsWith("empty.gguf: not a GGUF file"), error.getMessage());
    }

    @Test
    void unsupportedVersions() throws IOException {
        for (int version : new int[]{1, 4}) {
            byte[] bytes = tinyBytes();
            bytes[4] = (byte) version;
            Path file = write("v" + version + ".gguf", bytes);
            IOException error = assertThrows(IOException.class, () -> GgufFile.open(file));
            assertEquals("v" + version + ".gguf: unsupported GGUF version " + version
                    + " (xllm reads versions 2 and 3)", error.getMessage());
        }
    }

    @Test
    void bigEndianFileIsRecognisedAndRefused() throws IOException {
        byte[] bytes = tinyBytes();
        bytes[4] = 0;
        bytes[7] = 3; // version 3 written big-endian
        Path file = write("be.gguf", bytes);
        IOException error = assertThrows(IOException.class, () -> GgufFile.open(file));
        assertEquals("be.gguf: big-endian GGUF files are not supported", error.getMessage());
    }

    @Test
    void truncatedTensorDataNamesTheFirstTensorPastTheEnd() throws IOException {
        byte[] bytes = tinyBytes();
        int half = bytes.length / 2;
        Path file = write("half.gguf", Arrays.copyOf(bytes, half));
        // the first tensor (in file order) whose data does not fit in the first half
        String firstCut = null;
        try (GgufFile tiny = GgufFile.open(GgufTestFiles.fixture("tiny.gguf"))) {
            for (GgufTensorInfo info : tiny.tensors()) {
                if (info.offset() + info.byteSize() > half) {
                    firstCut = info.name();
                    break;
                }
            }
        }
        IOException error = assertThrows(IOException.class, () -> GgufFile.open(file));
        assertTrue(error.getMessage().startsWith("half.gguf: file is truncated: data of tensor '" + firstCut + "'"),
                error.getMessage());
        assertTrue(error.getMessage().endsWith("runs past the end of the file (" + half + " bytes)"),
                error.getMessage());
    }

    @Test
    void truncatedMetadata() throws IOException {
        Path file = write("short.gguf", Arrays.copyOf(tinyBytes(), 100));
        IOException error = assertThrows(IOException.class, () -> GgufFile.open(file));
        assertTrue(error.getMessage().startsWith("short.gguf: file is truncated: it ends (at byte 100) inside the "
                + "metadata, while reading metadata key"), error.getMessage());
    }

    @Test
    void unsupportedQuantTypeNamesFileAndTensor() throws IOException {
        try (GgufFile file = GgufFile.open(GgufTestFiles.fixture("unsupported.gguf"))) {
            GgufTensorInfo info = file.tensor("blk.0.attn_q.weight");
            assertEquals(GgmlType.IQ2_XS, info.type());
            assertArrayEquals(new long[]{2, 256}, info.shape());
            IllegalArgumentException error = assertThrows(IllegalArgumentException.class,
                    () -> file.dequantize("blk.0.attn_q.weight"));
            assertEquals("unsupported.gguf: tensor 'blk.0.attn_q.weight' has GGML type IQ2_XS, which xllm cannot "
                    + "dequantise", error.getMessage());
            assertThrows(IllegalArgumentException.class, () -> file.toHostTensor("blk.0.attn_q.weight"));
            // the other tensors stay usable
            assertArrayEquals(new float[]{0, 1, 2, 3, 4, 5, 6, 7}, file.dequantize("blk.0.attn_norm.weight"));
        }
    }

    @Test
    void unknownTypeId() throws IOException {
        Path file = write("unknown.gguf", GgufTestFiles.write(List.of(
                new GgufTestFiles.Tensor("blk.3.ffn_up.weight", new long[]{4}, 200, new byte[16]))));
        IOException error = assertThrows(IOException.class, () -> GgufFile.open(file));
        assertEquals("unknown.gguf: tensor 'blk.3.ffn_up.weight' has unknown GGML type id 200", error.getMessage());
    }

    @Test
    void rowNotAMultipleOfTheBlockSize() throws IOException {
        // 40 Q8_0 values per row: blocks hold 32
        Path file = write("rows.gguf", GgufTestFiles.write(List.of(
                new GgufTestFiles.Tensor("output.weight", new long[]{40, 2}, GgmlType.Q8_0.id, new byte[68]))));
        IOException error = assertThrows(IOException.class, () -> GgufFile.open(file));
        assertEquals("rows.gguf: tensor 'output.weight' of type Q8_0 has rows of 40 values, not a multiple of the "
                + "block size 32", error.getMessage());
    }

    @Test
    void misalignedTensorOffset() throws IOException {
        Path file = write("misaligned.gguf", GgufTestFiles.write(List.of(
                new GgufTestFiles.Tensor("a", new long[]{4}, GgmlType.F32.id, new byte[16], 4))));
        IOException error = assertThrows(IOException.class, () -> GgufFile.open(file));
        assertEquals("misaligned.gguf: tensor 'a' has data offset 4, not a multiple of the alignment 32",
                error.getMessage());
    }

    @Test
    void handMadeFileReadsBack() throws IOException {
        // sanity check of the test writer itself, so the error tests above fail for the intended reason
        byte[] data = new byte[16];
        data[2] = (byte) 0x80;
        data[3] = 0x3f; // 1.0f little-endian
        Path file = write("ok.gguf", GgufTestFiles.write(List.of(
                new GgufTestFiles.Tensor("a", new long[]{2, 2}, GgmlType.F32.id, data))));
        try (GgufFile gguf = GgufFile.open(file)) {
            assertArrayEquals(new float[]{1, 0, 0, 0}, gguf.dequantize("a"));
            assertArrayEquals(new long[]{2, 2}, gguf.tensor("a").shape());
        }
    }

    @Test
    void missingOrMistypedKeysAndTensorsNameFileAndKey() throws IOException {
        try (GgufFile tiny = GgufFile.open(GgufTestFiles.fixture("tiny.gguf"))) {
            assertEquals("tiny.gguf: metadata key 'llama.block_count' is missing",
                    assertThrows(IllegalArgumentException.class, () -> tiny.getLong("llama.block_count")).getMessage());
            assertEquals("tiny.gguf: metadata key 'test.string' is a string, not an integer",
                    assertThrows(IllegalArgumentException.class, () -> tiny.getLong("test.string")).getMessage());
            assertEquals("tiny.gguf: metadata key 'test.uint32' is an integer, not a float",
                    assertThrows(IllegalArgumentException.class, () -> tiny.getDouble("test.uint32")).getMessage());
            assertEquals("tiny.gguf: metadata key 'test.strings' is an array of 3, not a string",
                    assertThrows(IllegalArgumentException.class, () -> tiny.getString("test.strings")).getMessage());
            assertEquals("tiny.gguf: no tensor 'output.weight' (file has 19 tensors)",
                    assertThrows(IllegalArgumentException.class, () -> tiny.tensor("output.weight")).getMessage());
            assertThrows(IllegalArgumentException.class, () -> tiny.dequantize("output.weight"));
        }
    }

    @Test
    void dequantisingAfterCloseFailsClearly() throws IOException {
        GgufFile tiny = GgufFile.open(GgufTestFiles.fixture("tiny.gguf"));
        tiny.close();
        IllegalStateException error = assertThrows(IllegalStateException.class, () -> tiny.dequantize("q4_0"));
        assertTrue(error.getMessage().startsWith("tiny.gguf: cannot map data of tensor 'q4_0'"), error.getMessage());
        assertEquals(19, tiny.tensors().size(), "the header stays readable");
    }

    @Test
    void tensorShapeWhoseSizeOverflowsNamesFileAndTensor() throws IOException {
        long big = 1L << 40;
        Path file = write("huge.gguf", GgufTestFiles.write(List.of(
                new GgufTestFiles.Tensor("w", new long[] {big, big}, 0, new byte[0]))));
        IOException error = assertThrows(IOException.class, () -> GgufFile.open(file));
        assertTrue(error.getMessage().startsWith("huge.gguf: tensor 'w' has an impossible size: shape ["
                + big + ", " + big + "]"), error.getMessage());

        Path negative = write("negative.gguf", GgufTestFiles.write(List.of(
                new GgufTestFiles.Tensor("w", new long[] {-32}, 0, new byte[0]))));
        error = assertThrows(IOException.class, () -> GgufFile.open(negative));
        assertTrue(error.getMessage().startsWith("negative.gguf: tensor 'w' has a negative dimension"), error.getMessage());
    }

    @Test
    void countsAndLengthsBeyondTheFileAreRefusedBeforeAllocating() throws IOException {
        ByteBuffer header = ByteBuffer.allocate(48).order(ByteOrder.LITTLE_ENDIAN);
        header.putInt(0x46554747).putInt(3).putLong(Long.MAX_VALUE).putLong(0);
        Path tensors = write("tensors.gguf", header.array());
        IOException error = assertThrows(IOException.class, () -> GgufFile.open(tensors));
        assertTrue(error.getMessage().startsWith("tensors.gguf: implausible tensor count"), error.getMessage());

        header.clear();
        header.putInt(0x46554747).putInt(3).putLong(0).putLong(1).putLong(1L << 62); // a key of 2^62 bytes
        Path key = write("key.gguf", header.array());
        error = assertThrows(IOException.class, () -> GgufFile.open(key));
        assertTrue(error.getMessage().startsWith("key.gguf: file is truncated"), error.getMessage());
    }

    @Test
    void metadataArraysBeyondTheElementLimitNameFileAndKey() throws IOException {
        // An array of 17 million uint8 values: the file really holds them (a sparse run of zeros), but every
        // element becomes a list entry on the heap, several times its size in the file.
        long length = GgufFile.MAX_METADATA_ELEMENTS + 1;
        ByteBuffer header = ByteBuffer.allocate(64).order(ByteOrder.LITTLE_ENDIAN);
        header.putInt(0x46554747).putInt(3).putLong(0).putLong(1);
        header.putLong(3).put("big".getBytes(java.nio.charset.StandardCharsets.US_ASCII));
        header.putInt(9).putInt(0).putLong(length); // ARRAY of UINT8
        Path file = directory.resolve("array.gguf");
        try (var raf = new java.io.RandomAccessFile(file.toFile(), "rw")) {
            raf.write(header.array(), 0, header.position());
            raf.setLength(header.position() + length + 32);
        }
        IOException error = assertThrows(IOException.class, () -> GgufFile.open(file));
        assertTrue(error.getMessage().startsWith("array.gguf: metadata key 'big'")
                && error.getMessage().contains(String.valueOf(GgufFile.MAX_METADATA_ELEMENTS)), error.getMessage());
    }

    private byte[] tinyBytes() throws IOException {
        return Files.readAllBytes(GgufTestFiles.fixture("tiny.gguf"));
    }

    private Path write(String name, byte[] bytes) throws IOException {
        Path file = directory.resolve(name);
        Files.write(file, bytes);
        return file;
    }
}
