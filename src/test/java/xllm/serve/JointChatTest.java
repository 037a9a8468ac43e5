package xllm.serve;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * X-LLM as one model, through the commands: a tiny stage-3 run (recipes/tiny-integrate.yaml) gives one checkpoint
 * with image, video and speech interfaces, and one {@code ./xllm chat} session answers an image question, a video
 * question, a transcription request and a spoken question about an image, keeping every turn; {@code generate}
 * takes the media together; {@code eval} reads the joint manifest.
 */
class JointChatTest {

    static Path data;
    static Path checkpoint;

    @BeforeAll
    static void trainTinyJointModel() throws Exception {
        data = TinyJointModel.data();
        checkpoint = TinyJointModel.checkpoint();
    }

    /** The first sample of {@code task} in the eval manifest. */
    private static JsonNode sample(String task) throws Exception {
        ObjectMapper json = new ObjectMapper();
        for (String line : Files.readAllLines(data.resolve("eval.jsonl"))) {
            JsonNode node = json.readTree(line);
            if (node.path("task").asText().equals(task)) return node;
        }
        throw new AssertionError("no " + task + " sample");
    }

    private static String media(JsonNode sample, String field) {
        return data.resolve(sample.get(field).asText()).toString();
    }

    @Test
    void oneCheckpointAnswersEveryKindOfQuestionInOneChatSession() throws Exception {
        JsonNode image = sample("image-qa"), video = sample("video-qa"), asr = sample("asr"),
                spoken = sample("spoken-image-qa");
        String script = String.join("\n",
                "/image " + media(image, "image"), "What colour is the shape?",
                "/video " + media(video, "video"), "Which way does the shape move?",
                "/audio " + media(asr, "audio"), "Please faithfully recognize the speech.",
                "/reset", // the tiny Llama's 256 positions hold three turns of history, not four
                "/image " + media(spoken, "image"), "/audio " + media(spoken, "audio"), "/ask",
                "/exit", "");
        CliProcess chat = CliProcess.run(script, "chat", "--model", checkpoint.toString(), "--temperature", "0",
                "--max-tokens", "3");
        assertEquals(0, chat.exitCode(), chat.stderr());
        List<String> lines = chat.stdout().lines().toList();
        assertEquals(10, lines.size(), "5 attachments + 4 answers + reset: " + lines);
        assertEquals("(conversation cleared)", lines.get(6));
        for (int i : new int[] {1, 3, 5, 9}) {
            assertFalse(lines.get(i).startsWith("error") || lines.get(i).startsWith("("), "turn answered: " + lines);
        }
        assertTrue(lines.get(7).startsWith("(image attached") && lines.get(8).startsWith("(audio attached"), lines.toString());
    }

    @Test
    void generateTakesAnImageAndASpokenQuestionTogether() throws Exception {
        JsonNode spoken = sample("spoken-image-qa");
        CliProcess both = CliProcess.run("", "generate", "--model", checkpoint.toString(), "--image",
                media(spoken, "image"), "--audio", media(spoken, "audio"), "--temperature", "0", "--max-tokens", "3");
        assertEquals(0, both.exitCode(), both.stderr());
        CliProcess imageOnly = CliProcess.run("", "generate", "--model", checkpoint.toString(), "--image",
                media(spoken, "image"), "--temperature", "0", "--max-tokens", "3");
        assertNotEquals(0, imageOnly.exitCode(), "an image alone needs a typed or spoken question");
        assertTrue(imageOnly.stderr().contains("--prompt is required"), imageOnly.stderr());
    }

    @Test
    void evalScoresTheJointManifestAndMultimodalAsr() throws Exception {
        CliProcess qa = CliProcess.run("", "eval", "image", "--model", checkpoint.toString(), "--data",
                data.resolve("eval.jsonl").toString());
        assertEquals(0, qa.exitCode(), qa.stderr());
        for (String task : List.of("image-qa", "video-qa", "spoken-image-qa", "multi-turn", "overall")) {
            assertTrue(qa.stdout().contains(task), task + " row in " + qa.stdout());
        }
        CliProcess asr = CliProcess.run("", "eval", "asr", "--model", checkpoint.toString(), "--data",
                data.resolve("eval-mmasr.jsonl").toString());
        assertEquals(0, asr.exitCode(), asr.stderr());
        assertTrue(asr.stdout().contains("multimodal ASR: CER S ") && asr.stdout().contains(", S+V "), asr.stdout());
    }
}
