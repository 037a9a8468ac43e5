package xllm.tensor.pickle;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.zip.DataFormatException;
import java.util.zip.Inflater;

/**
 * The central directory of a zip archive (PKWARE APPNOTE 6.3, including the zip64 records), read straight from the
 * file so that STORED entries, which is how {@code torch.save} writes every record, can be memory-mapped in place
 * instead of being copied through an InputStream. DEFLATED entries (an archive re-zipped by hand) are inflated into
 * a heap buffer. Tested through {@code TorchCheckpointTest} on archives written by torch and by java.util.zip.
 */
final class ZipDirectory {

    /** One central-directory record; sizes and offset already widened from their zip64 extra field. */
    record Entry(String name, int flags, int method, long compressedSize, long size, long localHeaderOffset) {}

    private static final int END_OF_DIRECTORY = 0x06054b50;
    private static final int ZIP64_END_LOCATOR = 0x07064b50;
    private static final int ZIP64_END_OF_DIRECTORY = 0x06064b50;
    private static final int DIRECTORY_ENTRY = 0x02014b50;
    private static final int LOCAL_HEADER = 0x04034b50;
    private static final int STORED = 0, DEFLATED = 8;
    /** Entries below this size are read into the heap: a mapping per tiny storage would waste address-space maps. */
    private static final long MAP_THRESHOLD = 1 << 20;
    /** Most bytes one compressed byte of a DEFLATE stream can inflate to. */
    private static final long MAX_DEFLATE_RATIO = 1032;
    /** First size of the inflate buffer, which then doubles as data arrives. */
    private static final int INITIAL_INFLATE_BUFFER = 1 << 20;
    /** Largest heap buffer a Java array can back. */
    private static final long MAX_HEAP_BUFFER = Integer.MAX_VALUE - 8;

    private final String source;
    private final FileChannel channel;
    private final long fileSize;
    private final Map<String, Entry> entries;

    private ZipDirectory(String source, FileChannel channel, long fileSize, Map<String, Entry> entries) {
        this.source = source;
        this.channel = channel;
        this.fileSize = fileSize;
        this.entries = entries;
    }

    /** Reads the directory; {@code channel} must stay open while {@link #contents} is used. */
    static ZipDirectory read(Path file, FileChannel channel) throws IOException {
        String source = file.toString();
        long fileSize = channel.size();

        // step 1: the end-of-central-directory record sits in the last 22 + (comment ≤ 65535) bytes
        int tailLength = (int) Math.min(fileSize, 22 + 0xffff);
        ByteBuffer tail = readAt(channel, source, fileSize - tailLength, tailLength);
        int end = -1;
        for (int at = tailLength - 22; at >= 0; at--) {
            if (tail.getInt(at) == END_OF_DIRECTORY && at + 22 + (tail.getShort(at + 20) & 0xffff) == tailLength) {
                end = at;
                break;
            }
        }
        if (end < 0) throw new IOException(source + ": not a valid zip archive (no end-of-central-directory record)");
        long entryCount = tail.getShort(end + 10) & 0xffff;
        long directorySize = tail.getInt(end + 12) & 0xffffffffL;
        long directoryOffset = tail.getInt(end + 16) & 0xffffffffL;

        // step 2: zip64 archives (torch writes them past 4 GiB) keep the real numbers in a second record
        long endPosition = fileSize - tailLength + end;
        if ((entryCount == 0xffff || directorySize == 0xffffffffL || directoryOffset == 0xffffffffL) && endPosition >= 20) {
            ByteBuffer locator = readAt(channel, source, endPosition - 20, 20);
            if (locator.getInt(0) == ZIP64_END_LOCATOR) {
                ByteBuffer zip64End = readAt(channel, source, locator.getLong(8), 56);
                if (zip64End.getInt(0) != ZIP64_END_OF_DIRECTORY) {
                    throw new IOException(source + ": corrupt zip64 end-of-central-directory record");
                }
                entryCount = zip64End.getLong(32);
                directorySize = zip64End.getLong(40);
                directoryOffset = zip64End.getLong(48);
            }
        }
        if (directoryOffset < 0 || directorySize < 0 || directorySize > Integer.MAX_VALUE
                || directoryOffset + directorySize > fileSize) {
            throw new IOException(source + ": corrupt zip central directory (offset " + directoryOffset
                    + ", size " + directorySize + ", file " + fileSize + " bytes)");
        }

        // step 3: one record per entry
        ByteBuffer directory = readAt(channel, source, directoryOffset, (int) directorySize);
        Map<String, Entry> entries = new LinkedHashMap<>();
        int at = 0;
        for (long index = 0; index < entryCount; index++) {
            if (at + 46 > directory.limit() || directory.getInt(at) != DIRECTORY_ENTRY) {
                throw new IOException(source + ": corrupt zip central directory at entry " + index);
            }
            int flags = directory.getShort(at + 8) & 0xffff;
            int method = directory.getShort(at + 10) & 0xffff;
            long compressedSize = directory.getInt(at + 20) & 0xffffffffL;
            long size = directory.getInt(at + 24) & 0xffffffffL;
            int nameLength = directory.getShort(at + 28) & 0xffff;
            int extraLength = directory.getShort(at + 30) & 0xffff;
            int commentLength = directory.getShort(at + 32) & 0xffff;
            long localHeaderOffset = directory.getInt(at + 42) & 0xffffffffL;
            if (at + 46L + nameLength + extraLength + commentLength > directory.limit()) {
                throw new IOException(source + ": corrupt zip central directory at entry " + index);
            }
            byte[] nameBytes = new byte[nameLength];
            directory.get(at + 46, nameBytes);
            String name = new String(nameBytes, StandardCharsets.UTF_8);

            // zip64 extra field: only the fields saturated at 0xffffffff are present, in this order
            int extra = at + 46 + nameLength;
            int extraEnd = extra + extraLength;
            while (extra + 4 <= extraEnd) {
                int id = directory.getShort(extra) & 0xffff;
                int length = directory.getShort(extra + 2) & 0xffff;
                if (id == 0x0001) {
                    int field = extra + 4;
                    int fieldEnd = Math.min(field + length, extraEnd);
                    if (size == 0xffffffffL && field + 8 <= fieldEnd) { size = directory.getLong(field); field += 8; }
                    if (compressedSize == 0xffffffffL && field + 8 <= fieldEnd) { compressedSize = directory.getLong(field); field += 8; }
                    if (localHeaderOffset == 0xffffffffL && field + 8 <= fieldEnd) { localHeaderOffset = directory.getLong(field); }
                }
                extra += 4 + length;
            }
            // zip64 fields are unsigned 64-bit: beyond 2^63-1 they read negative here, and no part of an entry
            // can lie outside the file.
            if (size < 0 || compressedSize < 0 || compressedSize > fileSize || localHeaderOffset < 0
                    || localHeaderOffset >= fileSize) {
                throw new IOException(source + " (entry " + name + "): declares size " + Long.toUnsignedString(size)
                        + ", compressed size " + Long.toUnsignedString(compressedSize) + " at offset "
                        + Long.toUnsignedString(localHeaderOffset) + ", which the file of " + fileSize
                        + " bytes cannot hold");
            }
            entries.put(name, new Entry(name, flags, method, compressedSize, size, localHeaderOffset));
            at += 46 + nameLength + extraLength + commentLength;
        }
        return new ZipDirectory(source, channel, fileSize, Collections.unmodifiableMap(entries));
    }

    Map<String, Entry> entries() {
        return entries;
    }

    /** The entry's uncompressed bytes, little-endian: mapped from the file when STORED and large. */
    ByteBuffer contents(Entry entry) throws IOException {
        String where = source + " (entry " + entry.name() + ")";
        if ((entry.flags() & 1) != 0) throw new IOException(where + ": encrypted zip entries are not supported");
        if (entry.size() > Integer.MAX_VALUE) {
            throw new IOException(where + ": entry of " + entry.size() + " bytes exceeds the 2 GiB a tensor buffer holds");
        }
        ByteBuffer header = readAt(channel, where, entry.localHeaderOffset(), 30);
        if (header.getInt(0) != LOCAL_HEADER) throw new IOException(where + ": corrupt zip local header");
        // The local extra field differs from the central one: torch pads it so that data starts 64-byte aligned.
        long dataStart = entry.localHeaderOffset() + 30 + (header.getShort(26) & 0xffff) + (header.getShort(28) & 0xffff);
        if (dataStart + entry.compressedSize() > fileSize) {
            throw new IOException(where + ": entry data runs past the end of the file (truncated archive?)");
        }
        switch (entry.method()) {
            case STORED -> {
                if (entry.compressedSize() != entry.size()) throw new IOException(where + ": STORED entry with differing sizes");
                if (entry.size() < MAP_THRESHOLD) return readAt(channel, where, dataStart, (int) entry.size());
                return channel.map(FileChannel.MapMode.READ_ONLY, dataStart, entry.size()).order(ByteOrder.LITTLE_ENDIAN);
            }
            case DEFLATED -> {
                if (entry.compressedSize() > Integer.MAX_VALUE) throw new IOException(where + ": compressed entry over 2 GiB");
                // Checked before anything is allocated: DEFLATE cannot expand its input more than 1032-fold (a
                // 258-byte match costs at least 2 bits), so a larger declared size is a lie, not data.
                long mostInflated = entry.compressedSize() * MAX_DEFLATE_RATIO;
                if (entry.size() > mostInflated) {
                    throw new IOException(where + ": declares " + entry.size() + " inflated bytes, but its "
                            + entry.compressedSize() + " compressed bytes inflate to at most " + mostInflated);
                }
                ByteBuffer compressed = readAt(channel, where, dataStart, (int) entry.compressedSize());
                return inflate(compressed, entry.size(), where);
            }
            default -> throw new IOException(where + ": zip compression method " + entry.method() + " not supported");
        }
    }

    /**
     * Inflates into a buffer that grows with the data actually produced (never past the declared size plus one
     * spare byte, so that data longer than declared shows up instead of being cut silently).
     */
    private static ByteBuffer inflate(ByteBuffer compressed, long declaredSize, String where) throws IOException {
        long limit = declaredSize + 1;
        ByteBuffer inflated = ByteBuffer.allocate((int) Math.min(limit, INITIAL_INFLATE_BUFFER));
        Inflater inflater = new Inflater(true);
        try {
            inflater.setInput(compressed);
            while (!inflater.finished()) {
                if (!inflated.hasRemaining()) {
                    if (inflated.capacity() >= Math.min(limit, MAX_HEAP_BUFFER)) break;
                    ByteBuffer larger = ByteBuffer.allocate((int) Math.min(Math.min(limit, 2L * inflated.capacity()),
                            MAX_HEAP_BUFFER));
                    inflated = larger.put(inflated.flip());
                }
                if (inflater.inflate(inflated) == 0 && (inflater.needsInput() || inflater.needsDictionary())) break;
            }
            if (!inflater.finished() || inflated.position() != declaredSize) {
                throw new IOException(where + ": deflated data does not match its declared size " + declaredSize);
            }
        } catch (DataFormatException e) {
            throw new IOException(where + ": corrupt deflated data: " + e.getMessage(), e);
        } finally {
            inflater.end();
        }
        return inflated.flip().order(ByteOrder.LITTLE_ENDIAN);
    }

    /** Reads exactly {@code length} bytes at {@code position} into a little-endian heap buffer. */
    static ByteBuffer readAt(FileChannel channel, String where, long position, int length) throws IOException {
        if (position < 0 || position + length > channel.size()) {
            throw new IOException(where + ": needs bytes " + position + ".." + (position + length)
                    + " but the file has " + channel.size() + " (truncated?)");
        }
        ByteBuffer buffer = ByteBuffer.allocate(length).order(ByteOrder.LITTLE_ENDIAN);
        while (buffer.hasRemaining()) {
            if (channel.read(buffer, position + buffer.position()) < 0) throw new IOException(where + ": unexpected end of file");
        }
        return buffer.flip();
    }
}
