package xllm.vision;

import org.jcodec.common.AudioFormat;
import org.jcodec.common.io.NIOUtils;
import org.jcodec.common.io.SeekableByteChannel;
import org.jcodec.common.model.Packet;
import org.jcodec.containers.mp4.muxer.MP4Muxer;
import org.jcodec.containers.mp4.muxer.PCMMP4MuxerTrack;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.awt.Color;
import java.awt.Graphics2D;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** VideoReader on files written by VideoWriter: metadata, frame choice, pixels, and every refusal. */
class VideoReaderTest {

    /** Frame size that is not a multiple of 16 in height, so the H.264 crop is exercised. */
    private static final int WIDTH = 160;
    private static final int HEIGHT = 120;
    private static final int RED = 220;
    private static final int GREEN = 40;
    private static final int BLUE = 40;

    @TempDir
    Path dir;

    @Test
    void samplingTakesTheMiddleFrameOfEachOfTEqualSegments() {
        assertArrayEquals(new int[]{2, 6, 10, 14}, VideoReader.sampleIndices(16, 4));
        assertArrayEquals(new int[]{1, 3, 5, 7, 9}, VideoReader.sampleIndices(10, 5));
        assertArrayEquals(new int[]{0, 1, 2, 3, 4}, VideoReader.sampleIndices(5, 5));
        assertArrayEquals(new int[]{3}, VideoReader.sampleIndices(7, 1));
        assertArrayEquals(new int[]{10, 30, 50, 70, 90}, VideoReader.sampleIndices(100, 5));
        for (int n = 1; n <= 64; n++) {
            for (int t = 1; t <= n; t++) {
                int[] indices = VideoReader.sampleIndices(n, t);
                for (int i = 0; i < t; i++) {
                    // index i lies in segment i: [i N / T, (i + 1) N / T)
                    assertTrue(indices[i] >= (long) i * n / t && indices[i] * (long) t < (long) (i + 1) * n,
                            n + "/" + t + ": " + Arrays.toString(indices));
                    if (i > 0) assertTrue(indices[i] > indices[i - 1]);
                }
            }
        }
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> VideoReader.sampleIndices(3, 5));
        assertEquals("has 3 frames, 5 requested", e.getMessage());
    }

    @Test
    void mp4RoundTripGivesMetadataPositionsAndColours() throws Exception {
        List<BufferedImage> frames = movingSquare(20);
        Path file = write("square.mp4", VideoWriter.mp4(frames, 10, 6, VideoWriter.DEFAULT_QP));
        VideoReader.VideoInfo info = VideoReader.probe(file);
        assertEquals(new VideoReader.VideoInfo("mp4", "avc1", 20, 10.0, WIDTH, HEIGHT, 2.0), info);

        VideoReader.VideoClip clip = VideoReader.read(file, 5);
        assertArrayEquals(new int[]{2, 6, 10, 14, 18}, clip.frameIndices());
        checkFrames(clip, 5.0);

        // seeking to a key frame and decoding forward gives the same pixels as decoding every frame in order
        VideoReader.VideoClip all = VideoReader.read(file, 20);
        for (int i = 0; i < 5; i++) {
            assertImageEquals(all.frames().get(clip.frameIndices()[i]), clip.frames().get(i));
        }
    }

    @Test
    void mjpegAviRoundTripWithAndWithoutIdx1() throws Exception {
        List<BufferedImage> frames = movingSquare(12);
        byte[] avi = VideoWriter.mjpegAvi(frames, 6, 0.9f);
        Path file = write("square.avi", avi);
        assertEquals(new VideoReader.VideoInfo("avi", "MJPG", 12, 6.0, WIDTH, HEIGHT, 2.0), VideoReader.probe(file));
        VideoReader.VideoClip clip = VideoReader.read(file, 4);
        assertArrayEquals(new int[]{1, 4, 7, 10}, clip.frameIndices());
        checkFrames(clip, 6.0);

        // without idx1 the frames are found by walking the movi list
        Path noIndex = write("no-index.avi", withoutIdx1(avi));
        VideoReader.VideoClip walked = VideoReader.read(noIndex, 4);
        assertEquals(12, walked.info().frameCount());
        for (int i = 0; i < 4; i++) assertImageEquals(clip.frames().get(i), walked.frames().get(i));
    }

    /**
     * Display order comes from composition offsets ('ctts'), as with B-frames: an all-intra stream stored in the
     * decode order 0 2 1 4 3 6 5 7 with presentation times 0..7 must come back in presentation order.
     */
    @Test
    void framesComeBackInPresentationOrder() throws Exception {
        List<BufferedImage> frames = movingSquare(8);
        int[] decodeOrder = {0, 2, 1, 4, 3, 6, 5, 7};
        Path file = dir.resolve("reordered.mp4");
        try (SeekableByteChannel channel = NIOUtils.writableChannel(file.toFile())) {
            MP4Muxer muxer = MP4Muxer.createMP4MuxerToChannel(channel);
            org.jcodec.codecs.h264.H264Encoder encoder = org.jcodec.codecs.h264.H264Encoder.createH264Encoder();
            encoder.setKeyInterval(1);
            org.jcodec.common.MuxerTrack track = muxer.addVideoTrack(org.jcodec.common.Codec.H264,
                    org.jcodec.common.VideoCodecMeta.createSimpleVideoCodecMeta(
                            new org.jcodec.common.model.Size(WIDTH, HEIGHT), org.jcodec.common.model.ColorSpace.YUV420));
            for (int i = 0; i < decodeOrder.length; i++) {
                int shown = decodeOrder[i];
                ByteBuffer out = ByteBuffer.allocate(1 << 20);
                ByteBuffer data = encoder.encodeFrame(VideoWriter.limitedRangeYuv420(frames.get(shown)), out).getData();
                track.addFrame(Packet.createPacket(ByteBuffer.allocate(data.remaining()).put(data).flip(), shown, 8, 1,
                        i, Packet.FrameType.KEY, null));
            }
            muxer.finish();
        }
        assertTrue(new String(Files.readAllBytes(file), StandardCharsets.ISO_8859_1).contains("ctts"));
        VideoReader.VideoClip clip = VideoReader.read(file, 8);
        assertEquals(8, clip.info().frameCount());
        checkFrames(clip, 8.0); // the square at frame t is where frame t drew it
    }

    @Test
    void sameFramesWriteSameBytes() throws Exception {
        List<BufferedImage> frames = movingSquare(6);
        assertArrayEquals(VideoWriter.mp4(frames, 8, 4, 24), VideoWriter.mp4(movingSquare(6), 8, 4, 24));
        assertArrayEquals(VideoWriter.mjpegAvi(frames, 8, 0.9f), VideoWriter.mjpegAvi(movingSquare(6), 8, 0.9f));
    }

    @Test
    void badInputIsRefusedNamingTheFileAndTheProblem() throws Exception {
        byte[] mp4 = VideoWriter.mp4(movingSquare(8), 8, 4, 24);
        byte[] avi = VideoWriter.mjpegAvi(movingSquare(8), 8, 0.9f);
        Random random = new Random(1);
        byte[] noise = new byte[5000];
        random.nextBytes(noise);

        refused(write("empty.mp4", new byte[0]), 5, "empty file (0 bytes)");
        refused(write("noise.mp4", noise), 5, "not a video: unrecognised container");
        byte[] fakeBoxes = Arrays.copyOf("\0\0\0\u0018ftypisom".getBytes(StandardCharsets.ISO_8859_1), 5000);
        System.arraycopy(noise, 0, fakeBoxes, 12, 4988);
        refused(write("garbage-after-ftyp.mp4", fakeBoxes), 5, "corrupt");
        refused(write("truncated.mp4", Arrays.copyOf(mp4, mp4.length / 2)), 5, "truncated MP4/MOV");
        refused(write("cut-mdat.mp4", cutMdat(mp4)), 8, "truncated MP4/MOV: sample 7");
        refused(write("truncated.avi", Arrays.copyOf(avi, avi.length / 2)), 5, "truncated AVI");
        refused(write("speech.mp4", wav()), 5, "not a video: it is a WAV audio file");
        refused(write("scene.mp4", png(movingSquare(1).get(0))), 5,
                "not a video: it is a PNG image");
        refused(write("short.mp4", VideoWriter.mp4(movingSquare(3), 8, 4, 24)), 5, "has 3 frames, 5 requested");
        refused(write("short.avi", VideoWriter.mjpegAvi(movingSquare(3), 8, 0.9f)), 5, "has 3 frames, 5 requested");
        refused(write("audio-only.mp4", audioOnlyMp4()), 1, "no video track");
        refused(write("audio-only.avi", replace(avi, "vids", "auds")), 1, "no video track");
        refused(write("xvid.avi", replace(avi, "MJPG", "XVID")), 1, "unsupported codec 'XVID'");
        Path big = write("big.mp4", mp4);
        IOException e = assertThrows(IOException.class, () -> VideoReader.read(big, 1, WIDTH * HEIGHT - 1));
        assertTrue(e.getMessage().startsWith(big + ": frame size 160x120 = 19200 pixels exceeds the limit"),
                e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> VideoReader.read(big, 0));
    }

    // ------------------------------------------------------------------------------------------------ helpers

    /** A 24×24 red square on grey moving 5 px right and 2 px down per frame, so every frame differs. */
    static List<BufferedImage> movingSquare(int count) {
        List<BufferedImage> frames = new ArrayList<>();
        for (int t = 0; t < count; t++) {
            BufferedImage image = new BufferedImage(WIDTH, HEIGHT, BufferedImage.TYPE_INT_RGB);
            Graphics2D g = image.createGraphics();
            g.setColor(new Color(200, 200, 200));
            g.fillRect(0, 0, WIDTH, HEIGHT);
            g.setColor(new Color(RED, GREEN, BLUE));
            g.fillRect(squareX(t) - 12, squareY(t) - 12, 24, 24);
            g.dispose();
            frames.add(image);
        }
        return frames;
    }

    private static int squareX(int t) {
        return 20 + 5 * t;
    }

    private static int squareY(int t) {
        return 30 + 2 * t;
    }

    /** Centroid of the red pixels where the square was drawn; mean colour of its interior close to (220, 40, 40). */
    private static void checkFrames(VideoReader.VideoClip clip, double maxColourError) {
        for (int i = 0; i < clip.frames().size(); i++) {
            BufferedImage frame = clip.frames().get(i);
            assertEquals(WIDTH, frame.getWidth());
            assertEquals(HEIGHT, frame.getHeight());
            int t = clip.frameIndices()[i];
            double sumX = 0;
            double sumY = 0;
            int n = 0;
            for (int y = 0; y < HEIGHT; y++) {
                for (int x = 0; x < WIDTH; x++) {
                    int rgb = frame.getRGB(x, y);
                    if (((rgb >> 16) & 0xFF) - ((rgb >> 8) & 0xFF) > 80) {
                        sumX += x;
                        sumY += y;
                        n++;
                    }
                }
            }
            assertTrue(Math.abs(n - 576) < 60, "red pixels " + n);
            assertEquals(squareX(t) - 0.5, sumX / n, 0.5, "centroid x of frame " + t);
            assertEquals(squareY(t) - 0.5, sumY / n, 0.5, "centroid y of frame " + t);
            double[] mean = new double[3];
            for (int y = squareY(t) - 8; y < squareY(t) + 8; y++) {
                for (int x = squareX(t) - 8; x < squareX(t) + 8; x++) {
                    int rgb = frame.getRGB(x, y);
                    mean[0] += ((rgb >> 16) & 0xFF) / 256.0;
                    mean[1] += ((rgb >> 8) & 0xFF) / 256.0;
                    mean[2] += (rgb & 0xFF) / 256.0;
                }
            }
            assertEquals(RED, mean[0], maxColourError, "red of frame " + t);
            assertEquals(GREEN, mean[1], maxColourError, "green of frame " + t);
            assertEquals(BLUE, mean[2], maxColourError, "blue of frame " + t);
        }
    }

    private void refused(Path file, int frames, String problem) {
        IOException e = assertThrows(IOException.class, () -> VideoReader.read(file, frames), file.toString());
        assertTrue(e.getMessage().startsWith(file.toString() + ": "), e.getMessage());
        assertTrue(e.getMessage().contains(problem), e.getMessage());
    }

    private Path write(String name, byte[] bytes) throws IOException {
        Path file = dir.resolve(name);
        Files.write(file, bytes);
        return file;
    }

    private static void assertImageEquals(BufferedImage expected, BufferedImage actual) {
        assertArrayEquals(expected.getRGB(0, 0, WIDTH, HEIGHT, null, 0, WIDTH),
                actual.getRGB(0, 0, WIDTH, HEIGHT, null, 0, WIDTH));
    }

    /** The same AVI with its trailing idx1 chunk removed and the RIFF size fixed. */
    private static byte[] withoutIdx1(byte[] avi) {
        String text = new String(avi, StandardCharsets.ISO_8859_1);
        int idx1 = text.lastIndexOf("idx1");
        byte[] out = Arrays.copyOf(avi, idx1);
        ByteBuffer.wrap(out).order(ByteOrder.LITTLE_ENDIAN).putInt(4, out.length - 8);
        return out;
    }

    /**
     * The MP4 (ftyp, mdat, moov) with the end of its media data cut away but the index kept, as when a download
     * stops inside mdat of a file whose index is written first: mdat shrinks by more than moov's size, so the last
     * sample's bytes lie past the end of the file.
     */
    private static byte[] cutMdat(byte[] mp4) {
        ByteBuffer buffer = ByteBuffer.wrap(mp4);
        int at = 0;
        while (!new String(mp4, at + 4, 4, StandardCharsets.ISO_8859_1).equals("mdat")) at += buffer.getInt(at);
        int mdat = at;
        assertEquals(1, buffer.getInt(mdat)); // JCodec writes mdat with a 64-bit size
        int mdatSize = (int) buffer.getLong(mdat + 8);
        int moov = mdat + mdatSize;
        int moovSize = mp4.length - moov;
        int cut = moovSize + 50;
        assertTrue(cut < mdatSize / 2, "mdat " + mdatSize + ", moov " + moovSize);
        byte[] out = new byte[mp4.length - cut];
        System.arraycopy(mp4, 0, out, 0, moov - cut);
        System.arraycopy(mp4, moov, out, moov - cut, moovSize);
        ByteBuffer.wrap(out).putLong(mdat + 8, mdatSize - cut);
        return out;
    }

    /** Every occurrence of a 4-character code replaced (headers only hold these). */
    private static byte[] replace(byte[] bytes, String from, String to) {
        byte[] out = bytes.clone();
        byte[] a = from.getBytes(StandardCharsets.ISO_8859_1);
        byte[] b = to.getBytes(StandardCharsets.ISO_8859_1);
        int replaced = 0;
        for (int i = 0; i + 4 <= out.length && i < 400; i++) { // header region only
            if (out[i] == a[0] && out[i + 1] == a[1] && out[i + 2] == a[2] && out[i + 3] == a[3]) {
                System.arraycopy(b, 0, out, i, 4);
                replaced++;
            }
        }
        assertTrue(replaced > 0, from);
        return out;
    }

    private static byte[] png(BufferedImage image) throws IOException {
        java.io.ByteArrayOutputStream bytes = new java.io.ByteArrayOutputStream();
        javax.imageio.ImageIO.write(image, "png", bytes);
        return bytes.toByteArray();
    }

    /** 0.1 s of 16 kHz mono silence as a WAV file. */
    private static byte[] wav() {
        int samples = 1600;
        ByteBuffer b = ByteBuffer.allocate(44 + 2 * samples).order(ByteOrder.LITTLE_ENDIAN);
        b.put("RIFF".getBytes(StandardCharsets.US_ASCII)).putInt(36 + 2 * samples).put("WAVE".getBytes(StandardCharsets.US_ASCII));
        b.put("fmt ".getBytes(StandardCharsets.US_ASCII)).putInt(16).putShort((short) 1).putShort((short) 1)
                .putInt(16000).putInt(32000).putShort((short) 2).putShort((short) 16);
        b.put("data".getBytes(StandardCharsets.US_ASCII)).putInt(2 * samples);
        return b.array();
    }

    /** An MP4 with one PCM audio track and no video, written by JCodec's muxer. */
    private byte[] audioOnlyMp4() throws IOException {
        Path file = dir.resolve("audio-only.tmp");
        try (SeekableByteChannel channel = NIOUtils.writableChannel(file.toFile())) {
            MP4Muxer muxer = MP4Muxer.createMP4MuxerToChannel(channel);
            PCMMP4MuxerTrack track = muxer.addPCMAudioTrack(AudioFormat.MONO_48K_S16_LE);
            track.addFrame(Packet.createPacket(ByteBuffer.allocate(9600), 0, 48000, 4800, 0, Packet.FrameType.KEY, null));
            muxer.finish();
        }
        return Files.readAllBytes(file);
    }
}
