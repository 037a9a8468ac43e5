package xllm.vision;

import org.jcodec.codecs.h264.H264Decoder;
import org.jcodec.codecs.mjpeg.JpegDecoder;
import org.jcodec.common.Codec;
import org.jcodec.common.DemuxerTrack;
import org.jcodec.common.DemuxerTrackMeta;
import org.jcodec.common.VideoDecoder;
import org.jcodec.common.io.NIOUtils;
import org.jcodec.common.io.SeekableByteChannel;
import org.jcodec.common.model.ColorSpace;
import org.jcodec.common.model.Packet;
import org.jcodec.common.model.Picture;
import org.jcodec.common.model.Size;
import org.jcodec.containers.mp4.boxes.CompositionOffsetsBox;
import org.jcodec.containers.mp4.boxes.SampleToChunkBox;
import org.jcodec.containers.mp4.boxes.TimeToSampleBox;
import org.jcodec.containers.mp4.boxes.TrakBox;
import org.jcodec.containers.mp4.demuxer.AbstractMP4DemuxerTrack;
import org.jcodec.containers.mp4.demuxer.MP4Demuxer;

import java.awt.image.BufferedImage;
import java.awt.image.DataBufferInt;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.stream.IntStream;

/**
 * Reads T frames of a video file as 8-bit RGB {@link BufferedImage}s ({@code TYPE_INT_RGB}), the video input of
 * X-LLM (DESIGN.md §3 Video: uniform sampling of T frames, each then goes through the image path).
 *
 * <p>Containers and codecs (all decoding by JCodec 0.2.5, pure Java):
 * <ul>
 *   <li>MP4 / MOV (ISO BMFF) with H.264 ({@code avc1}). Frame count, frame rate, duration and size come from the
 *       {@code moov} index; display order honours composition offsets ({@code ctts}), so B-frames are placed
 *       where they are shown.</li>
 *   <li>AVI with Motion JPEG ({@code MJPG}), parsed here ({@link AviIndex}: RIFF headers + {@code idx1}, or a scan of
 *       the {@code movi} chunk headers when there is no index).</li>
 * </ul>
 * Anything else is refused with "unsupported codec" naming the file and the fourcc. MPEG-4 Part 2 in AVI
 * ({@code XVID}, {@code DIVX}, {@code FMP4}, ...) is refused too: JCodec 0.2.5's {@code MPEG4Decoder} runs on
 * OpenCV's XVID sample {@code Megamind.avi} (Debian opencv-doc) but its pictures smear and drift within a GOP
 * (checked by eye on frames 20 and 60), and it returns nothing for packed B-frames; wrong pixels are worse than
 * a clear error. MS-MPEG-4 ({@code div3}), Cinepak ({@code cvid}) and others have no decoder in JCodec.
 *
 * <p>Sampling rule ({@link #sampleIndices}): of N frames in display order, frame i of T is
 * {@code floor((2i + 1) N / (2T))}, the middle frame of the i-th of T equal segments (TSN-style test-time
 * sampling). LAVIS's {@code load_video} "uniform" mode, behind BLIP-2-family video code, takes the first frame of
 * each segment, {@code floor(i N / T)}; the midpoint is half a segment later and never lands on the first or last
 * frame (fades, black leaders). Only the needed frames are
 * decoded: each target seeks to the closest preceding key frame (unless decoding forward from the previous target
 * is shorter) and decodes forward.
 *
 * <p>Failures are {@link IOException}s that name the file and the problem: empty file, not a video (with a hint
 * when it is a WAV or a PNG/JPEG renamed), corrupt or truncated data, no video track, fewer frames than
 * requested ("has 3 frames, 5 requested"), frame size above the pixel limit (checked on the header, before any
 * decoding), unsupported codec. Tested by {@code VideoReaderTest} on files written by {@link VideoWriter}.
 */
public final class VideoReader {

    /** Default pixel limit per frame: 4K UHD (3840 × 2160). */
    public static final long DEFAULT_MAX_PIXELS = 3840L * 2160L;

    /**
     * What the container says about the video stream. {@code codec} is the fourcc ("avc1", "MJPG"); for MP4
     * {@code fps} is frames / duration, the average rate of a variable-rate file.
     */
    public record VideoInfo(String container, String codec, int frameCount, double fps, int width, int height,
                            double durationSeconds) {
    }

    /** The sampled frames (display order) and which display-order frame indices they are. */
    public record VideoClip(Path file, VideoInfo info, int[] frameIndices, List<BufferedImage> frames) {
    }

    static {
        // JCodec logs to stdout, and its JPEG decoder warns "SOI not supported" on every MJPEG frame; stdout is
        // reserved for results (`xllm generate`). JCodec prints a message only when its level is above the global
        // one, so ERROR silences it; failures still surface as exceptions
        org.jcodec.common.logging.Logger.setLevel(org.jcodec.common.logging.LogLevel.ERROR);
    }

    private VideoReader() {
    }

    /** Frame i of T is the middle frame of the i-th of T equal segments: {@code floor((2i + 1) N / (2T))}. */
    public static int[] sampleIndices(int frameCount, int frames) {
        if (frames < 1) throw new IllegalArgumentException("frames must be >= 1, got " + frames);
        if (frameCount < frames) {
            throw new IllegalArgumentException("has " + frameCount + " frames, " + frames + " requested");
        }
        int[] indices = new int[frames];
        for (int i = 0; i < frames; i++) {
            indices[i] = (int) ((2L * i + 1) * frameCount / (2L * frames));
        }
        return indices;
    }

    /** Container metadata only; nothing is decoded. */
    public static VideoInfo probe(Path file) throws IOException {
        try (Source source = open(file, DEFAULT_MAX_PIXELS)) {
            return source.info();
        } catch (RuntimeException e) {
            throw new IOException(file + ": corrupt video: " + e, e);
        }
    }

    /** {@link #read(Path, int, long)} with the 4K pixel limit. */
    public static VideoClip read(Path file, int frames) throws IOException {
        return read(file, frames, DEFAULT_MAX_PIXELS);
    }

    /** Decodes the {@code frames} uniformly sampled frames (see {@link #sampleIndices}). */
    public static VideoClip read(Path file, int frames, long maxPixels) throws IOException {
        if (frames < 1) throw new IllegalArgumentException("frames must be >= 1, got " + frames);
        try (Source source = open(file, maxPixels)) {
            VideoInfo info = source.info();
            if (info.frameCount() < frames) {
                throw new IOException(file + ": has " + info.frameCount() + " frames, " + frames + " requested");
            }
            int[] indices = sampleIndices(info.frameCount(), frames);
            List<BufferedImage> images = new ArrayList<>(frames);
            for (int index : indices) {
                images.add(source.frame(index));
            }
            return new VideoClip(file, info, indices, List.copyOf(images));
        } catch (RuntimeException e) {
            // JCodec signals malformed bitstreams with runtime exceptions (index out of bounds, NPE, ...)
            throw new IOException(file + ": corrupt or truncated video, cannot decode: " + e, e);
        }
    }

    /** An opened file that can decode any display-order frame. */
    private interface Source extends AutoCloseable {
        VideoInfo info();

        BufferedImage frame(int displayIndex) throws IOException;

        @Override
        void close() throws IOException;
    }

    private static Source open(Path file, long maxPixels) throws IOException {
        if (!Files.isRegularFile(file)) throw new IOException(file + ": not a readable file");
        long size = Files.size(file);
        if (size == 0) throw new IOException(file + ": empty file (0 bytes)");
        byte[] head = new byte[12];
        int read;
        try (InputStream in = Files.newInputStream(file)) {
            read = in.readNBytes(head, 0, head.length);
        }
        String magic = new String(head, 0, read, java.nio.charset.StandardCharsets.ISO_8859_1);
        Source source;
        if (read == 12 && magic.startsWith("RIFF") && magic.endsWith("AVI ")) {
            source = new AviSource(file, AviIndex.read(file));
        } else if (read == 12 && magic.startsWith("RIFF") && magic.endsWith("WAVE")) {
            throw new IOException(file + ": not a video: it is a WAV audio file");
        } else if (read >= 8 && (head[0] & 0xFF) == 0x89 && magic.startsWith("PNG", 1)) {
            throw new IOException(file + ": not a video: it is a PNG image");
        } else if (read >= 3 && (head[0] & 0xFF) == 0xFF && (head[1] & 0xFF) == 0xD8 && (head[2] & 0xFF) == 0xFF) {
            throw new IOException(file + ": not a video: it is a JPEG image");
        } else if (read >= 8 && isIsoBoxType(magic.substring(4, 8))) {
            source = Mp4Source.open(file);
        } else {
            throw new IOException(file + ": not a video: unrecognised container (MP4/MOV and AVI are read)");
        }
        try {
            VideoInfo info = source.info();
            if (info.width() <= 0 || info.height() <= 0) {
                throw new IOException(file + ": invalid frame size " + info.width() + "x" + info.height());
            }
            long pixels = (long) info.width() * info.height();
            if (pixels > maxPixels) {
                throw new IOException(file + ": frame size " + info.width() + "x" + info.height() + " = " + pixels
                        + " pixels exceeds the limit of " + maxPixels);
            }
            if (info.frameCount() == 0) throw new IOException(file + ": the video track has no frames");
            return source;
        } catch (IOException | RuntimeException e) {
            source.close();
            throw e;
        }
    }

    private static boolean isIsoBoxType(String type) {
        return switch (type) {
            case "ftyp", "moov", "mdat", "free", "wide", "skip", "pnot" -> true;
            default -> false;
        };
    }

    // ---------------------------------------------------------------------------------------------- MP4 / MOV

    /** MP4/MOV through JCodec's demuxer; frame order, key frames and sizes from the sample tables. */
    private static final class Mp4Source implements Source {
        private final Path file;
        private final SeekableByteChannel channel;
        private final AbstractMP4DemuxerTrack track;
        private final VideoInfo info;
        private final int[] sampleOfDisplay;   // display index → decode-order sample index
        private final int[] keyFrames;         // sorted decode-order indices of sync samples
        private final VideoDecoder decoder;
        private final byte[][] buffer;
        private int nextSample = -1;           // decode-order sample the decoder would take next; -1: needs a seek

        private Mp4Source(Path file, SeekableByteChannel channel, AbstractMP4DemuxerTrack track, VideoInfo info,
                          int[] sampleOfDisplay, int[] keyFrames, VideoDecoder decoder) {
            this.file = file;
            this.channel = channel;
            this.track = track;
            this.info = info;
            this.sampleOfDisplay = sampleOfDisplay;
            this.keyFrames = keyFrames;
            this.decoder = decoder;
            // decoded pictures are macroblock-aligned (16 pixels); a crop gives the display size
            this.buffer = Picture.create((info.width() + 15) & ~15, (info.height() + 15) & ~15, ColorSpace.YUV444)
                    .getData();
        }

        static Mp4Source open(Path file) throws IOException {
            SeekableByteChannel channel = NIOUtils.readableChannel(file.toFile());
            try {
                MP4Demuxer demuxer;
                try {
                    demuxer = MP4Demuxer.createMP4Demuxer(channel);
                } catch (IOException | RuntimeException e) {
                    // JCodec reports a missing 'moov' (e.g. cut off at the end) as a bare IOException
                    throw new IOException(file + ": corrupt or truncated MP4/MOV (cannot parse the box tree: "
                            + e.getMessage() + ")", e);
                }
                if (demuxer.getMovie() == null) {
                    throw new IOException(file + ": corrupt or truncated MP4/MOV: no 'moov' box (the index)");
                }
                List<DemuxerTrack> videoTracks = demuxer.getVideoTracks();
                if (videoTracks.isEmpty()) throw new IOException(file + ": no video track");
                AbstractMP4DemuxerTrack track = (AbstractMP4DemuxerTrack) videoTracks.get(0);
                String fourcc = track.getFourcc();
                DemuxerTrackMeta meta = track.getMeta();
                if (meta.getCodec() != Codec.H264) {
                    throw new IOException(file + ": unsupported codec '" + fourcc + "' (H.264 'avc1' is decoded in "
                            + "MP4/MOV)");
                }
                TrakBox box = track.getBox();
                int frames = meta.getTotalFrames();
                Size size = meta.getVideoCodecMeta() != null ? meta.getVideoCodecMeta().getSize() : null;
                if (size == null) throw new IOException(file + ": corrupt MP4/MOV: no frame size in the sample entry");
                double duration = meta.getTotalDuration();
                double fps = duration > 0 ? frames / duration : 0;
                VideoInfo info = new VideoInfo("mp4", fourcc, frames, fps, size.getWidth(), size.getHeight(),
                        duration);
                int[] keyFrames = meta.getSeekFrames() != null ? meta.getSeekFrames().clone()
                        : IntStream.range(0, frames).toArray(); // no stss: every sample is a sync sample
                Arrays.sort(keyFrames);
                checkSamplesInsideFile(file, box, frames, channel.size());
                H264Decoder decoder = H264Decoder.createH264DecoderFromCodecPrivate(meta.getCodecPrivate());
                return new Mp4Source(file, channel, track, info, displayOrder(box, frames), keyFrames, decoder);
            } catch (IOException | RuntimeException e) {
                channel.close();
                if (e instanceof RuntimeException) {
                    throw new IOException(file + ": corrupt MP4/MOV: " + e, e);
                }
                throw e;
            }
        }

        /**
         * Walks the sample tables (stsc: samples per chunk, stco/co64: chunk offsets, stsz: sizes) so that a file
         * cut inside its media data is reported as truncated up front, not as a decoder error on garbage bytes.
         */
        private static void checkSamplesInsideFile(Path file, TrakBox box, int frames, long fileSize)
                throws IOException {
            long[] chunkOffsets = box.getStco() != null ? box.getStco().getChunkOffsets()
                    : box.getCo64() != null ? box.getCo64().getChunkOffsets() : null;
            if (chunkOffsets == null || box.getStsc() == null || box.getStsz() == null) {
                throw new IOException(file + ": corrupt MP4/MOV: the video sample tables are incomplete");
            }
            SampleToChunkBox.SampleToChunkEntry[] runs = box.getStsc().getSampleToChunk();
            int[] sizes = box.getStsz().getSizes();
            int defaultSize = box.getStsz().getDefaultSize();
            int sample = 0;
            for (int run = 0; run < runs.length && sample < frames; run++) {
                long firstChunk = runs[run].getFirst() - 1; // 1-based in the file
                long endChunk = run + 1 < runs.length ? runs[run + 1].getFirst() - 1 : chunkOffsets.length;
                for (long chunk = firstChunk; chunk < endChunk && chunk < chunkOffsets.length && sample < frames; chunk++) {
                    long end = chunkOffsets[(int) chunk];
                    for (int k = 0; k < runs[run].getCount() && sample < frames; k++, sample++) {
                        end += sizes != null && sample < sizes.length ? sizes[sample] : defaultSize;
                        if (end > fileSize) {
                            throw new IOException(file + ": truncated MP4/MOV: sample " + sample + " of " + frames
                                    + " ends at byte " + end + ", past the end of the file (" + fileSize + " bytes)");
                        }
                    }
                }
            }
        }

        /** Sorts samples by presentation time (decode time + composition offset); identity without 'ctts'. */
        private static int[] displayOrder(TrakBox box, int frames) {
            CompositionOffsetsBox ctts = box.getCtts();
            if (ctts == null) return IntStream.range(0, frames).toArray();
            long[] presentation = new long[frames];
            int sample = 0;
            long decodeTime = 0;
            for (TimeToSampleBox.TimeToSampleEntry entry : box.getStts().getEntries()) {
                for (int k = 0; k < entry.getSampleCount() && sample < frames; k++) {
                    presentation[sample++] = decodeTime;
                    decodeTime += entry.getSampleDuration();
                }
            }
            sample = 0;
            for (CompositionOffsetsBox.Entry entry : ctts.getEntries()) {
                for (int k = 0; k < entry.getCount() && sample < frames; k++) presentation[sample++] += entry.getOffset();
            }
            return IntStream.range(0, frames).boxed()
                    .sorted(Comparator.comparingLong((Integer s) -> presentation[s]).thenComparingInt(s -> s))
                    .mapToInt(Integer::intValue).toArray();
        }

        @Override
        public VideoInfo info() {
            return info;
        }

        @Override
        public BufferedImage frame(int displayIndex) throws IOException {
            int target = sampleOfDisplay[displayIndex];
            int key = keyFrameAtOrBefore(keyFrames, target);
            // seek unless decoding forward from where we are is no longer than from the key frame
            if (nextSample < 0 || nextSample > target || nextSample < key) {
                if (!track.gotoFrame(key)) throw new IOException(file + ": cannot seek to frame " + key);
                nextSample = key;
            }
            Picture picture = null;
            while (nextSample <= target) {
                Packet packet = track.nextFrame();
                if (packet == null) {
                    throw new IOException(file + ": truncated MP4/MOV: sample " + nextSample + " of " + info.frameCount()
                            + " is missing");
                }
                if (packet instanceof org.jcodec.containers.mp4.MP4Packet mp4
                        && packet.getData().remaining() < mp4.getSize()) {
                    throw new IOException(file + ": truncated MP4/MOV: sample " + nextSample + " has "
                            + packet.getData().remaining() + " of " + mp4.getSize() + " bytes");
                }
                picture = decoder.decodeFrame(packet.getData(), buffer);
                if (picture == null) throw new IOException(file + ": corrupt H.264 data in sample " + nextSample);
                nextSample++;
            }
            return toRgb(picture, info.width(), info.height());
        }

        @Override
        public void close() throws IOException {
            channel.close();
        }
    }

    static int keyFrameAtOrBefore(int[] sortedKeyFrames, int target) {
        int key = 0;
        for (int k : sortedKeyFrames) {
            if (k > target) break;
            key = k;
        }
        return key;
    }

    // ------------------------------------------------------------------------------------------------- AVI

    /** AVI with Motion JPEG: every frame is a key frame, so any frame decodes on its own. */
    private static final class AviSource implements Source {
        private final Path file;
        private final AviIndex index;
        private final java.nio.channels.FileChannel channel;
        private final VideoDecoder decoder = new JpegDecoder();
        private final VideoInfo info;

        AviSource(Path file, AviIndex index) throws IOException {
            this.file = file;
            this.index = index;
            if (!AviIndex.MJPEG_FOURCCS.contains(index.codec().toUpperCase(Locale.ROOT))) {
                String hint = AviIndex.MPEG4_FOURCCS.contains(index.codec().toUpperCase(Locale.ROOT))
                        ? " (MPEG-4 Part 2: JCodec 0.2.5 cannot decode it reliably; convert to H.264 MP4)" : "";
                throw new IOException(file + ": unsupported codec '" + index.codec() + "' in AVI (Motion JPEG "
                        + "'MJPG' is decoded)" + hint);
            }
            this.info = new VideoInfo("avi", index.codec(), index.frameCount(), index.fps(), index.width(),
                    index.height(), index.frameCount() / index.fps());
            this.channel = java.nio.channels.FileChannel.open(file);
        }

        @Override
        public VideoInfo info() {
            return info;
        }

        @Override
        public BufferedImage frame(int displayIndex) throws IOException {
            // a zero-length chunk repeats the previous frame (a dropped frame in a capture)
            int chunk = displayIndex;
            while (chunk > 0 && index.sizes()[chunk] == 0) chunk--;
            if (index.sizes()[chunk] == 0) throw new IOException(file + ": AVI frame " + displayIndex + " is empty");
            ByteBuffer data = ByteBuffer.allocate(index.sizes()[chunk]);
            channel.read(data, index.offsets()[chunk]);
            if (data.hasRemaining()) {
                throw new IOException(file + ": truncated AVI: frame " + chunk + " is cut off");
            }
            data.flip();
            if (data.remaining() < 4 || (data.get(0) & 0xFF) != 0xFF || (data.get(1) & 0xFF) != 0xD8) {
                throw new IOException(file + ": corrupt AVI: frame " + chunk + " is not a JPEG image");
            }
            Picture picture;
            try {
                picture = decoder.decodeFrame(data, Picture.create((info.width() + 15) & ~15,
                        (info.height() + 15) & ~15, ColorSpace.YUV444).getData());
            } catch (RuntimeException e) {
                throw new IOException(file + ": corrupt JPEG data in AVI frame " + chunk + ": " + e, e);
            }
            if (picture == null) throw new IOException(file + ": corrupt JPEG data in AVI frame " + chunk);
            return toRgb(picture, info.width(), info.height());
        }

        @Override
        public void close() throws IOException {
            channel.close();
        }
    }

    // ------------------------------------------------------------------------------------------------ colour

    /**
     * Planar 8-bit YUV (any chroma subsampling JCodec produces) → sRGB with BT.601 coefficients; "J" colour spaces
     * are full range (JPEG), the others limited range (16..235 luma, 16..240 chroma), as H.264 without VUI.
     * JCodec stores samples as signed bytes, value − 128.
     */
    static BufferedImage toRgb(Picture picture, int width, int height) {
        ColorSpace colour = picture.getColor();
        if (colour == ColorSpace.RGB || colour.nComp < 3) {
            throw new IllegalArgumentException("expected a planar YUV picture, got " + colour);
        }
        boolean fullRange = colour.toString().endsWith("J");
        int cropX = picture.getStartX();
        int cropY = picture.getStartY();
        byte[] luma = picture.getPlaneData(0);
        byte[] cb = picture.getPlaneData(1);
        byte[] cr = picture.getPlaneData(2);
        int lumaStride = picture.getPlaneWidth(0);
        int chromaStride = picture.getPlaneWidth(1);
        int shiftX = Integer.numberOfTrailingZeros(Math.max(1, lumaStride / chromaStride));
        int shiftY = Integer.numberOfTrailingZeros(Math.max(1, picture.getPlaneHeight(0) / picture.getPlaneHeight(1)));
        int w = Math.min(width, picture.getWidth() - cropX);
        int h = Math.min(height, picture.getHeight() - cropY);
        BufferedImage image = new BufferedImage(w, h, BufferedImage.TYPE_INT_RGB);
        int[] pixels = ((DataBufferInt) image.getRaster().getDataBuffer()).getData();
        for (int y = 0; y < h; y++) {
            int sy = y + cropY;
            for (int x = 0; x < w; x++) {
                int sx = x + cropX;
                double yy = luma[sy * lumaStride + sx] + 128;
                int c = (sy >> shiftY) * chromaStride + (sx >> shiftX);
                double u = cb[c];  // already centred on 0
                double v = cr[c];
                double r;
                double g;
                double b;
                if (fullRange) {
                    r = yy + 1.402 * v;
                    g = yy - 0.344136 * u - 0.714136 * v;
                    b = yy + 1.772 * u;
                } else {
                    double ys = 1.164383 * (yy - 16);
                    r = ys + 1.596027 * v;
                    g = ys - 0.391762 * u - 0.812968 * v;
                    b = ys + 2.017232 * u;
                }
                pixels[y * w + x] = clamp(r) << 16 | clamp(g) << 8 | clamp(b);
            }
        }
        return image;
    }

    private static int clamp(double value) {
        return (int) Math.max(0, Math.min(255, Math.round(value)));
    }
}
