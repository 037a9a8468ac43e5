package xllm.eval;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;

import java.util.Map;
import java.util.TreeMap;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

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
        java.nio.file.Path manifest = dir.resolve("eval.jsonl");
        java.nio.file.Files.writeString(manifest, "{\"id\": \"a\", \"image\": \"a.png\"}\n{\"id\": \"b\", \"image\n");
        java.io.IOException e = org.junit.jupiter.api.Assertions.assertThrows(java.io.IOException.class,
                () -> ImageQaEvaluation.run(null, manifest, 0, null)); // no model needed: parsing comes first
        org.junit.jupiter.api.Assertions.assertTrue(e.getMessage().startsWith(manifest + ":2: "), e.getMessage());
    }
}
