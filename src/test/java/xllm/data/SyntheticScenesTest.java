package xllm.data;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;
import xllm.serve.Main;

import javax.imageio.ImageIO;
import java.awt.image.BufferedImage;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.ArrayDeque;
import java.util.HashMap;
import java.util.HashSet;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Collectors;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Synthetic scenes: deterministic, loadable, and what the answers say is what the pixels show. */
class SyntheticScenesTest {

    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path dir;

    @Test
    void sameSeedWritesIdenticalFiles() throws Exception {
        SyntheticScenes.generate(dir.resolve("a"), 40, 7, "train");
        SyntheticScenes.generate(dir.resolve("b"), 40, 7, "train");
        assertArrayEquals(Files.readAllBytes(dir.resolve("a/train.jsonl")), Files.readAllBytes(dir.resolve("b/train.jsonl")));
        assertEquals(imageHashes(dir.resolve("a/images")), imageHashes(dir.resolve("b/images")));
        SyntheticScenes.generate(dir.resolve("c"), 40, 8, "train");
        assertTrue(!imageHashes(dir.resolve("a/images")).equals(imageHashes(dir.resolve("c/images"))));
    }

    @Test
    void everySampleLoadsAndAnswersMatchAttributes() throws Exception {
        SyntheticScenes.Summary summary = SyntheticScenes.generate(dir, 120, 3, "train");
        List<ConversationSample> samples = ConversationSample.readManifest(summary.manifest());
        assertEquals(summary.samples(), samples.size());
        assertTrue(samples.size() >= 5 * 120);
        List<JsonNode> lines = lines(summary.manifest());
        Set<String> kinds = new HashSet<>();
        int chinese = 0;
        for (int i = 0; i < lines.size(); i++) {
            JsonNode line = lines.get(i);
            ConversationSample sample = samples.get(i);
            assertTrue(sample.id().matches("scene-train-\\d{6}-q\\d"), sample.id());
            assertTrue(Files.isRegularFile(sample.image()));
            JsonNode attributes = line.get("attributes");
            String answer = sample.answer();
            boolean zh = line.get("language").asText().equals("zh");
            if (zh) chinese++;
            kinds.add(line.get("task").asText());
            int count = attributes.get("count").asInt();
            assertEquals(count, attributes.get("objects").size());
            switch (line.get("task").asText()) {
                case "colour" -> assertEquals(zh ? colour(attributes).chinese : colour(attributes).english, answer);
                case "shape" -> assertEquals(zh ? shape(attributes).chinese : shape(attributes).english, answer);
                case "count" -> assertEquals(zh ? List.of("一个", "两个", "三个", "四个").get(count - 1)
                        : List.of("one", "two", "three", "four").get(count - 1), answer);
                case "caption", "describe" -> assertTrue(zh ? answer.contains(colour(attributes).chinese)
                        && answer.contains(shape(attributes).chinese)
                        : answer.contains(colour(attributes).english) && answer.contains(shape(attributes).english), answer);
                case "position" -> assertEquals(1, count);
                default -> throw new AssertionError(line);
            }
        }
        assertEquals(Set.of("caption", "colour", "shape", "count", "describe", "position"), kinds);
        assertEquals(summary.chineseSamples(), chinese);
        double fraction = chinese / (double) lines.size();
        assertTrue(fraction > 0.12 && fraction < 0.28, "Chinese fraction " + fraction);
        assertTrue(lines.stream().anyMatch(l -> l.get("conversations").get(1).get("value").asText().equals("两个红色的圆形。"))
                || lines.stream().anyMatch(l -> l.get("language").asText().equals("zh")
                && l.get("task").asText().equals("caption")));
    }

    @Test
    void pixelsShowTheStatedColourAndCount() throws Exception {
        SyntheticScenes.Summary summary = SyntheticScenes.generate(dir, 60, 11, "train");
        Map<String, JsonNode> byImage = new HashMap<>();
        for (JsonNode line : lines(summary.manifest())) byImage.put(line.get("image").asText(), line.get("attributes"));
        Set<Integer> counts = new HashSet<>();
        for (Map.Entry<String, JsonNode> entry : byImage.entrySet()) {
            BufferedImage image = ImageIO.read(dir.resolve(entry.getKey()).toFile());
            assertEquals(224, image.getWidth());
            assertEquals(224, image.getHeight());
            JsonNode attributes = entry.getValue();
            assertEquals(colour(attributes), dominantColour(image), entry.getKey());
            int count = attributes.get("count").asInt();
            assertEquals(count, connectedComponents(image), entry.getKey());
            counts.add(count);
        }
        assertEquals(Set.of(1, 2, 3, 4), counts);
    }

    @Test
    void evalSplitHasOtherIdsAndNoTrainImage() throws Exception {
        SyntheticScenes.Summary train = SyntheticScenes.generate(dir, 200, 42, "train");
        SyntheticScenes.Summary eval = SyntheticScenes.generate(dir, 50, 42, "eval", train.layouts(), m -> { });
        Set<String> trainIds = ids(train.manifest());
        Set<String> evalIds = ids(eval.manifest());
        assertTrue(evalIds.stream().noneMatch(trainIds::contains));
        assertTrue(eval.layouts().stream().noneMatch(train.layouts()::contains));
        assertEquals(50, eval.layouts().size());
        Set<String> trainHashes = Set.copyOf(imageHashesOf(dir.resolve("images"), "scene-train-").values());
        assertTrue(imageHashesOf(dir.resolve("images"), "scene-eval-").values().stream().noneMatch(trainHashes::contains));
    }

    @Test
    void cliWritesBothSplitsAndReportsSpeed() throws Exception {
        CommandLine cl = Main.commandLine();
        StringWriter out = new StringWriter();
        cl.setOut(new PrintWriter(out));
        int code = cl.execute("bootstrap", "scenes", "--out", dir.toString(), "--train", "600", "--eval", "20", "--seed", "5");
        assertEquals(0, code, out.toString());
        String text = out.toString();
        assertTrue(text.contains("train: 500/600 scenes"), text);
        assertTrue(text.contains("scenes/s"), text);
        assertTrue(Files.isRegularFile(dir.resolve("train.jsonl")));
        assertTrue(Files.isRegularFile(dir.resolve("eval.jsonl")));
        ConversationSample.readManifest(dir.resolve("eval.jsonl"));
        System.out.println(text.strip());

        StringWriter help = new StringWriter();
        cl.setOut(new PrintWriter(help));
        cl.execute("bootstrap", "scenes", "--help");
        assertTrue(help.toString().contains("--train"), help.toString());
    }

    private static SyntheticScenes.Colour colour(JsonNode attributes) {
        return SyntheticScenes.Colour.valueOf(attributes.get("colour").asText().toUpperCase());
    }

    private static SyntheticScenes.ShapeKind shape(JsonNode attributes) {
        return SyntheticScenes.ShapeKind.valueOf(attributes.get("shape").asText().toUpperCase());
    }

    /** Object pixels are the saturated ones (the background is grey with luminance noise only). */
    private static boolean saturated(int rgb, int threshold) {
        int r = (rgb >> 16) & 0xFF, g = (rgb >> 8) & 0xFF, b = rgb & 0xFF;
        return Math.max(r, Math.max(g, b)) - Math.min(r, Math.min(g, b)) > threshold;
    }

    /** Nearest palette colour to the mean of the strongly saturated pixels (object interiors, not AA edges). */
    private static SyntheticScenes.Colour dominantColour(BufferedImage image) {
        double r = 0, g = 0, b = 0;
        int n = 0;
        for (int y = 0; y < image.getHeight(); y++) {
            for (int x = 0; x < image.getWidth(); x++) {
                int rgb = image.getRGB(x, y);
                if (!saturated(rgb, 100)) continue;
                r += (rgb >> 16) & 0xFF;
                g += (rgb >> 8) & 0xFF;
                b += rgb & 0xFF;
                n++;
            }
        }
        assertTrue(n > 100, "too few object pixels: " + n);
        return SyntheticScenes.Colour.nearest(r / n, g / n, b / n);
    }

    /** 8-connected components of the object mask. */
    private static int connectedComponents(BufferedImage image) {
        int w = image.getWidth(), h = image.getHeight();
        boolean[] mask = new boolean[w * h];
        for (int y = 0; y < h; y++) for (int x = 0; x < w; x++) mask[y * w + x] = saturated(image.getRGB(x, y), 40);
        boolean[] seen = new boolean[w * h];
        int components = 0;
        ArrayDeque<Integer> queue = new ArrayDeque<>();
        for (int start = 0; start < mask.length; start++) {
            if (!mask[start] || seen[start]) continue;
            components++;
            seen[start] = true;
            queue.add(start);
            while (!queue.isEmpty()) {
                int p = queue.poll();
                int px = p % w, py = p / w;
                for (int dy = -1; dy <= 1; dy++) {
                    for (int dx = -1; dx <= 1; dx++) {
                        int qx = px + dx, qy = py + dy;
                        if (qx < 0 || qy < 0 || qx >= w || qy >= h) continue;
                        int q = qy * w + qx;
                        if (mask[q] && !seen[q]) {
                            seen[q] = true;
                            queue.add(q);
                        }
                    }
                }
            }
        }
        return components;
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

    private static Map<String, String> imageHashes(Path images) throws Exception {
        return imageHashesOf(images, "");
    }

    private static Map<String, String> imageHashesOf(Path images, String prefix) throws Exception {
        Map<String, String> hashes = new HashMap<>();
        try (Stream<Path> files = Files.list(images)) {
            for (Path file : files.filter(f -> f.getFileName().toString().startsWith(prefix)).toList()) {
                byte[] digest = MessageDigest.getInstance("SHA-256").digest(Files.readAllBytes(file));
                hashes.put(file.getFileName().toString(), HexFormat.of().formatHex(digest));
            }
        }
        return hashes;
    }
}
