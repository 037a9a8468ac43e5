package xllm.eval;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import xllm.speech.WavWriter;

import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** A recognizer run over a manifest: table, totals per language, real-time factor, clear manifest errors. */
class AsrEvaluationTest {

    @TempDir
    Path dir;

    private Path manifest() throws IOException {
        Files.createDirectories(dir.resolve("audio"));
        for (String id : new String[]{"a", "b", "c"}) {
            WavWriter.write(dir.resolve("audio/" + id + ".wav"), new float[16_000], 16_000); // 1 s each
        }
        Path manifest = dir.resolve("eval.jsonl");
        Files.writeString(manifest, """
                {"id":"a","audio":"audio/a.wav","text":"the cat sat on the mat","language":"en"}
                {"id":"b","audio":"audio/b.wav","text":"one two three","language":"en"}
                {"id":"c","audio":"audio/c.wav","text":"今天天气很好","language":"zh"}
                """);
        return manifest;
    }

    @Test
    void scoresARecognizerAndPrintsTheTable() throws Exception {
        Path manifest = manifest();
        Map<String, String> answers = Map.of("a.wav", "the cat sit on mat", "b.wav", "One, two, three!",
                "c.wav", "今天天汽很好啊");
        StringWriter printed = new StringWriter();
        AsrEvaluation.Result result = AsrEvaluation.run(audio -> answers.get(audio.getFileName().toString()),
                manifest, 0, new PrintWriter(printed));
        assertEquals(3, result.rows().size());
        assertEquals(4 / 15.0, result.summary().wer(), 1e-12); // (2 + 0 + 2) / (6 + 3 + 6)
        assertEquals(7 / 41.0, result.summary().cer(), 1e-12); // (5 + 0 + 2) / (22 + 13 + 6)
        assertEquals(2 / 9.0, result.byLanguage().get("en").wer(), 1e-12);
        assertEquals(2 / 6.0, result.byLanguage().get("zh").cer(), 1e-12);
        assertEquals(3.0, result.audioSeconds(), 1e-9);
        assertTrue(result.realTimeFactor() >= 0 && result.realTimeFactor() < 1);
        String table = printed.toString();
        assertTrue(table.contains("the cat sit on mat") && table.contains("22.7%"), table); // 5/22
        assertTrue(table.contains("CER  17.07%") && table.contains("WER  26.67%"), table);
        assertTrue(table.contains("zh       1 utts"), table);

        // stored hypotheses score the same
        Path hyp = dir.resolve("hyp.jsonl");
        Files.writeString(hyp, """
                {"id":"a","text":"the cat sit on mat"}
                {"id":"b","text":"One, two, three!"}
                {"id":"c","text":"今天天汽很好啊"}
                """);
        AsrEvaluation.Result stored = AsrEvaluation.run(AsrEvaluation.hypothesesFrom(manifest, hyp), manifest, 2, null);
        assertEquals(2, stored.rows().size());
        assertEquals(2 / 9.0, stored.summary().wer(), 1e-12);
    }

    @Test
    void manifestErrorsNameFileLineAndProblem() throws Exception {
        Path manifest = manifest();
        Files.writeString(manifest, "{\"id\":\"a\",\"audio\":\"audio/a.wav\",\"text\":\"x\"}\n"
                + "{\"id\":\"b\",\"audio\":\"audio/missing.wav\",\"text\":\"y\"}\n");
        IOException missing = assertThrows(IOException.class, () -> AsrEvaluation.readManifest(manifest, 0));
        assertTrue(missing.getMessage().contains("eval.jsonl:2") && missing.getMessage().contains("missing.wav"),
                missing.getMessage());
        Files.writeString(manifest, "{\"id\":\"a\",\"audio\":\"audio/a.wav\"}\n");
        IOException noText = assertThrows(IOException.class, () -> AsrEvaluation.readManifest(manifest, 0));
        assertTrue(noText.getMessage().contains("eval.jsonl:1") && noText.getMessage().contains("\"text\""),
                noText.getMessage());
        Files.writeString(manifest, "{not json\n");
        assertTrue(assertThrows(IOException.class, () -> AsrEvaluation.readManifest(manifest, 0)).getMessage()
                .contains("not valid JSON"));
    }
}
