package xllm.vision;

import org.jcodec.codecs.h264.H264Encoder;
import org.jcodec.codecs.h264.encode.RateControl;
import org.jcodec.codecs.h264.io.model.SliceType;
import org.jcodec.common.Codec;
import org.jcodec.common.MuxerTrack;
import org.jcodec.common.VideoCodecMeta;
import org.jcodec.common.VideoEncoder;
import org.jcodec.common.model.ColorSpace;
import org.jcodec.common.model.Packet;
import org.jcodec.common.model.Picture;
import org.jcodec.common.model.Size;
import org.jcodec.containers.mp4.muxer.MP4Muxer;

import javax.imageio.IIOImage;
import javax.imageio.ImageIO;
import javax.imageio.ImageWriteParam;
import javax.imageio.ImageWriter;
import javax.imageio.stream.MemoryCacheImageOutputStream;
import java.awt.image.BufferedImage;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/**
 * Encodes RGB frames into the two formats {@link VideoReader} decodes, for synthetic data and tests:
 * <ul>
 *   <li>{@link #mp4}: H.264 (JCodec's baseline encoder: I and P frames, CAVLC, fixed QP) in MP4. Frames are
 *       converted to limited-range BT.601 YUV 4:2:0 — what a decoder assumes for a stream without colour
 *       information — so colours read back within ~5 levels at the default QP (measured in {@code VideoReaderTest}).</li>
 *   <li>{@link #mjpegAvi}: Motion JPEG (one baseline JPEG per frame, JDK encoder) in a minimal AVI 1.0 file written
 *       here (JCodec has no AVI muxer): RIFF 'AVI ', hdrl (avih, strl with strh + strf BITMAPINFOHEADER), movi with
 *       one {@code 00dc} chunk per frame, and an {@code idx1} index with key-frame flags.</li>
 * </ul>
 * Both return the file bytes and are deterministic: the same frames give the same bytes (the MP4 creation and
 * modification times, which JCodec sets to the clock, are zeroed).
 */
public final class VideoWriter {

    /** Default H.264 quantiser: ~2.4 KB per 224² frame of a synthetic clip, colours within ~5 levels (QP 24: ~4-7). */
    public static final int DEFAULT_QP = 20;

    private VideoWriter() {
    }

    /**
     * H.264 in MP4 at {@code fps} frames per second, a key frame (IDR) every {@code keyInterval} frames.
     * Width and height must be even (4:2:0 chroma).
     */
    public static byte[] mp4(List<BufferedImage> frames, int fps, int keyInterval, int qp) throws IOException {
        checkFrames(frames, fps);
        if (keyInterval < 1) throw new IllegalArgumentException("keyInterval must be >= 1, got " + keyInterval);
        if (qp < 0 || qp > 51) throw new IllegalArgumentException("qp must be in 0..51, got " + qp);
        int width = frames.get(0).getWidth();
        int height = frames.get(0).getHeight();
        if (width % 2 != 0 || height % 2 != 0) {
            throw new IllegalArgumentException("H.264 4:2:0 needs even frame sizes, got " + width + "x" + height);
        }
        GrowingChannel channel = new GrowingChannel();
        MP4Muxer muxer = MP4Muxer.createMP4MuxerToChannel(channel);
        H264Encoder encoder = new H264Encoder(new ConstantQp(qp));
        encoder.setKeyInterval(keyInterval);
        MuxerTrack track = muxer.addVideoTrack(Codec.H264,
                VideoCodecMeta.createSimpleVideoCodecMeta(new Size(width, height), ColorSpace.YUV420));
        ByteBuffer encoded = ByteBuffer.allocate(Math.max(1 << 16, width * height * 3));
        for (int i = 0; i < frames.size(); i++) {
            Picture yuv = limitedRangeYuv420(frames.get(i));
            encoded.clear();
            VideoEncoder.EncodedFrame frame = encoder.encodeFrame(yuv, encoded);
            ByteBuffer data = ByteBuffer.allocate(frame.getData().remaining()).put(frame.getData()).flip();
            track.addFrame(Packet.createPacket(data, i, fps, 1, i,
                    frame.isKeyFrame() ? Packet.FrameType.KEY : Packet.FrameType.INTER, null));
        }
        muxer.finish();
        byte[] bytes = channel.toByteArray();
        zeroMp4Times(bytes);
        return bytes;
    }

    /** Motion JPEG in AVI at {@code fps}; {@code quality} in (0, 1] is the JPEG quality of the JDK encoder. */
    public static byte[] mjpegAvi(List<BufferedImage> frames, int fps, float quality) throws IOException {
        checkFrames(frames, fps);
        if (!(quality > 0 && quality <= 1)) throw new IllegalArgumentException("quality must be in (0, 1]: " + quality);
        int width = frames.get(0).getWidth();
        int height = frames.get(0).getHeight();
        List<byte[]> jpegs = new ArrayList<>(frames.size());
        int maxFrame = 0;
        for (BufferedImage frame : frames) {
            byte[] jpeg = jpeg(frame, quality);
            jpegs.add(jpeg);
            maxFrame = Math.max(maxFrame, jpeg.length);
        }
        int n = frames.size();
        // step 1: the movi list, remembering each chunk's offset from the 'movi' fourcc (idx1 convention)
        ByteArrayOutputStream movi = new ByteArrayOutputStream();
        movi.writeBytes(ascii("movi"));
        int[] chunkOffsets = new int[n];
        for (int i = 0; i < n; i++) {
            chunkOffsets[i] = movi.size();
            byte[] jpeg = jpegs.get(i);
            movi.writeBytes(ascii("00dc"));
            movi.writeBytes(leInt(jpeg.length));
            movi.writeBytes(jpeg);
            if (jpeg.length % 2 == 1) movi.write(0); // chunks are word-aligned
        }
        // step 2: headers
        int microsPerFrame = Math.round(1_000_000f / fps);
        ByteBuffer avih = le(56).putInt(microsPerFrame).putInt(maxFrame * fps).putInt(0)
                .putInt(0x10)                   // AVIF_HASINDEX
                .putInt(n).putInt(0).putInt(1)  // total frames, initial frames, streams
                .putInt(maxFrame).putInt(width).putInt(height).putInt(0).putInt(0).putInt(0).putInt(0);
        ByteBuffer strh = le(56).put(ascii("vids")).put(ascii("MJPG")).putInt(0).putShort((short) 0)
                .putShort((short) 0).putInt(0)
                .putInt(1).putInt(fps)          // scale, rate: fps = rate / scale
                .putInt(0).putInt(n).putInt(maxFrame).putInt(-1).putInt(0)
                .putShort((short) 0).putShort((short) 0).putShort((short) width).putShort((short) height);
        ByteBuffer strf = le(40).putInt(40).putInt(width).putInt(height).putShort((short) 1).putShort((short) 24)
                .put(ascii("MJPG")).putInt(width * height * 3).putInt(0).putInt(0).putInt(0).putInt(0);
        byte[] strl = list("strl", chunk("strh", strh.array()), chunk("strf", strf.array()));
        byte[] hdrl = list("hdrl", chunk("avih", avih.array()), strl);
        // step 3: idx1 — one entry per frame: id, flags (AVIIF_KEYFRAME), offset, size
        ByteBuffer idx1 = le(16 * n);
        for (int i = 0; i < n; i++) {
            idx1.put(ascii("00dc")).putInt(0x10).putInt(chunkOffsets[i]).putInt(jpegs.get(i).length);
        }
        byte[] moviList = listRaw(movi.toByteArray());
        byte[] idx1Chunk = chunk("idx1", idx1.array());
        ByteArrayOutputStream out = new ByteArrayOutputStream(12 + hdrl.length + moviList.length + idx1Chunk.length);
        out.writeBytes(ascii("RIFF"));
        out.writeBytes(leInt(4 + hdrl.length + moviList.length + idx1Chunk.length));
        out.writeBytes(ascii("AVI "));
        out.writeBytes(hdrl);
        out.writeBytes(moviList);
        out.writeBytes(idx1Chunk);
        return out.toByteArray();
    }

    private static void checkFrames(List<BufferedImage> frames, int fps) {
        if (frames.isEmpty()) throw new IllegalArgumentException("no frames to encode");
        if (fps < 1) throw new IllegalArgumentException("fps must be >= 1, got " + fps);
        int width = frames.get(0).getWidth();
        int height = frames.get(0).getHeight();
        for (BufferedImage frame : frames) {
            if (frame.getWidth() != width || frame.getHeight() != height) {
                throw new IllegalArgumentException("all frames must be " + width + "x" + height + ", got "
                        + frame.getWidth() + "x" + frame.getHeight());
            }
        }
    }

    /**
     * RGB → limited-range BT.601 YUV 4:2:0 (chroma = mean of each 2×2 block). Labelled YUV420J because that is the
     * only input JCodec's encoder accepts; the encoder does not look at the range, and the stream carries no range
     * flag, so decoders read it as limited range.
     */
    static Picture limitedRangeYuv420(BufferedImage image) {
        int width = image.getWidth();
        int height = image.getHeight();
        int[] rgb = image.getRGB(0, 0, width, height, null, 0, width);
        byte[] luma = new byte[width * height];
        byte[] cb = new byte[width * height / 4];
        byte[] cr = new byte[width * height / 4];
        for (int y = 0; y < height; y += 2) {
            for (int x = 0; x < width; x += 2) {
                double sumU = 0;
                double sumV = 0;
                for (int dy = 0; dy < 2; dy++) {
                    for (int dx = 0; dx < 2; dx++) {
                        int p = rgb[(y + dy) * width + x + dx];
                        double r = (p >> 16) & 0xFF;
                        double g = (p >> 8) & 0xFF;
                        double b = p & 0xFF;
                        double yy = 16 + 0.256788 * r + 0.504129 * g + 0.097906 * b;
                        luma[(y + dy) * width + x + dx] = (byte) (clamp(yy) - 128); // JCodec: signed, value − 128
                        sumU += -0.148223 * r - 0.290993 * g + 0.439216 * b;
                        sumV += 0.439216 * r - 0.367788 * g - 0.071427 * b;
                    }
                }
                int c = (y / 2) * (width / 2) + x / 2;
                cb[c] = (byte) (clamp(128 + sumU / 4) - 128);
                cr[c] = (byte) (clamp(128 + sumV / 4) - 128);
            }
        }
        return Picture.createPicture(width, height, new byte[][]{luma, cb, cr}, ColorSpace.YUV420J);
    }

    private static int clamp(double value) {
        return (int) Math.max(0, Math.min(255, Math.round(value)));
    }

    private static byte[] jpeg(BufferedImage frame, float quality) throws IOException {
        BufferedImage rgb = frame;
        if (frame.getType() != BufferedImage.TYPE_INT_RGB) {
            rgb = new BufferedImage(frame.getWidth(), frame.getHeight(), BufferedImage.TYPE_INT_RGB);
            rgb.getGraphics().drawImage(frame, 0, 0, null);
        }
        ImageWriter writer = ImageIO.getImageWritersByFormatName("jpeg").next();
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        try (MemoryCacheImageOutputStream output = new MemoryCacheImageOutputStream(bytes)) {
            writer.setOutput(output);
            ImageWriteParam param = writer.getDefaultWriteParam();
            param.setCompressionMode(ImageWriteParam.MODE_EXPLICIT);
            param.setCompressionQuality(quality);
            writer.write(null, new IIOImage(rgb, null, null), param);
        } finally {
            writer.dispose();
        }
        return bytes.toByteArray();
    }

    /** Zeroes creation/modification times of mvhd, tkhd and mdhd (version 0 or 1) so output is reproducible. */
    static void zeroMp4Times(byte[] mp4) {
        zeroTimes(ByteBuffer.wrap(mp4), 0, mp4.length);
    }

    private static void zeroTimes(ByteBuffer buffer, int from, int to) {
        for (int at = from; at + 8 <= to; ) {
            long size = buffer.getInt(at) & 0xFFFFFFFFL;
            String type = new String(mp4Type(buffer, at + 4), StandardCharsets.ISO_8859_1);
            int header = 8;
            if (size == 1) {
                size = buffer.getLong(at + 8);
                header = 16;
            } else if (size == 0) {
                size = to - at;
            }
            if (size < header || at + size > to) return;
            int end = (int) (at + size);
            switch (type) {
                case "moov", "trak", "mdia" -> zeroTimes(buffer, at + header, end);
                case "mvhd", "tkhd", "mdhd" -> {
                    int version = buffer.get(at + header) & 0xFF;
                    int times = version == 1 ? 16 : 8;
                    for (int k = 0; k < times; k++) buffer.put(at + header + 4 + k, (byte) 0);
                }
                default -> { }
            }
            at = end;
        }
    }

    private static byte[] mp4Type(ByteBuffer buffer, int at) {
        byte[] type = new byte[4];
        buffer.get(at, type);
        return type;
    }

    private static ByteBuffer le(int capacity) {
        return ByteBuffer.allocate(capacity).order(ByteOrder.LITTLE_ENDIAN);
    }

    private static byte[] leInt(int value) {
        return le(4).putInt(value).array();
    }

    private static byte[] ascii(String s) {
        return s.getBytes(StandardCharsets.US_ASCII);
    }

    private static byte[] chunk(String id, byte[] data) {
        ByteArrayOutputStream out = new ByteArrayOutputStream(8 + data.length + 1);
        out.writeBytes(ascii(id));
        out.writeBytes(leInt(data.length));
        out.writeBytes(data);
        if (data.length % 2 == 1) out.write(0);
        return out.toByteArray();
    }

    private static byte[] list(String type, byte[]... children) {
        ByteArrayOutputStream body = new ByteArrayOutputStream();
        body.writeBytes(ascii(type));
        for (byte[] child : children) body.writeBytes(child);
        return listRaw(body.toByteArray());
    }

    /** LIST chunk around a body that already starts with its list type. */
    private static byte[] listRaw(byte[] body) {
        return chunk("LIST", body);
    }

    /**
     * Every macroblock at one quantiser. (JCodec's {@code H264FixedRateControl} takes a bit budget per macroblock,
     * not a QP, and starts from QP 26.)
     */
    private record ConstantQp(int qp) implements RateControl {
        @Override
        public int startPicture(Size size, int maxSize, SliceType sliceType) {
            return qp;
        }

        @Override
        public int initialQpDelta() {
            return 0;
        }

        @Override
        public int accept(int bits) {
            return 0;
        }
    }

    /** An in-memory seekable channel that grows (the MP4 muxer seeks back to patch box sizes). */
    private static final class GrowingChannel implements org.jcodec.common.io.SeekableByteChannel {
        private byte[] bytes = new byte[1 << 16];
        private int position;
        private int size;

        @Override
        public int write(ByteBuffer source) {
            int length = source.remaining();
            if (position + length > bytes.length) {
                bytes = java.util.Arrays.copyOf(bytes, Math.max(2 * bytes.length, position + length));
            }
            source.get(bytes, position, length);
            position += length;
            size = Math.max(size, position);
            return length;
        }

        @Override
        public int read(ByteBuffer destination) {
            int length = Math.min(destination.remaining(), size - position);
            if (length <= 0) return -1;
            destination.put(bytes, position, length);
            position += length;
            return length;
        }

        @Override
        public long position() {
            return position;
        }

        @Override
        public org.jcodec.common.io.SeekableByteChannel setPosition(long newPosition) {
            position = Math.toIntExact(newPosition);
            return this;
        }

        @Override
        public long size() {
            return size;
        }

        @Override
        public org.jcodec.common.io.SeekableByteChannel truncate(long newSize) {
            size = Math.min(size, Math.toIntExact(newSize));
            position = Math.min(position, size);
            return this;
        }

        @Override
        public boolean isOpen() {
            return true;
        }

        @Override
        public void close() {
        }

        byte[] toByteArray() {
            return java.util.Arrays.copyOf(bytes, size);
        }
    }
}
