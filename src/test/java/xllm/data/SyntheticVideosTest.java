package xllm.data;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;
import xllm.serve.Main;
import xllm.vision.VideoReader;

import java.awt.image.BufferedImage;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Collectors;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Synthetic videos: deterministic, decodable, and what the answers say is what the decoded frames show. */
class SyntheticVideosTest {

    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path dir;

    @Test
    void sameSeedWritesIdenticalFiles() throws Exception {
        SyntheticVideos.generate(dir.resolve("a"), 6, 7, "train");
        SyntheticVideos.generate(dir.resolve("b"), 6, 7, "train");
        assertArrayEquals(Files.readAllBytes(dir.resolve("a/train.jsonl")), Files.readAllBytes(dir.resolve("b/train.jsonl")));
        assertEquals(contents(dir.resolve("a/videos")), contents(dir.resolve("b/videos")));
        SyntheticVideos.generate(dir.resolve("c"), 6, 8, "train");
        assertNotEquals(contents(dir.resolve("a/videos")), contents(dir.resolve("c/videos")));
    }

    @Test
    void manifestAnswersMatchAttributes() throws Exception {
        SyntheticVideos.Summary summary = SyntheticVideos.generate(dir, 40, 3, "train");
        List<ConversationSample> samples = ConversationSample.readManifest(summary.manifest());
        List<JsonNode> lines = lines(summary.manifest());
        assertEquals(200, samples.size());
        assertEquals(summary.samples(), samples.size());
        Set<String> kinds = new HashSet<>();
        Set<String> formats = new HashSet<>();
        Set<String> directions = new HashSet<>();
        int chinese = 0;
        int changes = 0;
        for (int i = 0; i < lines.size(); i++) {
            JsonNode line = lines.get(i);
            ConversationSample sample = samples.get(i);
            assertTrue(sample.id().matches("clip-train-\\d{6}-q\\d"), sample.id());
            assertTrue(Files.isRegularFile(sample.video()), sample.video().toString());
            assertTrue(line.get("conversations").get(0).get("value").asText().startsWith("<video>\n"));
            JsonNode a = line.get("attributes");
            boolean zh = line.get("language").asText().equals("zh");
            if (zh) chinese++;
            String task = line.get("task").asText();
            kinds.add(task);
            formats.add(a.get("format").asText());
            directions.add(a.get("direction").asText());
            boolean change = a.get("colourChange").asBoolean();
            if (change && task.equals("caption")) changes++;
            assertEquals(change, !a.get("colour").asText().equals(a.get("colourEnd").asText()));
            SyntheticVideos.Direction direction = SyntheticVideos.Direction.valueOf(a.get("direction").asText().toUpperCase());
            SyntheticVideos.Speed speed = SyntheticVideos.Speed.valueOf(a.get("speed").asText().toUpperCase());
            // the path is what direction and speed say, and stays inside the frame
            int travel = speed.step * (SyntheticVideos.FRAMES - 1);
            assertEquals(direction.dx * travel, a.get("end").get("x").asInt() - a.get("start").get("x").asInt());
            assertEquals(direction.dy * travel, a.get("end").get("y").asInt() - a.get("start").get("y").asInt());
            int r = a.get("radius").asInt();
            for (String point : List.of("start", "end")) {
                for (String axis : List.of("x", "y")) {
                    int v = a.get(point).get(axis).asInt();
                    assertTrue(v - r >= 0 && v + r < 224, point + " " + axis + " " + v);
                }
            }
            Colour colours = new Colour(a);
            String answer = sample.answer();
            switch (task) {
                case "direction" -> assertEquals(zh ? direction.chinese : direction.english, answer);
                case "speed" -> assertEquals(zh ? speed.chinese : speed.adverb, answer);
                case "colour" -> assertEquals(zh
                        ? (change ? "先是" + colours.start.chinese + "，然后变成" + colours.end.chinese : colours.start.chinese)
                        : (change ? colours.start.english + ", then " + colours.end.english : colours.start.english), answer);
                case "caption", "describe" -> {
                    String shape = a.get("shape").asText();
                    SyntheticScenes.ShapeKind kind = SyntheticScenes.ShapeKind.valueOf(shape.toUpperCase());
                    if (zh) {
                        assertTrue(answer.contains(colours.start.chinese) && answer.contains(kind.chinese)
                                && answer.contains(direction.chinese) && answer.contains(speed.chineseAdverb), answer);
                        assertEquals(change, answer.contains("变成" + colours.end.chinese), answer);
                    } else {
                        assertTrue(answer.contains(colours.start.english + " " + shape) && answer.contains(speed.adverb)
                                && answer.contains(direction.english), answer);
                        assertEquals(change, answer.contains("turn"), answer);
                    }
                }
                default -> throw new AssertionError(line);
            }
        }
        assertEquals(Set.of("caption", "describe", "direction", "colour", "speed"), kinds);
        assertEquals(Set.of("mp4", "avi"), formats);
        assertEquals(Set.of("left", "right", "up", "down"), directions);
        assertTrue(changes >= 3 && changes <= 20, "colour changes " + changes);
        assertEquals(summary.chineseSamples(), chinese);
        double fraction = chinese / (double) lines.size();
        assertTrue(fraction > 0.12 && fraction < 0.28, "Chinese fraction " + fraction);
        assertTrue(summary.aviClips() >= 3 && summary.aviClips() <= 16, "AVI clips " + summary.aviClips());
    }

    /**
     * Decodes 4 frames (indices 2, 6, 10, 14) of every clip: the shape's centroid is where the attributes put it
     * (so it moves the stated way), and the palette colour nearest to its interior is the stated start colour before
     * the half-way frame and the end colour after it.
     */
    @Test
    void decodedFramesShowTheStatedMotionAndColours() throws Exception {
        SyntheticVideos.Summary summary = SyntheticVideos.generate(dir, 24, 11, "train");
        Map<String, JsonNode> byVideo = new LinkedHashMap<>();
        for (JsonNode line : lines(summary.manifest())) byVideo.put(line.get("video").asText(), line.get("attributes"));
        double worstCentre = 0;
        double worstColour = 0;
        Set<String> formats = new HashSet<>();
        for (Map.Entry<String, JsonNode> entry : byVideo.entrySet()) {
            JsonNode a = entry.getValue();
            VideoReader.VideoClip clip = VideoReader.read(dir.resolve(entry.getKey()), 4);
            assertEquals(new VideoReader.VideoInfo(a.get("format").asText(), a.get("format").asText().equals("avi")
                    ? "MJPG" : "avc1", 16, 8.0, 224, 224, 2.0), clip.info());
            assertArrayEquals(new int[]{2, 6, 10, 14}, clip.frameIndices());
            formats.add(a.get("format").asText());
            Colour colours = new Colour(a);
            int radius = a.get("radius").asInt();
            for (int i = 0; i < 4; i++) {
                int t = clip.frameIndices()[i];
                double expectedX = a.get("start").get("x").asInt()
                        + (a.get("end").get("x").asInt() - a.get("start").get("x").asInt()) * t / 15.0;
                double expectedY = a.get("start").get("y").asInt()
                        + (a.get("end").get("y").asInt() - a.get("start").get("y").asInt()) * t / 15.0;
                BufferedImage frame = clip.frames().get(i);
                double[] centroid = centroid(frame);
                // every shape is symmetric about its centre (the triangle is equilateral); pixel (x, y) covers
                // [x, x + 1), hence the half pixel. 1.5 px is well below one frame's motion (3 or 6 px)
                double centreError = Math.hypot(centroid[0] + 0.5 - expectedX, centroid[1] + 0.5 - expectedY);
                worstCentre = Math.max(worstCentre, centreError);
                assertTrue(centreError < 1.5, entry.getKey() + " frame " + t + " centroid "
                        + centroid[0] + "," + centroid[1] + " expected " + expectedX + "," + expectedY);
                double[] mean = meanColour(frame, expectedX, expectedY, radius / 3.0);
                SyntheticScenes.Colour expected = t < SyntheticVideos.FRAMES / 2 ? colours.start : colours.end;
                assertEquals(expected, SyntheticScenes.Colour.nearest(mean[0], mean[1], mean[2]),
                        entry.getKey() + " frame " + t);
                worstColour = Math.max(worstColour, Math.max(Math.abs(mean[0] - expected.red),
                        Math.max(Math.abs(mean[1] - expected.green), Math.abs(mean[2] - expected.blue))));
            }
        }
        assertEquals(Set.of("mp4", "avi"), formats);
        System.out.printf("worst centroid error %.2f px, worst colour error %.1f levels (incl. +-12 jitter)%n",
                worstCentre, worstColour);
    }

    @Test
    void evalSplitHasOtherIdsAndNoTrainMotion() throws Exception {
        SyntheticVideos.Summary train = SyntheticVideos.generate(dir, 20, 42, "train");
        SyntheticVideos.Summary eval = SyntheticVideos.generate(dir, 6, 42, "eval", train.layouts(), m -> { });
        Set<String> trainIds = ids(train.manifest());
        assertTrue(ids(eval.manifest()).stream().noneMatch(trainIds::contains));
        assertTrue(eval.layouts().stream().noneMatch(train.layouts()::contains));
        assertEquals(6, eval.layouts().size());
        // the same seed and split would redraw the train clips exactly; exclusion forces other motions
        SyntheticVideos.Summary again = SyntheticVideos.generate(dir.resolve("again"), 6, 42, "train", train.layouts(),
                m -> { });
        assertEquals(6, again.layouts().size());
        assertTrue(again.layouts().stream().noneMatch(train.layouts()::contains));
    }

    @Test
    void cliWritesBothSplitsAndReportsSpeed() throws Exception {
        CommandLine cl = Main.commandLine();
        StringWriter out = new StringWriter();
        cl.setOut(new PrintWriter(out));
        int code = cl.execute("bootstrap", "videos", "--out", dir.toString(), "--train", "6", "--eval", "3",
                "--seed", "5");
        assertEquals(0, code, out.toString());
        String text = out.toString();
        assertTrue(text.contains("clips/s"), text);
        assertTrue(text.contains("30 samples"), text);
        assertEquals(30, ConversationSample.readManifest(dir.resolve("train.jsonl")).size());
        assertEquals(15, ConversationSample.readManifest(dir.resolve("eval.jsonl")).size());
        try (Stream<Path> files = Files.list(dir.resolve("videos"))) {
            assertEquals(9, files.count());
        }
        System.out.println(text.strip());

        StringWriter help = new StringWriter();
        cl.setOut(new PrintWriter(help));
        cl.execute("bootstrap", "videos", "--help");
        assertTrue(help.toString().contains("--train"), help.toString());
    }

    /** Start and end palette colours of a clip's attributes. */
    private record Colour(SyntheticScenes.Colour start, SyntheticScenes.Colour end) {
        Colour(JsonNode attributes) {
            this(SyntheticScenes.Colour.valueOf(attributes.get("colour").asText().toUpperCase()),
                    SyntheticScenes.Colour.valueOf(attributes.get("colourEnd").asText().toUpperCase()));
        }
    }

    /** Centroid of the saturated pixels (the background is grey with luminance noise only). */
    private static double[] centroid(BufferedImage image) {
        double sumX = 0;
        double sumY = 0;
        int n = 0;
        for (int y = 0; y < image.getHeight(); y++) {
            for (int x = 0; x < image.getWidth(); x++) {
                int rgb = image.getRGB(x, y);
                int r = (rgb >> 16) & 0xFF, g = (rgb >> 8) & 0xFF, b = rgb & 0xFF;
                if (Math.max(r, Math.max(g, b)) - Math.min(r, Math.min(g, b)) > 60) {
                    sumX += x;
                    sumY += y;
                    n++;
                }
            }
        }
        assertTrue(n > 100, "too few shape pixels: " + n);
        return new double[]{sumX / n, sumY / n};
    }

    /** Mean RGB of the disc of radius {@code r} around (cx, cy), inside every shape. */
    private static double[] meanColour(BufferedImage image, double cx, double cy, double r) {
        double[] sum = new double[3];
        int n = 0;
        for (int y = (int) (cy - r); y <= cy + r; y++) {
            for (int x = (int) (cx - r); x <= cx + r; x++) {
                if (Math.hypot(x - cx, y - cy) > r) continue;
                int rgb = image.getRGB(x, y);
                sum[0] += (rgb >> 16) & 0xFF;
                sum[1] += (rgb >> 8) & 0xFF;
                sum[2] += rgb & 0xFF;
                n++;
            }
        }
        return new double[]{sum[0] / n, sum[1] / n, sum[2] / n};
    }

    private static List<JsonNode> lines(Path manifest) throws Exception {
        return Files.readAllLines(manifest, StandardCharsets.UTF_8).stream().map(l -> {
            try {
                return JSON.readTree(l);
            } catch (Exception e) {
                throw new RuntimeException(e);
            }
        }).toList();
    }

    private static Set<String> ids(Path manifest) throws Exception {
        return lines(manifest).stream().map(l -> l.get("id").asText()).collect(Collectors.toSet());
    }

    private static Map<String, String> contents(Path videos) throws Exception {
        Map<String, String> hashes = new HashMap<>();
        try (Stream<Path> files = Files.list(videos)) {
            for (Path file : files.toList()) {
                hashes.put(file.getFileName().toString(), java.util.HexFormat.of().formatHex(
                        java.security.MessageDigest.getInstance("SHA-256").digest(Files.readAllBytes(file))));
            }
        }
        return hashes;
    }
}
