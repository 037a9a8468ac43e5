package xllm.data;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.awt.Color;
import java.awt.Graphics2D;
import java.awt.RenderingHints;
import java.awt.Shape;
import java.awt.geom.Ellipse2D;
import java.awt.geom.Path2D;
import java.awt.geom.Rectangle2D;
import java.awt.image.BufferedImage;
import java.awt.image.DataBufferInt;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.io.Writer;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Consumer;
import java.util.stream.IntStream;
import java.util.zip.CRC32;
import java.util.zip.Deflater;
import java.util.zip.DeflaterOutputStream;

/**
 * Synthetic scenes for stage-2 image alignment (DESIGN.md §5: no caption set ships, so we draw our own).
 * A scene is a 224×224 PNG on a light, mildly noisy background holding N ∈ 1..4 copies of one (shape, colour),
 * each small or large, placed without overlap; because all objects share shape and colour, "what colour",
 * "what shape" and "how many" each have exactly one answer. Every scene yields several LLaVA-style single-turn
 * samples (DESIGN.md §4) — a caption, colour / shape / count questions, "describe the image", and for single
 * objects its position — about 20% of them asked and answered in Chinese. Each line also carries
 * {@code "attributes": {"shape", "colour", "count", "objects": [...]}} so evaluation can score exactly;
 * {@link ConversationSample#readManifest} ignores that field.
 *
 * <p>Everything is a function of (seed, split, scene index): the same call writes byte-identical JSONL and PNGs.
 * Layouts are drawn sequentially (so an eval split can exclude layouts used in train); rendering and PNG encoding
 * run in parallel. Tested in {@code SyntheticScenesTest} by re-detecting colour and counting connected components
 * in the written PNGs.
 */
public final class SyntheticScenes {

    public static final int IMAGE_SIZE = 224;

    /** The drawn shapes: English name, Chinese name, English plural. */
    public enum ShapeKind {
        CIRCLE("circle", "圆形", "circles"),
        SQUARE("square", "正方形", "squares"),
        TRIANGLE("triangle", "三角形", "triangles"),
        STAR("star", "星形", "stars");

        public final String english;
        public final String chinese;
        public final String plural;

        ShapeKind(String english, String chinese, String plural) {
            this.english = english;
            this.chinese = chinese;
            this.plural = plural;
        }
    }

    /** The palette: far apart in RGB so that a ±{@value #COLOUR_JITTER} jitter never makes two confusable. */
    public enum Colour {
        RED("red", "红色", 220, 40, 40),
        GREEN("green", "绿色", 40, 170, 60),
        BLUE("blue", "蓝色", 40, 80, 220),
        YELLOW("yellow", "黄色", 240, 205, 30),
        PURPLE("purple", "紫色", 140, 60, 190),
        ORANGE("orange", "橙色", 245, 130, 30);

        public final String english;
        public final String chinese;
        public final int red;
        public final int green;
        public final int blue;

        Colour(String english, String chinese, int red, int green, int blue) {
            this.english = english;
            this.chinese = chinese;
            this.red = red;
            this.green = green;
            this.blue = blue;
        }

        /** The palette entry nearest (squared RGB distance) to a measured colour. */
        public static Colour nearest(double red, double green, double blue) {
            Colour best = null;
            double bestDistance = Double.MAX_VALUE;
            for (Colour c : values()) {
                double d = sq(red - c.red) + sq(green - c.green) + sq(blue - c.blue);
                if (d < bestDistance) {
                    bestDistance = d;
                    best = c;
                }
            }
            return best;
        }

        private static double sq(double x) {
            return x * x;
        }
    }

    public static final int MAX_COUNT = 4;
    static final int COLOUR_JITTER = 12;
    /** Fraction of samples whose question and answer are Chinese. */
    static final double CHINESE_FRACTION = 0.2;
    private static final String[] COUNT_ENGLISH = {"zero", "one", "two", "three", "four"};
    private static final String[] COUNT_CHINESE = {"零个", "一个", "两个", "三个", "四个"};
    /** Minimum empty pixels between two objects' bounding circles, so each object is its own connected component. */
    private static final int GAP = 6;
    private static final ObjectMapper JSON = new ObjectMapper();

    /** One object: centre, bounding radius in pixels, and whether it is "large". */
    public record SceneObject(int centreX, int centreY, int radius, boolean large) {
        /** "top left", "center", "right", ... from which third of the image holds the centre. */
        public String region(boolean chinese) {
            int column = Math.min(2, centreX * 3 / IMAGE_SIZE);
            int row = Math.min(2, centreY * 3 / IMAGE_SIZE);
            String[][] english = {{"top left", "top", "top right"}, {"left", "center", "right"},
                    {"bottom left", "bottom", "bottom right"}};
            String[][] zh = {{"左上角", "上方", "右上角"}, {"左边", "中间", "右边"}, {"左下角", "下方", "右下角"}};
            return (chinese ? zh : english)[row][column];
        }
    }

    /** Everything needed to draw a scene and write its samples; {@code seed} drives the background noise. */
    public record Scene(String id, ShapeKind shape, Colour colour, int red, int green, int blue,
                        int background, List<SceneObject> objects, long seed) {
        public int count() {
            return objects.size();
        }

        /** Identity of the drawn content (not of the noise): two scenes with equal layouts look the same. */
        public String layout() {
            StringBuilder sb = new StringBuilder(shape.english).append('|').append(colour.english);
            objects.stream().sorted(Comparator.comparingInt(SceneObject::centreX).thenComparingInt(SceneObject::centreY))
                    .forEach(o -> sb.append('|').append(o.centreX).append(',').append(o.centreY).append(',').append(o.radius));
            return sb.toString();
        }
    }

    /** What {@link #generate} wrote. {@code layouts} lets a later split exclude these exact images. */
    public record Summary(Path manifest, int scenes, int samples, int chineseSamples, Set<String> layouts,
                          double seconds) {
        public double scenesPerSecond() {
            return scenes / Math.max(seconds, 1e-9);
        }
    }

    private SyntheticScenes() {
    }

    /** {@link #generate(Path, int, long, String, Set, Consumer)} with no excluded layouts and no progress. */
    public static Summary generate(Path outDir, int scenes, long seed, String split) throws IOException {
        return generate(outDir, scenes, seed, split, Set.of(), message -> { });
    }

    /**
     * Writes {@code outDir/images/scene-<split>-NNNNNN.png} and {@code outDir/<split>.jsonl}.
     * Scenes whose layout is in {@code excludedLayouts} (or repeats one earlier in this split) are redrawn, so a
     * held-out split never shows an image of the training split. {@code progress} receives a line every 500 scenes.
     */
    public static Summary generate(Path outDir, int scenes, long seed, String split, Set<String> excludedLayouts,
                                   Consumer<String> progress) throws IOException {
        if (scenes < 1) throw new IllegalArgumentException("scenes must be >= 1, got " + scenes);
        if (!split.matches("[a-z0-9_]+")) throw new IllegalArgumentException("split must match [a-z0-9_]+: " + split);
        long start = System.nanoTime();
        Path images = outDir.resolve("images");
        Files.createDirectories(images);

        // step 1: layouts, sequentially, so exclusion of repeated layouts is deterministic
        long splitSeed = mix(seed ^ mix(split.hashCode()));
        List<Scene> drawn = new ArrayList<>(scenes);
        Set<String> layouts = new HashSet<>();
        for (int index = 0; index < scenes; index++) {
            String id = String.format(Locale.ROOT, "scene-%s-%06d", split, index);
            SplittableRandom random = new SplittableRandom(mix(splitSeed + index));
            Scene scene;
            do {
                scene = drawScene(id, random);
            } while (excludedLayouts.contains(scene.layout()) || !layouts.add(scene.layout()));
            drawn.add(scene);
        }

        // step 2: render and encode in parallel (each scene's noise comes from its own seed)
        AtomicInteger done = new AtomicInteger();
        try {
            IntStream.range(0, scenes).parallel().forEach(i -> {
                Scene scene = drawn.get(i);
                try {
                    Files.write(images.resolve(scene.id() + ".png"), png(render(scene)));
                } catch (IOException e) {
                    throw new UncheckedIOException(e);
                }
                int n = done.incrementAndGet();
                if (n % 500 == 0) {
                    progress.accept(String.format(Locale.ROOT, "%s: %d/%d scenes", split, n, scenes));
                }
            });
        } catch (UncheckedIOException e) {
            throw e.getCause();
        }

        // step 3: the manifest, in scene order
        Path manifest = outDir.resolve(split + ".jsonl");
        int samples = 0;
        int chinese = 0;
        Path temp = outDir.resolve(split + ".jsonl.tmp");
        try (Writer writer = Files.newBufferedWriter(temp, StandardCharsets.UTF_8)) {
            for (Scene scene : drawn) {
                SplittableRandom language = new SplittableRandom(mix(scene.seed() + 1));
                for (Sample sample : samples(scene, language)) {
                    writer.write(JSON.writeValueAsString(json(scene, sample)));
                    writer.write('\n');
                    samples++;
                    if (sample.chinese) chinese++;
                }
            }
        }
        Files.move(temp, manifest, java.nio.file.StandardCopyOption.REPLACE_EXISTING,
                java.nio.file.StandardCopyOption.ATOMIC_MOVE);
        return new Summary(manifest, scenes, samples, chinese, Set.copyOf(layouts),
                (System.nanoTime() - start) / 1e9);
    }

    /** One (shape, colour), 1..4 objects of random size at non-overlapping random positions. */
    static Scene drawScene(String id, SplittableRandom random) {
        ShapeKind shape = ShapeKind.values()[random.nextInt(ShapeKind.values().length)];
        Colour colour = Colour.values()[random.nextInt(Colour.values().length)];
        int count = 1 + random.nextInt(MAX_COUNT);
        int red = clamp(colour.red + random.nextInt(-COLOUR_JITTER, COLOUR_JITTER + 1));
        int green = clamp(colour.green + random.nextInt(-COLOUR_JITTER, COLOUR_JITTER + 1));
        int blue = clamp(colour.blue + random.nextInt(-COLOUR_JITTER, COLOUR_JITTER + 1));
        int background = 0xFF000000 | (random.nextInt(228, 246) << 16) | (random.nextInt(228, 246) << 8)
                | random.nextInt(228, 246);
        List<SceneObject> objects = place(count, random);
        return new Scene(id, shape, colour, red, green, blue, background, List.copyOf(objects), random.nextLong());
    }

    /** Rejection sampling of bounding circles; after many failures the sizes are redrawn, last resort all small. */
    private static List<SceneObject> place(int count, SplittableRandom random) {
        for (int attempt = 0; ; attempt++) {
            List<SceneObject> objects = new ArrayList<>();
            boolean forceSmall = attempt >= 20;
            for (int k = 0; k < count; k++) {
                boolean large = !forceSmall && random.nextBoolean();
                int radius = large ? random.nextInt(30, 41) : random.nextInt(14, 21);
                SceneObject placed = null;
                for (int tries = 0; tries < 200 && placed == null; tries++) {
                    int x = random.nextInt(radius + 4, IMAGE_SIZE - radius - 4);
                    int y = random.nextInt(radius + 4, IMAGE_SIZE - radius - 4);
                    boolean free = true;
                    for (SceneObject o : objects) {
                        double distance = Math.hypot(x - o.centreX(), y - o.centreY());
                        if (distance < radius + o.radius() + GAP) {
                            free = false;
                            break;
                        }
                    }
                    if (free) placed = new SceneObject(x, y, radius, large);
                }
                if (placed == null) break;
                objects.add(placed);
            }
            if (objects.size() == count) return objects;
        }
    }

    /** Antialiased java.awt drawing (headless) on a noisy background. */
    public static BufferedImage render(Scene scene) {
        BufferedImage image = new BufferedImage(IMAGE_SIZE, IMAGE_SIZE, BufferedImage.TYPE_INT_RGB);
        SplittableRandom noise = new SplittableRandom(scene.seed());
        int[] pixels = ((DataBufferInt) image.getRaster().getDataBuffer()).getData();
        int br = (scene.background() >> 16) & 0xFF;
        int bg = (scene.background() >> 8) & 0xFF;
        int bb = scene.background() & 0xFF;
        for (int i = 0; i < pixels.length; i++) {
            int n = noise.nextInt(-6, 7); // mild luminance noise: keeps the background grey, never saturated
            pixels[i] = (clamp(br + n) << 16) | (clamp(bg + n) << 8) | clamp(bb + n);
        }
        Graphics2D g = image.createGraphics();
        try {
            g.setRenderingHint(RenderingHints.KEY_ANTIALIASING, RenderingHints.VALUE_ANTIALIAS_ON);
            g.setRenderingHint(RenderingHints.KEY_STROKE_CONTROL, RenderingHints.VALUE_STROKE_PURE);
            g.setColor(new Color(scene.red(), scene.green(), scene.blue()));
            for (SceneObject o : scene.objects()) g.fill(outline(scene.shape(), o));
        } finally {
            g.dispose();
        }
        return image;
    }

    /** Every outline fits inside the object's bounding circle (radius r). */
    private static Shape outline(ShapeKind shape, SceneObject o) {
        double x = o.centreX();
        double y = o.centreY();
        double r = o.radius();
        return switch (shape) {
            case CIRCLE -> new Ellipse2D.Double(x - r, y - r, 2 * r, 2 * r);
            case SQUARE -> {
                double half = r * 0.7; // corners at 0.99 r
                yield new Rectangle2D.Double(x - half, y - half, 2 * half, 2 * half);
            }
            case TRIANGLE -> polygon(x, y, r, r, 3);
            case STAR -> polygon(x, y, r, r * 0.45, 10);
        };
    }

    /** A regular polygon (or, with innerRadius < radius, a star) with its first vertex pointing up. */
    private static Path2D polygon(double x, double y, double radius, double innerRadius, int vertices) {
        Path2D path = new Path2D.Double();
        for (int k = 0; k < vertices; k++) {
            double angle = -Math.PI / 2 + 2 * Math.PI * k / vertices;
            double rk = (vertices == 10 && k % 2 == 1) ? innerRadius : radius;
            double px = x + rk * Math.cos(angle);
            double py = y + rk * Math.sin(angle);
            if (k == 0) path.moveTo(px, py);
            else path.lineTo(px, py);
        }
        path.closePath();
        return path;
    }

    /**
     * A minimal PNG encoder (8-bit RGB, filter "Sub" on every row, zlib at speed level): several times faster
     * than ImageIO's writer, and the bytes depend on nothing but the pixels, so hashes are stable across JDKs.
     */
    static byte[] png(BufferedImage image) throws IOException {
        int width = image.getWidth();
        int height = image.getHeight();
        int[] pixels = image.getType() == BufferedImage.TYPE_INT_RGB
                ? ((DataBufferInt) image.getRaster().getDataBuffer()).getData() // no per-pixel colour-model call
                : image.getRGB(0, 0, width, height, null, 0, width);
        byte[] raw = new byte[height * (1 + 3 * width)]; // per row: filter byte, then RGB differences
        int at = 0;
        for (int y = 0; y < height; y++) {
            raw[at++] = 1; // Sub: each byte minus the same channel of the pixel to its left
            int previous = 0;
            for (int x = 0; x < width; x++) {
                int rgb = pixels[y * width + x];
                raw[at++] = (byte) (((rgb >> 16) & 0xFF) - ((previous >> 16) & 0xFF));
                raw[at++] = (byte) (((rgb >> 8) & 0xFF) - ((previous >> 8) & 0xFF));
                raw[at++] = (byte) ((rgb & 0xFF) - (previous & 0xFF));
                previous = rgb;
            }
        }
        Deflater deflater = new Deflater(Deflater.BEST_SPEED);
        ByteArrayOutputStream compressed = new ByteArrayOutputStream(raw.length / 2);
        try (DeflaterOutputStream zlib = new DeflaterOutputStream(compressed, deflater, 1 << 16)) {
            zlib.write(raw);
        } finally {
            deflater.end();
        }
        ByteArrayOutputStream bytes = new ByteArrayOutputStream(compressed.size() + 64);
        bytes.write(new byte[]{(byte) 0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'});
        ByteBuffer header = ByteBuffer.allocate(13).putInt(width).putInt(height)
                .put((byte) 8).put((byte) 2).put((byte) 0).put((byte) 0).put((byte) 0); // 8 bit, RGB, no interlace
        chunk(bytes, "IHDR", header.array());
        chunk(bytes, "IDAT", compressed.toByteArray());
        chunk(bytes, "IEND", new byte[0]);
        return bytes.toByteArray();
    }

    private static void chunk(ByteArrayOutputStream out, String type, byte[] data) {
        byte[] typeBytes = type.getBytes(StandardCharsets.US_ASCII);
        CRC32 crc = new CRC32();
        crc.update(typeBytes);
        crc.update(data);
        out.writeBytes(ByteBuffer.allocate(4).putInt(data.length).array());
        out.writeBytes(typeBytes);
        out.writeBytes(data);
        out.writeBytes(ByteBuffer.allocate(4).putInt((int) crc.getValue()).array());
    }

    /** One question-answer pair about a scene. */
    record Sample(String id, String question, String answer, boolean chinese, String kind) {
    }

    /** q0 caption, q1 colour, q2 shape, q3 count, q4 describe, q5 position (single object only). */
    static List<Sample> samples(Scene scene, SplittableRandom language) {
        int count = scene.count();
        boolean one = count == 1;
        String english = captionEnglish(scene);
        String chineseCaption = COUNT_CHINESE[count] + scene.colour().chinese + "的" + scene.shape().chinese + "。";
        List<Sample> out = new ArrayList<>();
        String[][] pairs = {
                {"caption", "Write a short caption for the image.", english,
                        "为这张图片写一句简短的说明。", chineseCaption},
                {"colour", one ? "What colour is the shape?" : "What colour are the shapes?", scene.colour().english,
                        one ? "这个图形是什么颜色？" : "这些图形是什么颜色？", scene.colour().chinese},
                {"shape", one ? "What shape is it?" : "What shape are they?", scene.shape().english,
                        one ? "它是什么形状？" : "它们是什么形状？", scene.shape().chinese},
                {"count", "How many shapes are there?", COUNT_ENGLISH[count],
                        "图中有几个图形？", COUNT_CHINESE[count]},
                {"describe", "Describe the image.", english, "描述这张图片。", chineseCaption},
        };
        for (String[] p : pairs) {
            boolean chinese = language.nextDouble() < CHINESE_FRACTION;
            out.add(new Sample(scene.id() + "-q" + out.size(), chinese ? p[3] : p[1], chinese ? p[4] : p[2],
                    chinese, p[0]));
        }
        if (one) {
            boolean chinese = language.nextDouble() < CHINESE_FRACTION;
            SceneObject o = scene.objects().get(0);
            out.add(new Sample(scene.id() + "-q" + out.size(),
                    chinese ? scene.shape().chinese + "在图片的哪个位置？" : "Where is the " + scene.shape().english + "?",
                    chinese ? o.region(true) : o.region(false), chinese, "position"));
        }
        return out;
    }

    /** "One red circle." / "Two red circles." */
    static String captionEnglish(Scene scene) {
        int count = scene.count();
        String number = COUNT_ENGLISH[count];
        return Character.toUpperCase(number.charAt(0)) + number.substring(1) + " " + scene.colour().english + " "
                + (count == 1 ? scene.shape().english : scene.shape().plural) + ".";
    }

    private static ObjectNode json(Scene scene, Sample sample) {
        ObjectNode node = JSON.createObjectNode();
        node.put("id", sample.id());
        node.put("image", "images/" + scene.id() + ".png");
        ArrayNode conversations = node.putArray("conversations");
        conversations.addObject().put("from", "human").put("value", "<image>\n" + sample.question());
        conversations.addObject().put("from", "gpt").put("value", sample.answer());
        node.put("task", sample.kind());
        node.put("language", sample.chinese() ? "zh" : "en");
        ObjectNode attributes = node.putObject("attributes");
        attributes.put("shape", scene.shape().english);
        attributes.put("colour", scene.colour().english);
        attributes.put("count", scene.count());
        ArrayNode objects = attributes.putArray("objects");
        for (SceneObject o : scene.objects()) {
            objects.addObject().put("x", o.centreX()).put("y", o.centreY()).put("radius", o.radius())
                    .put("size", o.large() ? "large" : "small").put("region", o.region(false));
        }
        return node;
    }

    private static int clamp(int value) {
        return Math.max(0, Math.min(255, value));
    }

    /** SplitMix64 finaliser: decorrelates (seed, index) pairs. */
    private static long mix(long z) {
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }
}
