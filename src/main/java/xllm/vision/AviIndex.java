package xllm.vision;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Set;

/**
 * The video stream of an AVI file (RIFF, Microsoft's "AVI RIFF File Reference"): fourcc, size and rate from
 * {@code hdrl/strl/strh+strf}, and the file offset and size of every frame chunk ({@code NNdc} / {@code NNdb}) from
 * the legacy {@code idx1} index, or from a walk over the {@code movi} chunk headers when the file has none (data is
 * skipped, not read). Offsets in {@code idx1} may be relative to the {@code movi} list or absolute; both are
 * accepted. OpenDML ({@code indx}) files over 1 GB without {@code idx1} are read through the {@code movi} walk of
 * the first RIFF segment only. Failures name the file: not RIFF/AVI, no video stream, chunks past the end of file
 * (truncated), inconsistent headers.
 *
 * @param offsets file offset of each frame's data (display order)
 * @param sizes   byte size of each frame's data; 0 marks a dropped frame (repeat the previous one)
 */
record AviIndex(String codec, int width, int height, double fps, long[] offsets, int[] sizes) {

    /** Motion JPEG fourccs (biCompression), compared upper-case. */
    static final Set<String> MJPEG_FOURCCS = Set.of("MJPG", "AVRN", "JPEG", "MJPA", "AVDJ", "DMB1");
    /** MPEG-4 Part 2 fourccs, named in the "unsupported codec" error. */
    static final Set<String> MPEG4_FOURCCS = Set.of("XVID", "DIVX", "DX50", "FMP4", "MP4V", "M4S2", "3IV2");

    private static final int AVIIF_LIST = 0x1;

    int frameCount() {
        return offsets.length;
    }

    static AviIndex read(Path file) throws IOException {
        try (FileChannel channel = FileChannel.open(file)) {
            long fileSize = channel.size();
            ByteBuffer riff = readAt(channel, 0, 12, file);
            if (!fourcc(riff, 0).equals("RIFF") || !fourcc(riff, 8).equals("AVI ")) {
                throw new IOException(file + ": not an AVI file (no RIFF 'AVI ' header)");
            }
            long riffEnd = Math.min(fileSize, 8 + (riff.getInt(4) & 0xFFFFFFFFL));

            Header header = null;
            long moviData = -1; // offset of the 'movi' fourcc: idx1 offsets are relative to it
            long moviEnd = -1;
            long idx1 = -1;
            int idx1Size = 0;
            for (long at = 12; at + 8 <= riffEnd; ) {
                ByteBuffer chunk = readAt(channel, at, 12, file, fileSize);
                String id = fourcc(chunk, 0);
                long size = chunk.getInt(4) & 0xFFFFFFFFL;
                if (id.equals("LIST") && chunk.remaining() >= 12) {
                    String type = fourcc(chunk, 8);
                    if (type.equals("hdrl")) {
                        if (size > 1 << 20) throw new IOException(file + ": corrupt AVI: 'hdrl' list of " + size + " bytes");
                        header = parseHeaderList(readAt(channel, at + 12, (int) size - 4, file, fileSize), file);
                    } else if (type.equals("movi")) {
                        moviData = at + 8;
                        moviEnd = at + 8 + size;
                    }
                } else if (id.equals("idx1")) {
                    idx1 = at + 8;
                    idx1Size = (int) Math.min(size, Integer.MAX_VALUE);
                }
                at += 8 + size + (size & 1);
            }
            if (header == null) throw new IOException(file + ": corrupt AVI: no 'hdrl' header list");
            if (header.videoStream < 0) throw new IOException(file + ": no video track (no 'vids' stream in the AVI)");
            if (moviData < 0) throw new IOException(file + ": corrupt AVI: no 'movi' list (no frame data)");

            String dc = String.format("%02ddc", header.videoStream);
            String db = String.format("%02ddb", header.videoStream);
            long[] offsets;
            int[] sizes;
            if (idx1 >= 0) {
                if (idx1 + idx1Size > fileSize) throw new IOException(file + ": truncated AVI: the 'idx1' index is cut off");
                ByteBuffer entries = readAt(channel, idx1, idx1Size, file);
                int n = idx1Size / 16;
                offsets = new long[n];
                sizes = new int[n];
                int frames = 0;
                long base = -1;
                for (int i = 0; i < n; i++) {
                    String id = fourcc(entries, 16 * i);
                    if (!id.equals(dc) && !id.equals(db) || (entries.getInt(16 * i + 4) & AVIIF_LIST) != 0) continue;
                    long offset = entries.getInt(16 * i + 8) & 0xFFFFFFFFL;
                    if (base < 0) base = idx1Base(channel, offset, moviData, id, file, fileSize);
                    offsets[frames] = base + offset + 8;
                    sizes[frames] = entries.getInt(16 * i + 12);
                    frames++;
                }
                offsets = Arrays.copyOf(offsets, frames);
                sizes = Arrays.copyOf(sizes, frames);
            } else {
                long[][] scanned = scanMovi(channel, moviData + 4, Math.min(moviEnd, fileSize), dc, db, file);
                offsets = scanned[0];
                sizes = Arrays.stream(scanned[1]).mapToInt(s -> (int) s).toArray();
            }
            for (int i = 0; i < offsets.length; i++) {
                if (sizes[i] < 0 || offsets[i] + sizes[i] > fileSize) {
                    throw new IOException(file + ": truncated AVI: frame " + i + " of " + offsets.length
                            + " ends past the end of the file (" + fileSize + " bytes)");
                }
            }
            return new AviIndex(header.codec, header.width, header.height, header.fps, offsets, sizes);
        }
    }

    /** Stream header of the first video stream. */
    private record Header(int videoStream, String codec, int width, int height, double fps) {
    }

    /** Walks hdrl: avih, then one strl per stream (strh = stream header, strf = BITMAPINFOHEADER for video). */
    private static Header parseHeaderList(ByteBuffer list, Path file) throws IOException {
        int stream = 0;
        for (int at = 0; at + 8 <= list.limit(); ) {
            String id = fourcc(list, at);
            int size = list.getInt(at + 4);
            if (size < 0 || at + 8 + (long) size > list.limit()) throw new IOException(file + ": corrupt AVI header");
            if (id.equals("LIST") && fourcc(list, at + 8).equals("strl")) {
                ByteBuffer strl = list.slice(at + 12, size - 4).order(ByteOrder.LITTLE_ENDIAN);
                String type = null;
                String handler = null;
                double fps = 0;
                String compression = null;
                int width = 0;
                int height = 0;
                for (int p = 0; p + 8 <= strl.limit(); ) {
                    String sub = fourcc(strl, p);
                    int subSize = strl.getInt(p + 4);
                    if (subSize < 0 || p + 8 + (long) subSize > strl.limit()) {
                        throw new IOException(file + ": corrupt AVI stream header");
                    }
                    if (sub.equals("strh") && subSize >= 32) {
                        type = fourcc(strl, p + 8);
                        handler = fourcc(strl, p + 12);
                        int scale = strl.getInt(p + 8 + 20);
                        int rate = strl.getInt(p + 8 + 24);
                        fps = scale > 0 ? rate / (double) scale : 0;
                    } else if (sub.equals("strf") && subSize >= 20) {
                        width = strl.getInt(p + 8 + 4);
                        height = Math.abs(strl.getInt(p + 8 + 8)); // negative: top-down DIB
                        compression = fourcc(strl, p + 8 + 16);
                    }
                    p += 8 + subSize + (subSize & 1);
                }
                if ("vids".equals(type)) {
                    String codec = compression != null && !compression.isBlank() ? compression : handler;
                    if (!(fps > 0)) throw new IOException(file + ": corrupt AVI: video stream has no frame rate");
                    return new Header(stream, codec == null ? "?" : codec.trim(), width, height, fps);
                }
                stream++;
            }
            at += 8 + size + (size & 1);
        }
        return new Header(-1, null, 0, 0, 0);
    }

    /** idx1 offsets point at the chunk header, relative to the 'movi' fourcc or (some writers) to the file. */
    private static long idx1Base(FileChannel channel, long firstOffset, long moviData, String id, Path file,
                                 long fileSize) throws IOException {
        for (long base : new long[]{moviData, 0}) {
            if (base + firstOffset + 8 <= fileSize && fourcc(readAt(channel, base + firstOffset, 4, file), 0).equals(id)) {
                return base;
            }
        }
        throw new IOException(file + ": corrupt AVI: 'idx1' offsets do not point at frame chunks");
    }

    /** Frame chunks found by walking the movi list (including 'rec ' sub-lists), reading headers only. */
    private static long[][] scanMovi(FileChannel channel, long from, long to, String dc, String db, Path file)
            throws IOException {
        long[] offsets = new long[256];
        long[] sizes = new long[256];
        int n = 0;
        for (long at = from; at + 8 <= to; ) {
            ByteBuffer chunk = readAt(channel, at, 12, file, to);
            String id = fourcc(chunk, 0);
            long size = chunk.getInt(4) & 0xFFFFFFFFL;
            if (id.equals("LIST")) {
                at += 12; // descend into 'rec ' lists
                continue;
            }
            if (id.equals(dc) || id.equals(db)) {
                if (n == offsets.length) {
                    offsets = Arrays.copyOf(offsets, 2 * n);
                    sizes = Arrays.copyOf(sizes, 2 * n);
                }
                offsets[n] = at + 8;
                sizes[n] = size;
                n++;
            }
            at += 8 + size + (size & 1);
        }
        return new long[][]{Arrays.copyOf(offsets, n), Arrays.copyOf(sizes, n)};
    }

    private static ByteBuffer readAt(FileChannel channel, long at, int length, Path file) throws IOException {
        ByteBuffer buffer = ByteBuffer.allocate(length).order(ByteOrder.LITTLE_ENDIAN);
        while (buffer.hasRemaining()) {
            if (channel.read(buffer, at + buffer.position()) < 0) {
                throw new IOException(file + ": truncated AVI: " + length + " bytes expected at offset " + at);
            }
        }
        return buffer.flip();
    }

    /** Up to {@code length} bytes, fewer at the end of {@code limit}. */
    private static ByteBuffer readAt(FileChannel channel, long at, int length, Path file, long limit) throws IOException {
        return readAt(channel, at, (int) Math.max(8, Math.min(length, limit - at)), file);
    }

    private static String fourcc(ByteBuffer buffer, int at) {
        byte[] bytes = new byte[4];
        buffer.get(at, bytes);
        return new String(bytes, StandardCharsets.ISO_8859_1);
    }
}
