package xllm.tensor.gguf;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URISyntaxException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;

/**
 * Test helpers: the committed fixtures under {@code fixtures/gguf/}, and a minimal GGUF v3 writer for
 * hand-made (often deliberately broken) files. The writer is a second, independent reading of the spec;
 * the Python-made fixtures keep both honest.
 */
final class GgufTestFiles {

    private GgufTestFiles() {
    }

    static Path fixture(String name) {
        try {
            var url = GgufTestFiles.class.getResource("/fixtures/gguf/" + name);
            if (url == null) throw new IllegalStateException("missing test fixture fixtures/gguf/" + name);
            return Path.of(url.toURI());
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }

    /**
     * One tensor for {@link #write}: {@code ne} innermost first, as GGUF stores it; {@code offset} relative
     * to the data section, or -1 to place it at the next 32-byte boundary.
     */
    record Tensor(String name, long[] ne, int typeId, byte[] data, long offset) {
        Tensor(String name, long[] ne, int typeId, byte[] data) {
            this(name, ne, typeId, data, -1);
        }
    }

    /** A GGUF file with one string key ({@code general.architecture}) and the given tensors, alignment 32. */
    static byte[] write(List<Tensor> tensors) {
        LittleEndianBytes out = new LittleEndianBytes();
        out.int32(0x46554747);
        out.int32(3);
        out.int64(tensors.size());
        out.int64(1);
        out.string("general.architecture");
        out.int32(8); // string
        out.string("test");
        long[] offsets = new long[tensors.size()];
        long next = 0;
        for (int i = 0; i < tensors.size(); i++) {
            Tensor tensor = tensors.get(i);
            offsets[i] = tensor.offset() >= 0 ? tensor.offset() : next;
            next = align(offsets[i] + tensor.data().length);
            out.string(tensor.name());
            out.int32(tensor.ne().length);
            for (long dimension : tensor.ne()) out.int64(dimension);
            out.int32(tensor.typeId());
            out.int64(offsets[i]);
        }
        long dataStart = align(out.size());
        for (int i = 0; i < tensors.size(); i++) {
            while (out.size() < dataStart + offsets[i]) out.int8(0);
            out.bytes(tensors.get(i).data());
        }
        return out.toByteArray();
    }

    private static long align(long position) {
        return (position + 31) / 32 * 32;
    }

    private static final class LittleEndianBytes extends ByteArrayOutputStream {
        void int8(int value) {
            write(value);
        }

        void int32(int value) {
            for (int i = 0; i < 4; i++) write(value >>> (8 * i));
        }

        void int64(long value) {
            for (int i = 0; i < 8; i++) write((int) (value >>> (8 * i)));
        }

        void string(String value) {
            byte[] utf8 = value.getBytes(StandardCharsets.UTF_8);
            int64(utf8.length);
            bytes(utf8);
        }

        void bytes(byte[] data) {
            try {
                write(data);
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }
    }
}
