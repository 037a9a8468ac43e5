package xllm.data;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The stage-3 instruction set on a tiny build (14 train, 8 eval): every task in both splits, the four held-out
 * properties (image, clip, spoken text, voice), the manifests read back by the strict readers, and determinism.
 */
class InstructionSetTest {

    @TempDir
    static Path dir;

    private static Path out;
    private static InstructionSet.Summary summary;
    private static final ObjectMapper JSON = new ObjectMapper();

    @BeforeAll
    static void build() throws IOException {
        out = dir.resolve("instructions");
        summary = InstructionSet.build(out, 14, 8, 7, 2, false);
    }

    private static List<JsonNode> lines(String file) throws IOException {
        List<JsonNode> lines = new ArrayList<>();
        for (String line : Files.readAllLines(out.resolve(file))) lines.add(JSON.readTree(line));
        return lines;
    }

    @Test
    void everyTaskAppearsInBothSplitsAndTheManifestsReadBack() throws IOException {
        for (String split : List.of("train", "eval")) {
            Set<String> tasks = new HashSet<>();
            for (JsonNode line : lines(split + ".jsonl")) tasks.add(line.get("task").asText());
            assertEquals(7, tasks.size(), split + ": " + tasks);
            assertEquals(split.equals("train") ? 14 : 8, ConversationSample.readManifest(out.resolve(split + ".jsonl")).size());
        }
        List<AsrSample> mmAsr = AsrSample.readManifest(out.resolve("eval-mmasr.jsonl"));
        assertEquals(summary.tasks().get("eval").get("mm-asr"), mmAsr.size());
        for (AsrSample s : mmAsr) assertTrue(s.image() != null && Files.isRegularFile(s.image()) && !s.text().isBlank());
        List<ConversationSample> spoken = ConversationSample.readManifest(out.resolve("eval-spoken-image.jsonl"));
        for (ConversationSample s : spoken) {
            ConversationSample.Turn turn = s.turns().get(0);
            assertTrue(turn.image() && turn.audio() && turn.question().isEmpty(), turn.toString());
        }
        JsonNode written = JSON.readTree(out.resolve("summary.json").toFile());
        assertEquals(14, written.path("splits").path("train").path("conversations").asInt());
        assertEquals(8, written.path("splits").path("eval").path("conversations").asInt());
    }

    @Test
    void multiTurnConversationsHaveASpokenTurnAboutTheSameImage() throws IOException {
        List<ConversationSample> samples = ConversationSample.readManifest(out.resolve("train.jsonl"));
        List<JsonNode> lines = lines("train.jsonl");
        for (int i = 0; i < samples.size(); i++) {
            if (!lines.get(i).get("task").asText().equals("multi-turn")) continue;
            ConversationSample s = samples.get(i);
            assertTrue(s.turns().size() >= 2 && s.turns().size() <= 3, s.toString());
            assertTrue(s.turns().get(0).image() && s.turns().get(1).audio() && s.turns().get(1).question().isEmpty());
        }
    }

    @Test
    void evalIsDisjointFromTrainByImageClipTextAndVoice() throws IOException {
        List<JsonNode> train = lines("train.jsonl"), eval = lines("eval.jsonl");
        // images and clips: compare the bytes actually written, not only the names
        assertDisjoint(fileHashes(train, "image"), fileHashes(eval, "image"), "images");
        assertDisjoint(fileHashes(train, "video"), fileHashes(eval, "video"), "clips");
        assertDisjoint(field(train, "spoken", "text"), field(eval, "spoken", "text"), "spoken texts");
        assertDisjoint(field(train, "voice"), field(eval, "voice"), "voices");
        for (String voice : field(eval, "voice")) {
            assertTrue(InstructionSet.EVAL_VARIANTS.contains(voice.substring(voice.indexOf('+') + 1)), voice);
        }
        // layouts, the stronger property: no eval scene or clip re-draws a train one with other noise
        assertDisjoint(field(train, "layout"), field(eval, "layout"), "scene and clip layouts");
    }

    @Test
    void theSameSeedWritesTheSameBytes() throws IOException {
        Path again = dir.resolve("again");
        InstructionSet.build(again, 14, 8, 7, 1, false);
        for (String file : List.of("train.jsonl", "eval.jsonl", "eval-mmasr.jsonl", "eval-spoken-image.jsonl")) {
            assertArrayEquals(Files.readAllBytes(out.resolve(file)), Files.readAllBytes(again.resolve(file)), file);
        }
        for (JsonNode line : lines("eval.jsonl")) {
            for (String media : List.of("image", "video", "audio")) {
                if (!line.has(media)) continue;
                String name = line.get(media).asText();
                assertArrayEquals(Files.readAllBytes(out.resolve(name)), Files.readAllBytes(again.resolve(name)), name);
            }
        }
    }

    @Test
    void spokenQuestionsAndDescriptionsMatchTheScene() {
        var scene = SyntheticScenes.drawScene("s", new java.util.SplittableRandom(3));
        for (var q : InstructionSet.spokenQuestions(scene)) {
            if (q.text().contains("what colour")) assertEquals(scene.colour().english, q.answer());
        }
        for (var d : InstructionSet.descriptions(scene)) {
            assertTrue(d.text().contains(scene.colour().english) && d.text().contains(scene.shape().english), d.text());
        }
    }

    private static Set<String> field(List<JsonNode> lines, String... names) {
        Set<String> values = new HashSet<>();
        for (JsonNode line : lines) for (String name : names) if (line.has(name)) values.add(line.get(name).asText());
        return values;
    }

    private static Set<String> fileHashes(List<JsonNode> lines, String media) throws IOException {
        Set<String> hashes = new HashSet<>();
        for (String name : field(lines, media)) {
            hashes.add(java.util.Arrays.toString(sha256(Files.readAllBytes(out.resolve(name)))));
        }
        return hashes;
    }

    private static byte[] sha256(byte[] bytes) {
        try {
            return java.security.MessageDigest.getInstance("SHA-256").digest(bytes);
        } catch (java.security.NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    private static void assertDisjoint(Set<String> train, Set<String> eval, String what) {
        assertTrue(!train.isEmpty() && !eval.isEmpty(), what + ": empty");
        Set<String> shared = new HashSet<>(train);
        shared.retainAll(eval);
        assertTrue(shared.isEmpty(), what + " shared by train and eval: " + shared);
    }
}
