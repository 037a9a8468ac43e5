package xllm.eval;

import xllm.data.JsonLines;
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
        AsrEvaluation.Result result = AsrEvaluation.run(entry -> answers.get(entry.audio().getFileName().toString()),
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

    @Test
    void storedHypothesesAreKeyedByIdSoRowsSharingARecordingKeepTheirOwn() throws Exception {
        manifest();
        Path manifest = dir.resolve("shared.jsonl");
        Files.writeString(manifest, """
                {"id":"first","audio":"audio/a.wav","text":"one two three"}
                {"id":"second","audio":"audio/a.wav","text":"four five six"}
                """);
        Path hyp = dir.resolve("hyp.jsonl");
        Files.writeString(hyp, """
                {"id":"first","text":"one two three"}
                {"id":"second","text":"four five six"}
                """);
        AsrEvaluation.Result result = AsrEvaluation.run(AsrEvaluation.hypothesesFrom(manifest, hyp), manifest, 0, null);
        assertEquals("one two three", result.rows().get(0).normalisedHypothesis());
        assertEquals("four five six", result.rows().get(1).normalisedHypothesis());
        assertEquals(2, result.summary().exact());
    }

    @Test
    void aHypothesisFileWithDuplicateUnknownOrMissingIdsIsRefusedNamingTheLine() throws Exception {
        Path manifest = manifest();
        Path hyp = dir.resolve("hyp.jsonl");
        Files.writeString(hyp, """
                {"id":"a","text":"x"}
                {"id":"b","text":"y"}
                {"id":"c","text":"z"}
                {"id":"a","text":"again"}
                """);
        IOException duplicate = assertThrows(IOException.class, () -> AsrEvaluation.hypothesesFrom(manifest, hyp));
        assertTrue(duplicate.getMessage().startsWith(hyp + ":4: ") && duplicate.getMessage().contains("line 1"),
                duplicate.getMessage());
        Files.writeString(hyp, """
                {"id":"a","text":"x"}
                {"id":"b","text":"y"}
                {"id":"zz","text":"z"}
                """);
        IOException unknown = assertThrows(IOException.class, () -> AsrEvaluation.hypothesesFrom(manifest, hyp));
        assertTrue(unknown.getMessage().startsWith(hyp + ":3: ") && unknown.getMessage().contains("\"zz\""),
                unknown.getMessage());
        Files.writeString(hyp, """
                {"id":"a","text":"x"}
                {"id":"c","text":"z"}
                """);
        IOException missing = assertThrows(IOException.class, () -> AsrEvaluation.hypothesesFrom(manifest, hyp));
        assertTrue(missing.getMessage().contains(hyp.toString()) && missing.getMessage().contains(manifest + ":2")
                && missing.getMessage().contains("\"b\""), missing.getMessage());
    }

    @Test
    void aManifestWithTheSameIdTwiceIsRefused() throws Exception {
        Path manifest = manifest();
        Files.writeString(manifest, """
                {"id":"a","audio":"audio/a.wav","text":"x"}
                {"id":"a","audio":"audio/b.wav","text":"y"}
                """);
        IOException e = assertThrows(IOException.class, () -> AsrEvaluation.readManifest(manifest, 0));
        assertTrue(e.getMessage().startsWith(manifest + ":2: ") && e.getMessage().contains("line 1"), e.getMessage());
    }

    @Test
    void aTooLongAlignmentNamesTheManifestLineAndId() throws Exception {
        Path manifest = manifest();
        Files.writeString(manifest, "{\"id\":\"a\",\"audio\":\"audio/a.wav\",\"text\":\"" + "a".repeat(100_000) + "\"}\n");
        String hypothesis = "b".repeat(100_000);
        IOException e = assertThrows(IOException.class, () -> AsrEvaluation.run(entry -> hypothesis, manifest, 0, null));
        assertTrue(e.getMessage().startsWith(manifest + ":1: ") && e.getMessage().contains("\"a\"")
                && e.getMessage().contains(String.valueOf(ErrorRate.MAX_ALIGNMENT_CELLS)), e.getMessage());
    }

    @Test
    void hostileManifestsGetOneLineErrorsNamingFileAndLine() throws Exception {
        Path manifest = manifest();
        Map<String, String> cases = new java.util.LinkedHashMap<>();
        cases.put("", "no utterances");
        cases.put("\n  \n", "no utterances");
        cases.put("{\"id\":5,\"audio\":\"audio/a.wav\",\"text\":\"x\"}\n", ":1: field \"id\" must be a string");
        cases.put("{\"id\":\"a\",\"audio\":\"audio/a.wav\",\"text\":\"x\",\"language\":7}\n",
                ":1: field \"language\" must be a string");
        cases.put("[1, 2]\n", ":1: expected a JSON object");
        cases.put("{\"id\":\"a\",\"audio\":\"audio/a.wav\",\"text\":\"x\"} {\"id\":\"b\"}\n", ":1: not valid JSON");
        cases.put("{\"id\":\"a\",\"id\":\"b\",\"audio\":\"audio/a.wav\",\"text\":\"x\"}\n", ":1: not valid JSON");
        cases.put("{\"id\":\"a\",\"audio\":\"audio/a\\u0000.wav\",\"text\":\"x\"}\n", ":1: ");
        cases.put("{\"id\":\"a\",\"audio\":\"audio\",\"text\":\"x\"}\n", ":1: " + dir.resolve("audio") + ": is a directory, not an audio file");
        cases.put("{\"id\":\"a\",\"audio\":\"audio/none.wav\",\"text\":\"x\"}\n", ":1: audio file not found");
        cases.put("{\"id\":\"a\",\"audio\":\"/etc/passwd\",\"text\":\"x\"}\n", ":1: audio path '/etc/passwd' is outside");
        cases.put("{\"id\":\"a\",\"audio\":\"audio/a.wav\",\"text\":\"" + "x".repeat(JsonLines.MAX_LINE_CHARS)
                + "\"}\n", ":1: line longer than " + JsonLines.MAX_LINE_CHARS);
        for (var c : cases.entrySet()) {
            Files.writeString(manifest, c.getKey());
            IOException e = assertThrows(IOException.class, () -> AsrEvaluation.readManifest(manifest, 0), c.getKey());
            assertTrue(e.getMessage().startsWith(manifest.toString()) && e.getMessage().contains(c.getValue()),
                    c.getValue() + " <- " + e.getMessage());
        }
        Files.write(manifest, new byte[]{'{', '"', 'i', 'd', '"', ':', '"', (byte) 0xff, '"', '}', '\n'});
        IOException notUtf8 = assertThrows(IOException.class, () -> AsrEvaluation.readManifest(manifest, 0));
        assertTrue(notUtf8.getMessage().startsWith(manifest + ":1: not UTF-8"), notUtf8.getMessage());
        IOException directory = assertThrows(IOException.class, () -> AsrEvaluation.readManifest(dir, 0));
        assertTrue(directory.getMessage().startsWith(dir + ": ") && directory.getMessage().contains("directory"),
                directory.getMessage());
        Path absent = dir.resolve("absent.jsonl");
        IOException missing = assertThrows(IOException.class, () -> AsrEvaluation.readManifest(absent, 0));
        assertTrue(missing.getMessage().startsWith(absent + ": ") && missing.getMessage().contains("no such file"),
                missing.getMessage());
    }

    @Test
    void aBadRecordingStopsTheEvaluationBeforeTheRecognizerRuns() throws Exception {
        Path manifest = manifest();
        Files.writeString(dir.resolve("audio/c.wav"), "not a wav");
        java.util.List<String> recognised = new java.util.ArrayList<>();
        IOException e = assertThrows(IOException.class, () -> AsrEvaluation.run(entry -> {
            recognised.add(entry.id());
            return "";
        }, manifest, 0, null));
        assertTrue(e.getMessage().startsWith(manifest + ":3: "), e.getMessage());
        assertEquals(java.util.List.of(), recognised);
    }

    @Test
    void theTableClipsLongTextsAtWholeCharacters() throws Exception {
        manifest();
        Path manifest = dir.resolve("emoji.jsonl");
        String emoji = "\uD83D\uDE00".repeat(50); // 50 code points, 100 UTF-16 units
        Files.writeString(manifest, "{\"id\":\"" + emoji + "\",\"audio\":\"audio/a.wav\",\"text\":\"" + emoji + "\"}\n");
        StringWriter printed = new StringWriter();
        AsrEvaluation.run(entry -> emoji, manifest, 0, new PrintWriter(printed));
        assertTrue(printed.toString().codePoints().noneMatch(c -> c >= 0xD800 && c <= 0xDFFF),
                "half a character printed: " + printed);
        assertTrue(printed.toString().contains("\uD83D\uDE00".repeat(23) + "…"), printed.toString());
    }

    @Test
    void aManifestSavedWithAByteOrderMarkAndWindowsLineEndsIsRead() throws Exception {
        Path manifest = manifest();
        Files.writeString(manifest, "\uFEFF{\"id\":\"a\",\"audio\":\"audio/a.wav\",\"text\":\"x\"}\r\n"
                + "{\"id\":\"b\",\"audio\":\"audio/b.wav\",\"text\":\"y\"}\r\n");
        var entries = AsrEvaluation.readManifest(manifest, 0);
        assertEquals(java.util.List.of("a", "b"), entries.stream().map(AsrEvaluation.Entry::id).toList());
        assertEquals(2, entries.get(1).line());
    }
}
