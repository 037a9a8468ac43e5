package xllm.eval;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.TreeMap;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ImageQaEvaluationTest {

    private static Map<String, int[]> score(String answer) throws Exception {
        JsonNode attributes = new ObjectMapper().readTree("{\"shape\": \"circle\", \"colour\": \"red\", \"count\": 2}");
        Map<String, int[]> counts = new TreeMap<>();
        ImageQaEvaluation.scoreAttributes(attributes, answer, counts);
        return counts;
    }

    private static void assertRow(Map<String, int[]> counts, String row, int correct) {
        assertArrayEquals(new int[]{correct, 1}, counts.get("attributes/" + row), row);
    }

    @Test
    void aRightDescriptionScoresEveryAttribute() throws Exception {
        for (String answer : new String[]{"Two red circles.", "two RED circles", "两个红色的圆形。"}) {
            Map<String, int[]> counts = score(answer);
            assertRow(counts, "colour", 1);
            assertRow(counts, "shape", 1);
            assertRow(counts, "count", 1);
            assertRow(counts, "all", 1);
        }
    }

    @Test
    void eachWrongOrExtraValueCostsOnlyItsAttribute() throws Exception {
        Map<String, int[]> wrongCount = score("Three red circles.");
        assertRow(wrongCount, "count", 0);
        assertRow(wrongCount, "colour", 1);
        assertRow(wrongCount, "all", 0);
        Map<String, int[]> twoColours = score("Two red and blue circles.");
        assertRow(twoColours, "colour", 0);
        assertRow(twoColours, "shape", 1);
        Map<String, int[]> wrongShape = score("Two red squares.");
        assertRow(wrongShape, "shape", 0);
        assertRow(wrongShape, "count", 1);
        Map<String, int[]> nothing = score("I do not know.");
        assertRow(nothing, "all", 0);
        assertRow(nothing, "count", 0);
    }

    @Test
    void aFreeFormAnswerIsRightWhenItContainsAKeyword() throws Exception {
        JsonNode keywords = new ObjectMapper().readTree("[\"cat\", \"kitten\", \"猫\"]");
        org.junit.jupiter.api.Assertions.assertTrue(ImageQaEvaluation.containsKeyword("A ginger Cat on a sofa.", keywords));
        org.junit.jupiter.api.Assertions.assertTrue(ImageQaEvaluation.containsKeyword("一只猫。", keywords));
        org.junit.jupiter.api.Assertions.assertFalse(ImageQaEvaluation.containsKeyword("Two red circles.", keywords));
        org.junit.jupiter.api.Assertions.assertFalse(ImageQaEvaluation.containsKeyword("A cat.",
                new ObjectMapper().readTree("[]")), "no keywords: exact match only");
    }

    @Test
    void aMalformedManifestLineIsNamedBeforeAnythingRuns(@org.junit.jupiter.api.io.TempDir java.nio.file.Path dir)
            throws Exception {
        Files.write(dir.resolve("a.png"), new byte[]{1});
        java.nio.file.Path manifest = dir.resolve("eval.jsonl");
        java.nio.file.Files.writeString(manifest, GOOD.formatted("a") + "{\"id\": \"b\", \"image\n");
        java.io.IOException e = org.junit.jupiter.api.Assertions.assertThrows(java.io.IOException.class,
                () -> run(unusedModel(), manifest, null)); // parsing comes first
        org.junit.jupiter.api.Assertions.assertTrue(e.getMessage().startsWith(manifest + ":2: "), e.getMessage());
    }

    /** Evaluates {@code model} on the image samples of {@code manifest} (of {@code task}; null: all). */
    private static Map<String, ImageQaEvaluation.Score> run(ImageQaEvaluation.Model model, Path manifest, String task)
            throws IOException {
        return ImageQaEvaluation.run(model, ImageQaEvaluation.readSamples(manifest, 0, task, java.util.Set.of(xllm.model.Modality.IMAGE)), null);
    }

    /** A model that fails the test if asked anything. */
    private static ImageQaEvaluation.Model unusedModel() {
        return (conversation, maxTokens) -> {
            throw new AssertionError("the model ran on " + conversation.media());
        };
    }

    private static final String GOOD = "{\"id\": \"%s\", \"image\": \"a.png\", \"task\": \"colour\", \"conversations\": "
            + "[{\"from\": \"human\", \"value\": \"<image>\\nWhat colour?\"}, {\"from\": \"gpt\", \"value\": \"Red.\"}]}\n";

    @Test
    void aSampleWithoutConversationsStopsTheEvaluationBeforeTheModelRuns(@TempDir Path dir) throws Exception {
        Files.write(dir.resolve("a.png"), new byte[]{1});
        Path manifest = dir.resolve("eval.jsonl");
        Files.writeString(manifest, GOOD.formatted("a") + "{\"id\": \"b\", \"image\": \"a.png\"}\n");
        IOException e = assertThrows(IOException.class, () -> run(unusedModel(), manifest, null));
        assertTrue(e.getMessage().startsWith(manifest + ":2: ") && e.getMessage().contains("conversations"),
                e.getMessage());
    }

    @Test
    void hostileSamplesAreNamedByLineBeforeTheModelRuns(@TempDir Path dir) throws Exception {
        Files.write(dir.resolve("a.png"), new byte[]{1});
        Path manifest = dir.resolve("eval.jsonl");
        String turns = "\"conversations\": [{\"from\": \"human\", \"value\": \"<image>\\nWhat?\"}, "
                + "{\"from\": \"gpt\", \"value\": \"Red.\"}]";
        Map<String, String> cases = new java.util.LinkedHashMap<>();
        cases.put("{\"image\": \"a.png\", " + turns + "}", "\"id\"");
        cases.put("{\"id\": 3, \"image\": \"a.png\", " + turns + "}", "\"id\" must be a string");
        cases.put("{\"id\": \"b\", \"video\": \"a.png\", " + turns + "}", "\"image\"");
        cases.put("{\"id\": \"b\", \"image\": \"missing.png\", " + turns + "}", "image file not found");
        cases.put("{\"id\": \"b\", \"image\": [1], " + turns + "}", "\"image\" must be a path string");
        cases.put("{\"id\": \"b\", \"image\": \"a.png\", \"conversations\": \"hi\"}", "conversations");
        cases.put("{\"id\": \"b\", \"image\": \"a.png\", \"conversations\": [{\"from\": \"human\", \"value\": \"x\"}]}",
                "conversations");
        cases.put("{\"id\": \"b\", \"image\": \"a.png\", \"conversations\": [{\"from\": \"gpt\", \"value\": \"Red.\"}, "
                + "{\"from\": \"human\", \"value\": \"<image>\\nWhat?\"}]}", "human");
        cases.put("{\"id\": \"b\", \"image\": \"a.png\", \"conversations\": [{\"from\": \"human\", \"value\": 5}, "
                + "{\"from\": \"gpt\", \"value\": \"Red.\"}]}", "has no string \"value\"");
        cases.put("{\"id\": \"b\", \"image\": \"a.png\", \"conversations\": [{\"from\": \"human\", \"value\": \"x\"}, "
                + "{\"from\": \"gpt\", \"value\": \" \"}]}", "empty answer");
        cases.put("{\"id\": \"b\", \"image\": \"a.png\", \"task\": 7, " + turns + "}", "\"task\" must be a string");
        cases.put("{\"id\": \"b\", \"image\": \"a.png\", \"keywords\": \"cat\", " + turns + "}", "keywords");
        cases.put("{\"id\": \"b\", \"image\": \"a.png\", \"keywords\": [\"cat\", 2], " + turns + "}", "keywords");
        cases.put("{\"id\": \"b\", \"image\": \"a.png\", \"task\": \"describe\", \"attributes\": {\"colour\": \"red\", "
                + "\"shape\": \"circle\", \"count\": 99999999999999999999}, " + turns + "}", "count");
        cases.put("{\"id\": \"b\", \"image\": \"a.png\", \"task\": \"caption\", \"attributes\": {\"colour\": 1, "
                + "\"shape\": \"circle\", \"count\": 2}, " + turns + "}", "colour");
        for (var c : cases.entrySet()) {
            Files.writeString(manifest, GOOD.formatted("a") + c.getKey() + "\n");
            IOException e = assertThrows(IOException.class,
                    () -> run(unusedModel(), manifest, null), c.getKey());
            assertTrue(e.getMessage().startsWith(manifest + ":2: ") && e.getMessage().contains(c.getValue()),
                    c.getKey() + " -> " + e.getMessage());
        }
        Files.writeString(manifest, "");
        assertTrue(assertThrows(IOException.class, () -> run(unusedModel(), manifest, null)).getMessage().startsWith(manifest + ": no samples"));
        Files.writeString(manifest, GOOD.formatted("a"));
        IOException noTask = assertThrows(IOException.class, () -> run(unusedModel(), manifest, "count"));
        assertTrue(noTask.getMessage().startsWith(manifest + ": no samples of task \"count\""), noTask.getMessage());
    }

    @Test
    void aGoodManifestIsScored(@TempDir Path dir) throws Exception {
        Files.write(dir.resolve("a.png"), new byte[]{1});
        Path manifest = dir.resolve("eval.jsonl");
        Files.writeString(manifest, GOOD.formatted("a") + GOOD.formatted("b"));
        java.util.List<String> questions = new java.util.ArrayList<>();
        Map<String, ImageQaEvaluation.Score> scores = run((conversation, maxTokens) -> {
            assertEquals(dir.resolve("a.png"), conversation.media().get(xllm.model.Modality.IMAGE));
            String question = conversation.turns().get(0).question();
            questions.add(question);
            return questions.size() == 1 ? "red" : "blue";
        }, manifest, null);
        assertEquals(java.util.List.of("What colour?", "What colour?"), questions);
        assertEquals(1, scores.get("overall").correct());
        assertEquals(2, scores.get("colour/?").total());
    }

    @Test
    void anAudioSampleWithoutATypedQuestionIsSpokenAndGetsAReplyWer(@TempDir Path dir) throws Exception {
        Files.write(dir.resolve("q.wav"), new byte[]{1});
        Path manifest = dir.resolve("replies.jsonl");
        String sample = "{\"id\": \"%s\", \"audio\": \"q.wav\", \"task\": \"%s\", \"language\": \"en\", "
                + "\"conversations\": [{\"from\": \"human\", \"value\": \"%s\"}, {\"from\": \"gpt\", \"value\": \"%s\"}]}\n";
        Files.writeString(manifest, sample.formatted("r", "reply", "<audio>", "The sky is blue.")
                + sample.formatted("t", "asr", "<audio>\\nPlease transcribe.", "hello"));
        var samples = ImageQaEvaluation.readSamples(manifest, 0, null, java.util.Set.of(xllm.model.Modality.SPEECH));
        assertTrue(samples.get(0).spoken() && !samples.get(1).spoken());
        java.util.List<Integer> budgets = new java.util.ArrayList<>();
        var scores = ImageQaEvaluation.run((conversation, maxTokens) -> {
            budgets.add(maxTokens);
            String question = conversation.turns().get(0).question();
            return question.isEmpty() ? "The sky is red." : "hello";
        }, samples, null);
        assertEquals(java.util.List.of(48, 24), budgets);
        assertEquals(0.25, scores.get("reply/en").wer(), 1e-12); // blue → red, of 4 words
        assertTrue(Double.isNaN(scores.get("asr/en").wer()));
        assertEquals(1, scores.get("overall").correct());
    }

    @Test
    void normalisationTrimsPunctuationAndSpacesInLinearTime() {
        assertEquals("two red circles", ImageQaEvaluation.normalise("  Two red circles. "));
        assertEquals("两个红色的圆形", ImageQaEvaluation.normalise("两个红色的圆形。"));
        assertEquals("it's \"red", ImageQaEvaluation.normalise("\"It's \"red\"\"?!\n")); // the quote ends a run
        assertEquals("", ImageQaEvaluation.normalise("?! 。"));
        assertEquals("a-b", ImageQaEvaluation.normalise("(a-b)"));
        // a long run of punctuation inside a text made the trailing-run pattern backtrack quadratically (minutes)
        String inner = "a" + "!".repeat(200_000) + "a";
        assertEquals(inner, org.junit.jupiter.api.Assertions.assertTimeoutPreemptively(java.time.Duration.ofSeconds(5),
                () -> ImageQaEvaluation.normalise(inner + "...")));
    }
}
