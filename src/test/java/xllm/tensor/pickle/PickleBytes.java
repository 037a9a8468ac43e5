package xllm.tensor.pickle;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.zip.CRC32;
import java.util.zip.ZipEntry;
import java.util.zip.ZipOutputStream;

/** Hand-assembled pickle opcodes (CPython pickle.py numbering) and torch-style zips, for hostile test inputs. */
final class PickleBytes {
    private final ByteArrayOutputStream bytes = new ByteArrayOutputStream();

    static PickleBytes protocol(int protocol) {
        return new PickleBytes().raw(0x80, protocol);
    }

    PickleBytes raw(int... opcodes) {
        for (int opcode : opcodes) bytes.write(opcode);
        return this;
    }

    /** GLOBAL 'module\nname\n' (protocol 2 style). */
    PickleBytes global(String module, String name) {
        raw('c');
        bytes.writeBytes((module + "\n" + name + "\n").getBytes(StandardCharsets.UTF_8));
        return this;
    }

    /** INST 'module\nname\n': protocol 0's import-and-call of a class, with the arguments since the MARK. */
    PickleBytes inst(String module, String name) {
        raw('i');
        bytes.writeBytes((module + "\n" + name + "\n").getBytes(StandardCharsets.UTF_8));
        return this;
    }

    /** SHORT_BINUNICODE module, SHORT_BINUNICODE name, STACK_GLOBAL (protocol 4 style). */
    PickleBytes stackGlobal(String module, String name) {
        return text(module).text(name).raw(0x93);
    }

    /** BINUNICODE with a 4-byte little-endian length. */
    PickleBytes text(String value) {
        byte[] utf8 = value.getBytes(StandardCharsets.UTF_8);
        raw('X', utf8.length & 0xff, (utf8.length >>> 8) & 0xff, (utf8.length >>> 16) & 0xff, utf8.length >>> 24);
        bytes.writeBytes(utf8);
        return this;
    }

    /** BININT1 for 0..255, else BININT. */
    PickleBytes integer(int value) {
        if (value >= 0 && value < 256) return raw('K', value);
        return raw('J', value & 0xff, (value >>> 8) & 0xff, (value >>> 16) & 0xff, value >>> 24);
    }

    /** LONG1 with 8 little-endian bytes: any 64-bit value, as pickle writes ints beyond 32 bits. */
    PickleBytes longInteger(long value) {
        raw(0x8a, 8);
        for (int i = 0; i < 8; i++) bytes.write((int) (value >>> (8 * i)));
        return this;
    }

    PickleBytes mark() { return raw('('); }
    PickleBytes tuple() { return raw('t'); }
    PickleBytes tuple1() { return raw(0x85); }
    PickleBytes emptyTuple() { return raw(')'); }
    PickleBytes emptyDict() { return raw('}'); }
    PickleBytes emptyList() { return raw(']'); }
    PickleBytes append() { return raw('a'); }
    PickleBytes reduce() { return raw('R'); }
    PickleBytes setItem() { return raw('s'); }
    PickleBytes persistentId() { return raw('Q'); }
    PickleBytes newFalse() { return raw(0x89); }
    PickleBytes stop() { return raw('.'); }

    /** _rebuild_tensor_v2(('storage', FloatStorage, key, 'cpu', numel), offset, shape, stride, False, OrderedDict()). */
    PickleBytes floatTensor(String key, int numel, int offset, int[] shape, int[] stride) {
        return floatTensor(key, (long) numel, offset, java.util.Arrays.stream(shape).asLongStream().toArray(),
                java.util.Arrays.stream(stride).asLongStream().toArray());
    }

    /** The same with 64-bit element count, sizes and strides. */
    PickleBytes floatTensor(String key, long numel, long offset, long[] shape, long[] stride) {
        global("torch._utils", "_rebuild_tensor_v2").mark();
        mark().text("storage").global("torch", "FloatStorage").text(key).text("cpu").longInteger(numel).tuple().persistentId();
        longInteger(offset);
        mark();
        for (long size : shape) longInteger(size);
        tuple().mark();
        for (long step : stride) longInteger(step);
        tuple().newFalse().global("collections", "OrderedDict").emptyTuple().reduce();
        return tuple().reduce();
    }

    byte[] toByteArray() {
        return bytes.toByteArray();
    }

    /** A torch-layout zip: {@code archive/data.pkl} plus the given {@code archive/data/<key>} records, all STORED. */
    static Path torchZip(Path file, byte[] pickle, Map<String, byte[]> storages) throws IOException {
        Map<String, byte[]> entries = new LinkedHashMap<>();
        entries.put("archive/data.pkl", pickle);
        entries.put("archive/byteorder", "little".getBytes(StandardCharsets.US_ASCII));
        storages.forEach((key, data) -> entries.put("archive/data/" + key, data));
        return writeZip(file, entries, ZipEntry.STORED);
    }

    static Path writeZip(Path file, Map<String, byte[]> entries, int method) throws IOException {
        try (OutputStream out = Files.newOutputStream(file); ZipOutputStream zip = new ZipOutputStream(out)) {
            for (Map.Entry<String, byte[]> entry : entries.entrySet()) {
                ZipEntry zipEntry = new ZipEntry(entry.getKey());
                zipEntry.setMethod(method);
                if (method == ZipEntry.STORED) {
                    CRC32 crc = new CRC32();
                    crc.update(entry.getValue());
                    zipEntry.setSize(entry.getValue().length);
                    zipEntry.setCompressedSize(entry.getValue().length);
                    zipEntry.setCrc(crc.getValue());
                }
                zip.putNextEntry(zipEntry);
                zip.write(entry.getValue());
                zip.closeEntry();
            }
        }
        return file;
    }
}
