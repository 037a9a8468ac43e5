package xllm.hub;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.util.zip.GZIPOutputStream;

/** Writes small tar archives for tests, in the three ways tools spell long names. */
final class TarWriter {

    /** How a name longer than 100 bytes is written. */
    enum LongNames { USTAR_PREFIX, GNU, PAX }

    private final ByteArrayOutputStream tar = new ByteArrayOutputStream();
    private final LongNames longNames;

    TarWriter(LongNames longNames) {
        this.longNames = longNames;
    }

    TarWriter directory(String name) {
        header(name.endsWith("/") ? name : name + "/", 0, '5');
        return this;
    }

    TarWriter file(String name, byte[] content) {
        if (name.length() > 100) {
            switch (longNames) {
                case GNU -> {
                    byte[] longName = (name + "\0").getBytes(StandardCharsets.UTF_8);
                    header("././@LongLink", longName.length, 'L');
                    data(longName);
                    header(name.substring(0, 100), content.length, '0');
                }
                case PAX -> {
                    byte[] record = paxRecord("path", name);
                    header("PaxHeaders/" + name.substring(name.lastIndexOf('/') + 1), record.length, 'x');
                    data(record);
                    header(name.substring(name.length() - 90), content.length, '0');
                }
                case USTAR_PREFIX -> header(name, content.length, '0');
            }
        } else {
            header(name, content.length, '0');
        }
        data(content);
        return this;
    }

    byte[] tarBytes() {
        ByteArrayOutputStream copy = new ByteArrayOutputStream();
        copy.writeBytes(tar.toByteArray());
        copy.writeBytes(new byte[1024]); // end-of-archive: two zero blocks
        return copy.toByteArray();
    }

    byte[] tarGzBytes() throws IOException {
        ByteArrayOutputStream gz = new ByteArrayOutputStream();
        try (OutputStream out = new GZIPOutputStream(gz)) {
            out.write(tarBytes());
        }
        return gz.toByteArray();
    }

    private void header(String name, long size, char type) {
        byte[] h = new byte[512];
        String prefix = "";
        if (name.length() > 100 && longNames == LongNames.USTAR_PREFIX) {
            int split = name.lastIndexOf('/', 155);
            prefix = name.substring(0, split);
            name = name.substring(split + 1);
        }
        put(h, 0, name, 100);
        put(h, 100, "0000644", 8);
        put(h, 108, "0000000", 8);
        put(h, 116, "0000000", 8);
        put(h, 124, String.format("%011o", size), 12);
        put(h, 136, String.format("%011o", 1_700_000_000L), 12);
        h[156] = (byte) type;
        if (longNames == LongNames.GNU) {
            put(h, 257, "ustar  ", 8); // GNU magic+version: "ustar  \0"
        } else {
            put(h, 257, "ustar", 6);
            put(h, 263, "00", 2);
            put(h, 345, prefix, 155);
        }
        for (int i = 148; i < 156; i++) h[i] = ' ';
        long sum = 0;
        for (byte b : h) sum += b & 0xff;
        put(h, 148, String.format("%06o", sum), 7);
        tar.writeBytes(h);
    }

    private void data(byte[] content) {
        tar.writeBytes(content);
        int pad = (512 - content.length % 512) % 512;
        tar.writeBytes(new byte[pad]);
    }

    private static void put(byte[] header, int offset, String value, int length) {
        byte[] bytes = value.getBytes(StandardCharsets.UTF_8);
        System.arraycopy(bytes, 0, header, offset, Math.min(bytes.length, length));
    }

    private static byte[] paxRecord(String key, String value) {
        String body = " " + key + "=" + value + "\n";
        int length = body.length();
        while (Integer.toString(length).length() + body.length() != length) length = Integer.toString(length).length() + body.length();
        return (length + body).getBytes(StandardCharsets.UTF_8);
    }
}
