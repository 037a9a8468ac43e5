package xllm.serve;

import org.junit.jupiter.api.Test;
import xllm.RealWeights;

import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The user-facing commands end to end on the real SmolLM2-135M-Instruct, each in its own JVM as {@code ./xllm}
 * runs them: {@code generate} prints only the completion, {@code chat} holds a 3-turn conversation where later
 * questions only make sense with the earlier turns, and slash commands work.
 */
class ChatAndGenerateTest {

    @Test
    void generateAnswersWithParisAndPrintsOnlyTheCompletion() throws Exception {
        RealWeights.require("smollm2-135m-instruct");
        CliProcess result = CliProcess.run("", "generate", "--model", "smollm2-135m-instruct",
                "--prompt", "What is the capital of France?", "--temperature", "0");
        assertEquals(0, result.exitCode(), result.stderr());
        assertEquals("The capital of France is Paris.", result.stdout().strip(), "stdout holds only the completion");
        assertTrue(result.stderr().contains("generated tokens"), "timing goes to stderr: " + result.stderr());
    }

    @Test
    void chatHoldsACoherentThreeTurnConversation() throws Exception {
        RealWeights.require("smollm2-135m-instruct");
        String script = String.join("\n", "What is the capital of France?", "What language do people speak there?",
                "Name one famous museum in that city.", "/reset", "/exit", "");
        CliProcess result = CliProcess.run(script, "chat", "--temperature", "0", "--max-tokens", "60");
        assertEquals(0, result.exitCode(), result.stderr());
        List<String> lines = result.stdout().strip().lines().toList();
        assertEquals(4, lines.size(), result.stdout());
        assertTrue(lines.get(0).contains("Paris"), lines.get(0));
        assertTrue(lines.get(1).contains("French"), "turn 2 resolves 'there' from turn 1: " + lines.get(1));
        assertTrue(lines.get(2).contains("Louvre"), "turn 3 resolves 'that city': " + lines.get(2));
        assertEquals("(conversation cleared)", lines.get(3));
    }

    @Test
    void chatAndGenerateAnswerAboutImagesWithATrainedCheckpoint(@org.junit.jupiter.api.io.TempDir java.nio.file.Path run)
            throws Exception {
        CliProcess trained = CliProcess.run("", "train", "recipes/tiny-overfit.yaml", "output=" + run, "steps=12");
        assertEquals(0, trained.exitCode(), trained.stderr());
        String checkpoint = run.resolve("checkpoints/step-000012").toString();
        String script = String.join("\n", "/image no-such.png", "/image data/tiny-overfit/red.png",
                "What colour is this picture?", "/ask", "colour ".repeat(400), "/reset", "/image data/tiny-overfit/red.png",
                "What colour is this picture?", "/exit", "");
        CliProcess chat = CliProcess.run(script, "chat", "--model", checkpoint, "--temperature", "0", "--max-tokens", "4");
        assertEquals(0, chat.exitCode(), chat.stderr());
        List<String> lines = chat.stdout().lines().toList();
        assertTrue(lines.get(0).startsWith("(no such image file"), lines.get(0));
        assertEquals("(image attached to your next message: data/tiny-overfit/red.png)", lines.get(1));
        assertEquals("(/ask needs an X-LLM checkpoint with a speech interface and an attached WAV: /audio FILE)",
                lines.get(3));
        assertTrue(lines.get(4).startsWith("error: prompt of ") && lines.get(4).contains("exceeds the model's context"),
                "a question over the context fails alone: " + lines.get(4));
        assertEquals("(conversation cleared)", lines.get(5));
        assertEquals(lines.get(2), lines.get(7), "after /reset the same image and question are answered as before");
        assertEquals(8, lines.size(), "one answer line per question: " + lines);

        CliProcess generate = CliProcess.run("", "generate", "--model", checkpoint, "--image", "data/tiny-overfit/red.png",
                "--prompt", "What colour is this picture?", "--temperature", "0", "--max-tokens", "4");
        assertEquals(0, generate.exitCode(), generate.stderr());
        assertEquals(lines.get(2).strip(), generate.stdout().strip(), "chat and generate build the same prompt");
        CliProcess notACheckpoint = CliProcess.run("", "generate", "--image", "data/tiny-overfit/red.png", "--prompt", "x");
        assertNotEquals(0, notACheckpoint.exitCode());
        assertTrue(notACheckpoint.stderr().contains("X-LLM checkpoint"), notACheckpoint.stderr());
        CliProcess noPrompt = CliProcess.run("", "generate", "--model", checkpoint, "--image", "data/tiny-overfit/red.png");
        assertNotEquals(0, noPrompt.exitCode());
        assertTrue(noPrompt.stderr().contains("--prompt is required (it may be left out only with --audio)"), noPrompt.stderr());
    }

    /** Bad turns (over the context, missing media file, unknown command) each print one line; the REPL goes on. */
    @Test
    void chatSurvivesBadTurnsAndAnswersTheNextGoodOne() throws Exception {
        String overLong = "word ".repeat(400); // the tiny Llama's context is 256 positions
        String script = String.join("\n", "hello", overLong, "/image no-such.png", "/audio no-such.wav", "/bogus",
                "hello again", "/exit", "");
        CliProcess chat = CliProcess.run(script, "chat", "--model", TINY_LLAMA, "--temperature", "0", "--max-tokens", "4");
        assertEquals(0, chat.exitCode(), chat.stderr());
        List<String> lines = chat.stdout().lines().toList();
        assertEquals(6, lines.size(), "one line per turn: " + lines);
        assertTrue(lines.get(1).startsWith("error: prompt of ") && lines.get(1).contains("exceeds the model's context of 256"),
                lines.get(1));
        assertTrue(lines.get(2).startsWith("(this model has no image interface"), lines.get(2));
        assertTrue(lines.get(3).startsWith("(this model has no speech interface"), lines.get(3));
        assertEquals("unknown command /bogus — /help lists them", lines.get(4));
        assertFalse(lines.get(5).startsWith("error"), "the good turn after the bad ones is answered: " + lines.get(5));
    }

    static final String TINY_LLAMA = "src/test/resources/fixtures/llm/tiny-llama";

    @Test
    void unknownModelFailsWithThePullCommand() throws Exception {
        CliProcess result = CliProcess.run("", "generate", "--model", "no-such-model", "--prompt", "hi");
        assertNotEquals(0, result.exitCode());
        assertTrue(result.stderr().contains("./xllm models pull no-such-model"), result.stderr());
    }

    @Test
    void chatTurnReaderJoinsContinuationsAndBlocks() throws Exception {
        var lines = new java.util.ArrayDeque<>(List.of("first \\", "second", "\"\"\"", "a", "b", "\"\"\"", "plain"));
        ChatCommand.LineSource source = prompt -> lines.poll();
        assertEquals("first \nsecond", ChatCommand.readTurn(source));
        assertEquals("a\nb", ChatCommand.readTurn(source));
        assertEquals("plain", ChatCommand.readTurn(source));
        assertNull(ChatCommand.readTurn(source));
    }
}
