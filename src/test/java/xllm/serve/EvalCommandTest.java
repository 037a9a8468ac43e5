package xllm.serve;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;
import xllm.speech.WavWriter;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@code ./xllm eval}: each subcommand's own usage, option limits, stored hypotheses through the command line. */
class EvalCommandTest {

    /** Runs {@code ./xllm args} in this JVM; returns exit code, stdout and stderr. */
    private static String[] execute(String... args) {
        StringWriter out = new StringWriter(), err = new StringWriter();
        CommandLine cl = Main.commandLine();
        cl.setOut(new PrintWriter(out));
        cl.setErr(new PrintWriter(err));
        int code = cl.execute(args);
        return new String[]{String.valueOf(code), out.toString(), err.toString()};
    }

    @Test
    void eachMediaEvaluationPrintsItsOwnUsage() {
        for (String name : new String[]{"image", "video", "spoken"}) {
            String[] result = execute("eval", name, "--help");
            assertEquals("0", result[0], result[2]);
            assertTrue(result[1].startsWith("Usage: xllm eval " + name + " "), result[1]);
        }
        assertTrue(execute("eval", "video", "--help")[1].contains("--frames"));
        assertTrue(!execute("eval", "image", "--help")[1].contains("--frames"), "frames are for video only");
    }

    @Test
    void negativeCountsAreRefusedNamingTheOption() {
        String[] limit = execute("eval", "asr", "--data", "x.jsonl", "--hyp", "y.jsonl", "--limit", "-1");
        assertEquals("1", limit[0]);
        assertTrue(limit[2].contains("--limit") && limit[2].contains("-1"), limit[2]);
        String[] image = execute("eval", "image", "--model", "m", "--data", "x.jsonl", "--limit", "-5");
        assertEquals("1", image[0]);
        assertTrue(image[2].contains("--limit") && image[2].contains("-5"), image[2]);
        String[] frames = execute("eval", "video", "--model", "m", "--data", "x.jsonl", "--frames", "-2");
        assertEquals("1", frames[0]);
        assertTrue(frames[2].contains("--frames") && frames[2].contains("-2"), frames[2]);
    }

    @Test
    void storedHypothesesOfRowsSharingARecordingStayWithTheirRows(@TempDir Path dir) throws Exception {
        WavWriter.write(dir.resolve("shared.wav"), new float[16_000], 16_000);
        Path manifest = dir.resolve("eval.jsonl");
        Files.writeString(manifest, """
                {"id":"first","audio":"shared.wav","text":"one two three"}
                {"id":"second","audio":"shared.wav","text":"four five six"}
                """);
        Path hyp = dir.resolve("hyp.jsonl");
        Files.writeString(hyp, """
                {"id":"second","text":"four five six"}
                {"id":"first","text":"one two three"}
                """);
        String[] result = execute("eval", "asr", "--data", manifest.toString(), "--hyp", hyp.toString());
        assertEquals("0", result[0], result[2]);
        assertTrue(result[1].contains("WER   0.00%"), result[1]);
    }

    @Test
    void theManifestIsCheckedBeforeTheModelIsLoaded(@TempDir Path dir) throws Exception {
        Path manifest = dir.resolve("eval.jsonl");
        Files.writeString(manifest, "{\"id\": \"a\"}\n");
        Path absentModel = dir.resolve("no-such-checkpoint");
        for (String command : new String[]{"image", "video", "spoken", "asr"}) {
            String[] result = execute("eval", command, "--model", absentModel.toString(), "--data", manifest.toString());
            assertEquals("1", result[0], command);
            assertTrue(result[2].startsWith("error: " + manifest + ":1: "), command + ": " + result[2]);
        }
    }

    @Test
    void mediaOutsideTheManifestsTreeAreRefusedUnlessTheFlagAllowsThem(@TempDir Path dir) throws Exception {
        WavWriter.write(dir.resolve("outside.wav"), new float[16_000], 16_000);
        Path manifest = Files.createDirectories(dir.resolve("set")).resolve("eval.jsonl");
        Files.writeString(manifest, "{\"id\":\"a\",\"audio\":\"../outside.wav\",\"text\":\"one\"}\n");
        Path hyp = dir.resolve("hyp.jsonl");
        Files.writeString(hyp, "{\"id\":\"a\",\"text\":\"one\"}\n");
        try {
            String[] refused = execute("eval", "asr", "--data", manifest.toString(), "--hyp", hyp.toString());
            assertEquals("1", refused[0], refused[1]);
            assertTrue(refused[2].contains(manifest + ":1: audio path '../outside.wav' is outside")
                    && refused[2].contains("--allow-media-outside-manifest"), refused[2]);
            String[] allowed = execute("eval", "asr", "--data", manifest.toString(), "--hyp", hyp.toString(),
                    "--allow-media-outside-manifest");
            assertEquals("0", allowed[0], allowed[2]);
        } finally {
            System.clearProperty(xllm.data.MediaPaths.ALLOW_OUTSIDE_PROPERTY);
        }
    }

    @Test
    void aFrameCountBeyondTheLimitIsRefusedBeforeTheCheckpointIsRead(@TempDir Path dir) throws Exception {
        Path manifest = dir.resolve("eval.jsonl");
        WavWriter.write(dir.resolve("a.wav"), new float[1600], 16_000);   // any valid manifest: the frames fail first
        Files.writeString(manifest, "{\"id\":\"a\",\"video\":\"a.wav\",\"conversations\":[{\"from\":\"human\","
                + "\"value\":\"<video>\\nq\"},{\"from\":\"gpt\",\"value\":\"x\"}]}\n");
        String[] result = execute("eval", "video", "--model", dir.resolve("none").toString(), "--data", manifest.toString(),
                "--frames", "2147483647");
        assertEquals("1", result[0], result[2]);
        assertTrue(result[2].contains("--frames must be in 1..64") && result[2].contains("2147483647"), result[2]);
    }
}
