package xllm.hub;

import java.io.EOFException;
import java.io.FilterInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;

/**
 * Reads a tar stream entry by entry: POSIX ustar (with its 155-byte name prefix), pax extended headers
 * ({@code path}, {@code size}) and GNU long names ({@code ././@LongLink}, type 'L'); base-256 sizes as GNU writes
 * them for files over 8 GiB. Enough for the source archives pip downloads; links and devices are reported but
 * never followed. The caller wraps gzip around the stream.
 */
final class TarReader implements AutoCloseable {

    private static final int BLOCK = 512;

    /** One entry; {@code type} is the tar typeflag ('0' or NUL for a regular file, '5' for a directory). */
    record Entry(String name, long size, char type) {
        boolean isFile() {
            return type == '0' || type == '\0' || type == '7';
        }
    }

    private final InputStream in;
    private long remaining;       // unread content bytes of the current entry
    private long padding;         // zero bytes after the current entry's content, up to the next block

    TarReader(InputStream in) {
        this.in = in;
    }

    /** The next entry, or null at the end of the archive. Skips whatever of the previous entry was not read. */
    Entry next() throws IOException {
        skipFully(remaining + padding);
        remaining = 0;
        padding = 0;
        String longName = null;
        long paxSize = -1;
        while (true) {
            byte[] header = new byte[BLOCK];
            if (!readBlock(header)) return null;
            if (isZero(header)) return null; // end-of-archive marker (two zero blocks; one is enough to stop)
            checkChecksum(header);
            char type = (char) (header[156] & 0xff);
            long size = number(header, 124, 12);
            if (type == 'L' || type == 'x' || type == 'g' || type == 'K') {
                byte[] data = readData(size);
                if (type == 'L') {
                    longName = cString(data, 0, data.length);
                } else if (type == 'x') {
                    for (var field : pax(data).entrySet()) {
                        if (field.getKey().equals("path")) longName = field.getValue();
                        if (field.getKey().equals("size")) paxSize = Long.parseLong(field.getValue());
                    }
                } // 'g' (global pax) and 'K' (long link target) are not needed
                continue;
            }
            String name = cString(header, 0, 100);
            boolean posix = header[257] == 'u' && header[262] == 0; // "ustar\0"; GNU writes "ustar  \0" and no prefix
            if (posix) {
                String prefix = cString(header, 345, 155);
                if (!prefix.isEmpty()) name = prefix + "/" + name;
            }
            if (longName != null) name = longName;
            if (paxSize >= 0) size = paxSize;
            boolean hasContent = type != '5' && type != '1' && type != '2' && type != '3' && type != '4' && type != '6';
            remaining = hasContent ? size : 0;
            padding = (BLOCK - remaining % BLOCK) % BLOCK;
            return new Entry(name, remaining, type);
        }
    }

    /** The current entry's content; reading past it gives end-of-stream. Close is a no-op. */
    InputStream content() {
        return new FilterInputStream(in) {
            @Override
            public int read() throws IOException {
                if (remaining <= 0) return -1;
                int b = in.read();
                if (b < 0) throw new EOFException("tar archive truncated");
                remaining--;
                return b;
            }

            @Override
            public int read(byte[] buffer, int offset, int length) throws IOException {
                if (remaining <= 0) return -1;
                int n = in.read(buffer, offset, (int) Math.min(length, remaining));
                if (n < 0) throw new EOFException("tar archive truncated");
                remaining -= n;
                return n;
            }

            @Override
            public long skip(long n) {
                return 0;
            }

            @Override
            public void close() { }
        };
    }

    @Override
    public void close() throws IOException {
        in.close();
    }

    private byte[] readData(long size) throws IOException {
        if (size > 1 << 24) throw new IOException("tar extended header too large: " + size);
        byte[] data = new byte[(int) size];
        readFully(data);
        skipFully((BLOCK - size % BLOCK) % BLOCK);
        return data;
    }

    private boolean readBlock(byte[] block) throws IOException {
        int n = in.readNBytes(block, 0, BLOCK);
        if (n == 0) return false;
        if (n < BLOCK) throw new EOFException("tar archive truncated inside a header");
        return true;
    }

    private void readFully(byte[] data) throws IOException {
        if (in.readNBytes(data, 0, data.length) < data.length) throw new EOFException("tar archive truncated");
    }

    private void skipFully(long n) throws IOException {
        while (n > 0) {
            long skipped = in.skip(n);
            if (skipped <= 0) {
                if (in.read() < 0) throw new EOFException("tar archive truncated");
                skipped = 1;
            }
            n -= skipped;
        }
    }

    private static boolean isZero(byte[] block) {
        for (byte b : block) if (b != 0) return false;
        return true;
    }

    private static void checkChecksum(byte[] header) throws IOException {
        long stored = number(header, 148, 8);
        long sum = 0;
        for (int i = 0; i < BLOCK; i++) sum += (i >= 148 && i < 156) ? ' ' : (header[i] & 0xff);
        if (sum != stored) throw new IOException("not a tar archive (header checksum " + stored + " != " + sum + ")");
    }

    /** An octal field, or a base-256 one (high bit of the first byte set) as GNU tar writes for large values. */
    static long number(byte[] header, int offset, int length) throws IOException {
        if ((header[offset] & 0x80) != 0) {
            long value = header[offset] & 0x7f;
            for (int i = 1; i < length; i++) value = (value << 8) | (header[offset + i] & 0xff);
            return value;
        }
        String text = cString(header, offset, length).trim();
        if (text.isEmpty()) return 0;
        try {
            return Long.parseLong(text, 8);
        } catch (NumberFormatException e) {
            throw new IOException("not a tar archive (bad number field '" + text + "')");
        }
    }

    private static String cString(byte[] bytes, int offset, int length) {
        int end = offset;
        while (end < offset + length && bytes[end] != 0) end++;
        return new String(bytes, offset, end - offset, StandardCharsets.UTF_8);
    }

    /** Records "LEN key=value\n", LEN counting the whole record. */
    private static java.util.Map<String, String> pax(byte[] data) throws IOException {
        var fields = new java.util.LinkedHashMap<String, String>();
        int pos = 0;
        while (pos < data.length) {
            int space = pos;
            while (space < data.length && data[space] != ' ') space++;
            if (space == data.length) break;
            int length;
            try {
                length = Integer.parseInt(new String(data, pos, space - pos, StandardCharsets.US_ASCII));
            } catch (NumberFormatException e) {
                throw new IOException("bad pax header record");
            }
            if (length <= 0 || pos + length > data.length) throw new IOException("bad pax header record length");
            String record = new String(data, space + 1, pos + length - space - 2, StandardCharsets.UTF_8);
            int eq = record.indexOf('=');
            if (eq > 0) fields.put(record.substring(0, eq), record.substring(eq + 1));
            pos += length;
        }
        return fields;
    }
}
