package xllm.data;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import xllm.data.SyntheticScenes.Colour;
import xllm.data.SyntheticScenes.Scene;
import xllm.data.SyntheticScenes.SceneObject;
import xllm.data.SyntheticScenes.ShapeKind;
import xllm.vision.VideoWriter;

import java.awt.image.BufferedImage;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.io.Writer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Consumer;
import java.util.stream.IntStream;

/**
 * Synthetic videos for the video interface (DESIGN.md §3 Video: T frames through the image path): one shape of
 * {@link SyntheticScenes} (same shapes, palette and drawing) moving left, right, up or down, slowly or fast, and in
 * a quarter of the clips changing colour half-way. Clips are {@value #FRAMES} frames of 224×224 at {@value #FPS}
 * fps (2 s), written as real files: H.264 in MP4 ({@link VideoWriter#mp4}, key frame every 8 frames) and, for a
 * fraction {@value #AVI_FRACTION} of the clips, Motion JPEG in AVI ({@link VideoWriter#mjpegAvi}), so both decode
 * paths of {@link xllm.vision.VideoReader} see training data.
 *
 * <p>Each clip gives LLaVA-style samples (DESIGN.md §4, {@code "video"} key, {@code <video>} tag): a caption,
 * "describe", "which way does the shape move?", "what colour is it?" and "how fast?", about 20% in Chinese, with
 * {@code "attributes": {shape, colour, colourEnd, colourChange, direction, speed, start, end, radius, format}}
 * for exact scoring. Motion is fixed per frame: {@value #SLOW_STEP} px (slow) or {@value #FAST_STEP} px (fast),
 * so a slow clip moves 45 px and a fast one 90 px in 15 steps; the whole path stays inside the frame.
 *
 * <p>Everything is a function of (seed, split, clip index): the same call writes byte-identical JSONL and video
 * files. Layouts are drawn sequentially (an eval split excludes the exact motions of train); rendering and
 * encoding run in parallel. Tested in {@code SyntheticVideosTest} by decoding the written files and measuring the
 * shape's colour and centroid.
 */
public final class SyntheticVideos {

    public static final int FRAMES = 16;
    public static final int FPS = 8;
    public static final int KEY_INTERVAL = 8;
    static final int SLOW_STEP = 3;
    static final int FAST_STEP = 6;
    static final double AVI_FRACTION = 0.2;
    static final double COLOUR_CHANGE_FRACTION = 0.25;
    /** JPEG quality of AVI frames: high enough that 4:2:0 chroma keeps the palette apart. */
    static final float AVI_QUALITY = 0.9f;
    private static final ObjectMapper JSON = new ObjectMapper();

    /** Where the shape goes: English answer, Chinese answer (a direction phrase), and the unit step. */
    public enum Direction {
        LEFT("left", "向左", -1, 0),
        RIGHT("right", "向右", 1, 0),
        UP("up", "向上", 0, -1),
        DOWN("down", "向下", 0, 1);

        public final String english;
        public final String chinese;
        public final int dx;
        public final int dy;

        Direction(String english, String chinese, int dx, int dy) {
            this.english = english;
            this.chinese = chinese;
            this.dx = dx;
            this.dy = dy;
        }

        /** "to the left", "up". */
        String phrase() {
            return dx != 0 ? "to the " + english : english;
        }
    }

    /** Pixels per frame and the adverbs used in captions and answers. */
    public enum Speed {
        SLOW("slow", "slowly", "慢慢地", "慢", SLOW_STEP),
        FAST("fast", "quickly", "快速地", "快", FAST_STEP);

        public final String english;
        public final String adverb;
        public final String chineseAdverb;
        public final String chinese;
        public final int step;

        Speed(String english, String adverb, String chineseAdverb, String chinese, int step) {
            this.english = english;
            this.adverb = adverb;
            this.chineseAdverb = chineseAdverb;
            this.chinese = chinese;
            this.step = step;
        }
    }

    /**
     * Everything needed to render a clip. {@code endColour} equals {@code colour} unless the colour changes at
     * frame {@code FRAMES / 2}; {@code red/green/blue} and {@code endRed/...} are the jittered RGB actually drawn.
     */
    public record Clip(String id, ShapeKind shape, Colour colour, Colour endColour, int red, int green, int blue,
                       int endRed, int endGreen, int endBlue, Direction direction, Speed speed, int radius,
                       int startX, int startY, int background, long seed, String format) {

        public boolean colourChanges() {
            return colour != endColour;
        }

        public int x(int frame) {
            return startX + direction.dx * speed.step * frame;
        }

        public int y(int frame) {
            return startY + direction.dy * speed.step * frame;
        }

        public String file() {
            return "videos/" + id + "." + format;
        }

        /** Identity of the motion (not of the noise): eval excludes clips with a train layout. */
        public String layout() {
            return String.join("|", shape.english, colour.english, endColour.english, direction.english,
                    speed.english, Integer.toString(radius), startX + "," + startY);
        }
    }

    /** What {@link #generate} wrote. {@code layouts} lets a later split exclude these exact clips. */
    public record Summary(Path manifest, int clips, int samples, int chineseSamples, int aviClips, Set<String> layouts,
                          double seconds) {
        public double clipsPerSecond() {
            return clips / Math.max(seconds, 1e-9);
        }
    }

    private SyntheticVideos() {
    }

    /** {@link #generate(Path, int, long, String, Set, Consumer)} with no excluded layouts and no progress. */
    public static Summary generate(Path outDir, int clips, long seed, String split) throws IOException {
        return generate(outDir, clips, seed, split, Set.of(), message -> { });
    }

    /**
     * Writes {@code outDir/videos/clip-<split>-NNNNNN.(mp4|avi)} and {@code outDir/<split>.jsonl}. Clips whose
     * layout is in {@code excludedLayouts} (or repeats one earlier in this split) are redrawn. {@code progress}
     * receives a line every 100 clips.
     */
    public static Summary generate(Path outDir, int clips, long seed, String split, Set<String> excludedLayouts,
                                   Consumer<String> progress) throws IOException {
        if (clips < 1) throw new IllegalArgumentException("clips must be >= 1, got " + clips);
        if (!split.matches("[a-z0-9_]+")) throw new IllegalArgumentException("split must match [a-z0-9_]+: " + split);
        long start = System.nanoTime();
        Path videos = outDir.resolve("videos");
        Files.createDirectories(videos);

        // step 1: layouts, sequentially, so exclusion of repeated layouts is deterministic
        long splitSeed = mix(seed ^ mix(("videos/" + split).hashCode()));
        List<Clip> drawn = new ArrayList<>(clips);
        Set<String> layouts = new HashSet<>();
        for (int index = 0; index < clips; index++) {
            String id = String.format(Locale.ROOT, "clip-%s-%06d", split, index);
            SplittableRandom random = new SplittableRandom(mix(splitSeed + index));
            Clip clip;
            do {
                clip = drawClip(id, random);
            } while (excludedLayouts.contains(clip.layout()) || !layouts.add(clip.layout()));
            drawn.add(clip);
        }

        // step 2: render and encode in parallel (each clip's noise comes from its own seed)
        AtomicInteger done = new AtomicInteger();
        try {
            IntStream.range(0, clips).parallel().forEach(i -> {
                Clip clip = drawn.get(i);
                try {
                    Files.write(outDir.resolve(clip.file()), encode(clip));
                } catch (IOException e) {
                    throw new UncheckedIOException(e);
                }
                int n = done.incrementAndGet();
                if (n % 100 == 0) progress.accept(String.format(Locale.ROOT, "%s: %d/%d clips", split, n, clips));
            });
        } catch (UncheckedIOException e) {
            throw e.getCause();
        }

        // step 3: the manifest, in clip order
        Path manifest = outDir.resolve(split + ".jsonl");
        Path temp = outDir.resolve(split + ".jsonl.tmp");
        int samples = 0;
        int chinese = 0;
        try (Writer writer = Files.newBufferedWriter(temp, StandardCharsets.UTF_8)) {
            for (Clip clip : drawn) {
                SplittableRandom language = new SplittableRandom(mix(clip.seed() + 1));
                for (Sample sample : samples(clip, language)) {
                    writer.write(JSON.writeValueAsString(json(clip, sample)));
                    writer.write('\n');
                    samples++;
                    if (sample.chinese()) chinese++;
                }
            }
        }
        Files.move(temp, manifest, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        int avi = (int) drawn.stream().filter(c -> c.format().equals("avi")).count();
        return new Summary(manifest, clips, samples, chinese, avi, Set.copyOf(layouts), (System.nanoTime() - start) / 1e9);
    }

    /** One shape, colour (maybe a second one), direction, speed, size, and a start from which the path fits. */
    static Clip drawClip(String id, SplittableRandom random) {
        ShapeKind shape = ShapeKind.values()[random.nextInt(ShapeKind.values().length)];
        Colour colour = Colour.values()[random.nextInt(Colour.values().length)];
        Colour endColour = colour;
        if (random.nextDouble() < COLOUR_CHANGE_FRACTION) {
            endColour = Colour.values()[(colour.ordinal() + 1 + random.nextInt(Colour.values().length - 1))
                    % Colour.values().length];
        }
        Direction direction = Direction.values()[random.nextInt(Direction.values().length)];
        Speed speed = random.nextBoolean() ? Speed.SLOW : Speed.FAST;
        int radius = random.nextInt(16, 25);
        int travel = speed.step * (FRAMES - 1);
        int low = radius + 4;
        int high = SyntheticScenes.IMAGE_SIZE - radius - 4; // exclusive
        // along the motion the start leaves room for the whole path; across it, anywhere inside
        int startX = direction.dx > 0 ? random.nextInt(low, high - travel)
                : direction.dx < 0 ? random.nextInt(low + travel, high) : random.nextInt(low, high);
        int startY = direction.dy > 0 ? random.nextInt(low, high - travel)
                : direction.dy < 0 ? random.nextInt(low + travel, high) : random.nextInt(low, high);
        int j = SyntheticScenes.COLOUR_JITTER;
        int red = jitter(colour.red, random, j);
        int green = jitter(colour.green, random, j);
        int blue = jitter(colour.blue, random, j);
        int endRed = endColour == colour ? red : jitter(endColour.red, random, j);
        int endGreen = endColour == colour ? green : jitter(endColour.green, random, j);
        int endBlue = endColour == colour ? blue : jitter(endColour.blue, random, j);
        int background = 0xFF000000 | (random.nextInt(228, 246) << 16) | (random.nextInt(228, 246) << 8)
                | random.nextInt(228, 246);
        String format = random.nextDouble() < AVI_FRACTION ? "avi" : "mp4";
        return new Clip(id, shape, colour, endColour, red, green, blue, endRed, endGreen, endBlue, direction, speed,
                radius, startX, startY, background, random.nextLong(), format);
    }

    /** The frames: {@link SyntheticScenes#render} of a one-object scene per frame; the noise is the same in all. */
    public static List<BufferedImage> render(Clip clip) {
        List<BufferedImage> frames = new ArrayList<>(FRAMES);
        for (int t = 0; t < FRAMES; t++) {
            boolean second = t >= FRAMES / 2;
            SceneObject object = new SceneObject(clip.x(t), clip.y(t), clip.radius(), clip.radius() > 20);
            Scene scene = new Scene(clip.id(), clip.shape(), second ? clip.endColour() : clip.colour(),
                    second ? clip.endRed() : clip.red(), second ? clip.endGreen() : clip.green(),
                    second ? clip.endBlue() : clip.blue(), clip.background(), List.of(object), clip.seed());
            frames.add(SyntheticScenes.render(scene));
        }
        return frames;
    }

    static byte[] encode(Clip clip) throws IOException {
        List<BufferedImage> frames = render(clip);
        return clip.format().equals("avi") ? VideoWriter.mjpegAvi(frames, FPS, AVI_QUALITY)
                : VideoWriter.mp4(frames, FPS, KEY_INTERVAL, VideoWriter.DEFAULT_QP);
    }

    /** One question-answer pair about a clip. */
    record Sample(String id, String question, String answer, boolean chinese, String kind) {
    }

    /** q0 caption, q1 describe, q2 direction, q3 colour, q4 speed. */
    static List<Sample> samples(Clip clip, SplittableRandom language) {
        String shape = clip.shape().english;
        String colourAnswer = clip.colourChanges()
                ? clip.colour().english + ", then " + clip.endColour().english : clip.colour().english;
        String colourAnswerZh = clip.colourChanges()
                ? "先是" + clip.colour().chinese + "，然后变成" + clip.endColour().chinese : clip.colour().chinese;
        String caption = "A " + clip.colour().english + " " + shape + " moving " + clip.speed().adverb + " "
                + clip.direction().phrase() + (clip.colourChanges() ? " and turning " + clip.endColour().english : "")
                + ".";
        String describe = "A " + clip.colour().english + " " + shape + " moves " + clip.speed().adverb + " "
                + clip.direction().phrase() + "."
                + (clip.colourChanges() ? " Half-way through it turns " + clip.endColour().english + "." : "");
        String chineseCaption = "一个" + clip.colour().chinese + "的" + clip.shape().chinese + clip.speed().chineseAdverb
                + clip.direction().chinese + "移动" + (clip.colourChanges() ? "，中途变成" + clip.endColour().chinese : "")
                + "。";
        String[][] pairs = {
                {"caption", "Write a short caption for the video.", caption, "为这段视频写一句简短的说明。", chineseCaption},
                {"describe", "Describe the video.", describe, "描述这段视频。", chineseCaption},
                {"direction", "Which way does the shape move?", clip.direction().english, "这个图形往哪个方向移动？",
                        clip.direction().chinese},
                {"colour", clip.colourChanges() ? "What colours does the " + shape + " have?"
                        : "What colour is the " + shape + "?", colourAnswer,
                        "这个" + clip.shape().chinese + "是什么颜色？", colourAnswerZh},
                {"speed", "Does the " + shape + " move slowly or quickly?", clip.speed().adverb,
                        "这个" + clip.shape().chinese + "移动得快还是慢？", clip.speed().chinese},
        };
        List<Sample> out = new ArrayList<>();
        for (String[] p : pairs) {
            boolean chinese = language.nextDouble() < SyntheticScenes.CHINESE_FRACTION;
            out.add(new Sample(clip.id() + "-q" + out.size(), chinese ? p[3] : p[1], chinese ? p[4] : p[2], chinese,
                    p[0]));
        }
        return out;
    }

    private static ObjectNode json(Clip clip, Sample sample) {
        ObjectNode node = JSON.createObjectNode();
        node.put("id", sample.id());
        node.put("video", clip.file());
        ArrayNode conversations = node.putArray("conversations");
        conversations.addObject().put("from", "human").put("value", "<video>\n" + sample.question());
        conversations.addObject().put("from", "gpt").put("value", sample.answer());
        node.put("task", sample.kind());
        node.put("language", sample.chinese() ? "zh" : "en");
        ObjectNode attributes = node.putObject("attributes");
        attributes.put("shape", clip.shape().english);
        attributes.put("colour", clip.colour().english);
        attributes.put("colourEnd", clip.endColour().english);
        attributes.put("colourChange", clip.colourChanges());
        attributes.put("direction", clip.direction().english);
        attributes.put("speed", clip.speed().english);
        attributes.put("radius", clip.radius());
        attributes.putObject("start").put("x", clip.x(0)).put("y", clip.y(0));
        attributes.putObject("end").put("x", clip.x(FRAMES - 1)).put("y", clip.y(FRAMES - 1));
        attributes.put("frames", FRAMES);
        attributes.put("fps", FPS);
        attributes.put("format", clip.format());
        return node;
    }

    private static int jitter(int value, SplittableRandom random, int amount) {
        return Math.max(0, Math.min(255, value + random.nextInt(-amount, amount + 1)));
    }

    /** SplitMix64 finaliser: decorrelates (seed, index) pairs. */
    private static long mix(long z) {
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }
}
