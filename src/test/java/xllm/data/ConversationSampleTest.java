package xllm.data;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Strict reading of LLaVA-style manifests: roles, order, and media confined to the manifest's directory tree. */
class ConversationSampleTest {

    @TempDir
    Path dir;

    private static String row(String id, String field, String media) {
        return "{\"id\": \"" + id + "\", \"" + field + "\": \"" + media + "\", \"conversations\": ["
                + "{\"from\": \"human\", \"value\": \"<" + field + ">\\nWhat is it?\"}, {\"from\": \"gpt\", \"value\": \"A cat.\"}]}";
    }

    private Path manifest(String... rows) throws IOException {
        Path data = Files.createDirectories(dir.resolve("data"));
        return Files.write(data.resolve("train.jsonl"), List.of(rows));
    }

    private static void assertRefused(Path manifest, String... parts) {
        IOException error = assertThrows(IOException.class, () -> ConversationSample.readManifest(manifest));
        for (String part : parts) assertTrue(error.getMessage().contains(part), error.getMessage());
    }

    @Test
    void mediaInsideTheManifestTreeIsRead() throws IOException {
        Path images = Files.createDirectories(dir.resolve("data/images"));
        Files.write(images.resolve("cat.png"), new byte[] {1});
        Path manifest = manifest(row("a", "image", "images/cat.png"), row("b", "image", "images/../images/cat.png"));
        List<ConversationSample> samples = ConversationSample.readManifest(manifest);
        assertEquals(images.resolve("cat.png"), samples.get(0).image());
        assertEquals(images.resolve("cat.png"), samples.get(1).image());
    }

    @Test
    void mediaOutsideTheManifestTreeIsRefusedNamingFileAndLine() throws IOException {
        Path outside = Files.write(dir.resolve("secret.wav"), new byte[] {1});
        Files.write(Files.createDirectories(dir.resolve("data")).resolve("ok.png"), new byte[] {1});
        Path manifest = manifest(row("a", "image", "ok.png"), row("b", "audio", "../secret.wav"));
        assertRefused(manifest, manifest + ":2: ", "audio", "../secret.wav", "outside " + manifest.getParent(),
                "--allow-media-outside-manifest");
        Path absolute = manifest(row("a", "image", outside.toString()));
        assertRefused(absolute, absolute + ":1: ", outside.toString(), "outside");
    }

    @Test
    void aSymbolicLinkLeadingOutIsRefused() throws IOException {
        Path outside = Files.write(dir.resolve("secret.png"), new byte[] {1});
        Path data = Files.createDirectories(dir.resolve("data"));
        Files.createSymbolicLink(data.resolve("innocent.png"), outside);
        Path manifest = manifest(row("a", "image", "innocent.png"));
        assertRefused(manifest, manifest + ":1: ", "innocent.png", "symbolic link", outside.toString());
    }

    @Test
    void theOptOutAllowsMediaAnywhere() throws IOException {
        Path outside = Files.write(dir.resolve("photo.png"), new byte[] {1});
        Path manifest = manifest(row("a", "image", "../photo.png"));
        String previous = System.setProperty(MediaPaths.ALLOW_OUTSIDE_PROPERTY, "true");
        try {
            assertEquals(outside, ConversationSample.readManifest(manifest).get(0).image());
        } finally {
            if (previous == null) System.clearProperty(MediaPaths.ALLOW_OUTSIDE_PROPERTY);
            else System.setProperty(MediaPaths.ALLOW_OUTSIDE_PROPERTY, previous);
        }
    }

    @Test
    void aMediaPathThatIsADirectoryOrMissingIsNamed() throws IOException {
        Files.createDirectories(dir.resolve("data/clip.wav"));
        Path manifest = manifest(row("a", "audio", "clip.wav"));
        assertRefused(manifest, manifest + ":1: ", dir.resolve("data/clip.wav") + ": is a directory, not an audio file");
        Path missing = manifest(row("a", "image", "gone.png"));
        assertRefused(missing, missing + ":1: ", "image file not found: " + dir.resolve("data/gone.png"));
    }

    @Test
    void turnsInTheWrongOrderAreRefused() throws IOException {
        Files.write(Files.createDirectories(dir.resolve("data")).resolve("cat.png"), new byte[] {1});
        Path manifest = manifest(row("a", "image", "cat.png"), "{\"id\": \"b\", \"image\": \"cat.png\", \"conversations\": ["
                + "{\"from\": \"gpt\", \"value\": \"A cat.\"}, {\"from\": \"human\", \"value\": \"<image>\\nWhat is it?\"}]}");
        assertRefused(manifest, manifest + ":2: ", "alternate human, gpt", "got [gpt, human]");
    }

    private static String turn(String from, String value) {
        return "{\"from\": \"" + from + "\", \"value\": \"" + value + "\"}";
    }

    /** A sample with the given media fields ({"image", "cat.png", ...}) and turns (human, gpt, human, gpt, ...). */
    private static String sample(String id, String[] media, String... values) {
        StringBuilder row = new StringBuilder("{\"id\": \"" + id + "\"");
        for (int i = 0; i < media.length; i += 2) row.append(", \"").append(media[i]).append("\": \"").append(media[i + 1]).append('"');
        row.append(", \"conversations\": [");
        for (int i = 0; i < values.length; i++) row.append(i > 0 ? ", " : "").append(turn(i % 2 == 0 ? "human" : "gpt", values[i]));
        return row.append("]}").toString();
    }

    private Path withMedia() throws IOException {
        Path data = Files.createDirectories(dir.resolve("data"));
        for (String name : new String[] {"cat.png", "clip.mp4", "q.wav"}) Files.write(data.resolve(name), new byte[] {1});
        return data;
    }

    @Test
    void multiTurnSamplesKeepEveryTurnAndAttachMediaByPlaceholder() throws IOException {
        Path data = withMedia();
        Path manifest = manifest(sample("a", new String[] {"image", "cat.png", "audio", "q.wav"},
                "<image>\\nDescribe the image.", "Two red circles.", "<audio>", "red", "How many?", "two"));
        ConversationSample s = ConversationSample.readManifest(manifest).get(0);
        assertEquals(data.resolve("cat.png"), s.image());
        assertEquals(data.resolve("q.wav"), s.audio());
        assertEquals(List.of(new ConversationSample.Turn(true, false, false, "Describe the image.", "Two red circles."),
                new ConversationSample.Turn(false, false, true, "", "red"),
                new ConversationSample.Turn(false, false, false, "How many?", "two")), s.turns());
        assertEquals("Describe the image.", s.question());
        assertEquals("Two red circles.", s.answer());
    }

    @Test
    void aMediumWithoutPlaceholderBelongsToTheFirstTurn() throws IOException {
        withMedia();
        Path manifest = manifest(sample("a", new String[] {"video", "clip.mp4"}, "Which way?", "left", "How fast?", "slowly"));
        ConversationSample s = ConversationSample.readManifest(manifest).get(0);
        assertTrue(s.turns().get(0).video());
        assertTrue(!s.turns().get(1).video());
    }

    @Test
    void llavasJsonArrayFormatIsRead() throws IOException {
        Path data = withMedia();
        Path manifest = Files.writeString(data.resolve("llava.json"), "\uFEFF  [\n"
                + sample("a", new String[] {"image", "cat.png"}, "<image>\\nWhat is it?", "A cat.") + ",\n"
                + sample("b", new String[] {"audio", "q.wav"}, "<audio>", "yes", "Sure?", "yes") + "\n]\n");
        List<ConversationSample> samples = ConversationSample.readManifest(manifest);
        assertEquals(2, samples.size());
        assertEquals(data.resolve("cat.png"), samples.get(0).image());
        assertEquals(2, samples.get(1).turns().size());
        assertTrue(samples.get(1).turns().get(0).audio());
    }

    @Test
    void arrayErrorsNameFileIndexAndLine() throws IOException {
        withMedia();
        Path manifest = dir.resolve("data/llava.json");
        String good = sample("a", new String[] {"image", "cat.png"}, "<image>\\nWhat is it?", "A cat.");
        for (String[] c : new String[][] {
                {"[" + good + ",\n" + sample("b", new String[] {}, "<image>\\nWhat?", "x") + "]", "[1] (line 2): ",
                        "<image>", "no \"image\" field"},
                {"[" + good + ",\n 3]", "[1] (line 2): ", "expected a JSON object, not number"},
                {"[" + good + "] {}", ": a second value follows the array"},
                {"[" + good + ",\n{\"id\": \"a\", \"id\": \"b\"}]", "[1] (line 2): ", "not valid JSON", "Duplicate field"},
                {"[" + good, "[1]: ", "not valid JSON: Unexpected end-of-input"},
                {"[]", ": no samples"}}) {
            Files.writeString(manifest, c[0]);
            IOException e = assertThrows(IOException.class, () -> ConversationSample.readManifest(manifest));
            assertTrue(e.getMessage().startsWith(manifest.toString()), e.getMessage());
            for (int i = 1; i < c.length; i++) assertTrue(e.getMessage().contains(c[i]), e.getMessage());
        }
    }

    @Test
    void anArrayElementOverTheLimitIsRefused() throws IOException {
        Path manifest = withMedia().resolve("big.json");
        String big = sample("a", new String[] {}, "x".repeat(JsonLines.MAX_LINE_CHARS), "y");
        Files.writeString(manifest, "[" + big + "]");
        IOException e = assertThrows(IOException.class, () -> ConversationSample.readManifest(manifest));
        assertTrue(e.getMessage().contains("[0] (line 1): element longer than"), e.getMessage());
    }

    @Test
    void everyBrokenRuleIsNamedWithFileAndLine() throws IOException {
        withMedia();
        String[] image = {"image", "cat.png"};
        String[] imageAndAudio = {"image", "cat.png", "audio", "q.wav"};
        for (String[] c : new String[][] {
                {sample("a", image, "<image>\\nWhat?", "x", "More?"), "alternate human, gpt", "[human, gpt, human]"},
                {sample("a", image), "alternate human, gpt", "got []"},
                {sample("a", image, "<image>\\nWhat?", "x", "<image>\\nAgain?", "y"), "<image> appears in turns 0 and 2"},
                {sample("a", image, "<image>\\n<video>What?", "x"), "turn 0 has <video>", "no \"video\" field"},
                {sample("a", image, "<image>", "x"), "turn 0 asks nothing"},
                {sample("a", imageAndAudio, "<image>\\nWhat?", "x", "", "y"), "turn 2 asks nothing"},
                {sample("a", image, "<image>\\nWhat?", "x", "And?", ""), "empty answer in turn 3"}}) {
            Path manifest = manifest(row("ok", "image", "cat.png"), c[0]);
            String[] parts = new String[c.length];
            parts[0] = manifest + ":2: ";
            System.arraycopy(c, 1, parts, 1, c.length - 1);
            assertRefused(manifest, parts);
        }
    }

    @Test
    void theSingleTurnCheckStillRefusesTwoPairs() throws IOException {
        com.fasterxml.jackson.databind.JsonNode conversations = new com.fasterxml.jackson.databind.ObjectMapper().readTree(
                "[" + turn("human", "a") + "," + turn("gpt", "b") + "," + turn("human", "c") + "," + turn("gpt", "d") + "]");
        IOException e = assertThrows(IOException.class, () -> ConversationSample.requireHumanThenGpt(conversations, "f:1"));
        assertEquals("f:1: conversations must be one human turn then one gpt turn, got [human, gpt, human, gpt]",
                e.getMessage());
        ConversationSample.requireAlternatingTurns(conversations, "f:1");
    }

    @Test
    void trainingManifestsAreReadAsStrictlyAsEvaluationOnes() throws IOException {
        // the same JsonLines reader: a key given twice, a second value, bad bytes are named by file:line, not dropped
        Files.write(dir.resolve("ok.png"), new byte[] {1});
        String good = row("a", "image", "ok.png");
        Path manifest = dir.resolve("train.jsonl");
        for (String[] c : new String[][] {
                {good + "\n" + "{\"id\":\"b\",\"id\":\"c\"}\n", ":2: not valid JSON"},
                {good + " {}\n", ":1: not valid JSON: a second value follows the first"},
                {"[1]\n", "[0] (line 1): expected a JSON object, not number"}}) {
            Files.writeString(manifest, c[0]);
            IOException e = assertThrows(IOException.class, () -> ConversationSample.readManifest(manifest));
            assertTrue(e.getMessage().startsWith(manifest.toString()) && e.getMessage().contains(c[1]), e.getMessage());
        }
        Files.write(manifest, new byte[] {'{', '"', (byte) 0xff, '"', ':', '1', '}', '\n'});
        IOException e = assertThrows(IOException.class, () -> AsrSample.readManifest(manifest));
        assertEquals(manifest + ":1: not UTF-8 text", e.getMessage());
    }
}
