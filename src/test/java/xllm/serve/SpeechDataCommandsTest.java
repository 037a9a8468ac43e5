package xllm.serve;

import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;
import xllm.data.PocketsphinxTestdata;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code bootstrap speech}, {@code bootstrap pocketsphinx} and {@code eval asr} from the command line; the last
 * scores pocketsphinx's own stored hypotheses for its test recordings (cards.hyp, librivox/test-lm.match), whose
 * word and character edits were counted independently (a plain Levenshtein in Python): 20 word errors of 92 and 66
 * character errors of 463 on those 10 utterances.
 */
class SpeechDataCommandsTest {

    private static final Pattern HYPOTHESIS = Pattern.compile("^(.*)\\((\\S+) -?\\d+\\)\\s*$");

    @TempDir
    Path dir;

    private static String run(String... args) {
        CommandLine cl = Main.commandLine();
        StringWriter out = new StringWriter();
        cl.setOut(new PrintWriter(out));
        StringWriter err = new StringWriter();
        cl.setErr(new PrintWriter(err));
        int code = cl.execute(args);
        assertEquals(0, code, out + "\n" + err);
        return out.toString();
    }

    @Test
    void bootstrapSpeechWritesBothSplitsWithMandarin() throws Exception {
        String text = run("bootstrap", "speech", "--out", dir.toString(), "--train", "1", "--eval", "1",
                "--mandarin", "1", "--seed", "3", "--workers", "2");
        assertTrue(text.contains("train.jsonl: 2 utterances (1 Mandarin)"), text);
        assertTrue(text.contains("eval.jsonl: 2 utterances (1 Mandarin)"), text); // eval gets K·M/N rounded up
        assertTrue(text.contains("ETA"), text);
        assertEquals(2, Files.readAllLines(dir.resolve("eval.jsonl")).size());
        assertEquals(4, Files.list(dir.resolve("audio")).count());
    }

    @Test
    void pocketsphinxManifestScoredWithPocketsphinxHypotheses() throws Exception {
        Path root = Path.of(PocketsphinxTestdata.DEFAULT_ROOT);
        String built = run("bootstrap", "pocketsphinx", "--out", dir.toString());
        assertTrue(built.contains("12 utterances"), built);

        ObjectMapper json = new ObjectMapper();
        List<String> lines = new ArrayList<>();
        for (String[] source : new String[][]{{"cards/cards.hyp", "cards-"}, {"librivox/test-lm.match", "librivox-"}}) {
            for (String line : Files.readAllLines(root.resolve(source[0]), StandardCharsets.UTF_8)) {
                Matcher m = HYPOTHESIS.matcher(line.strip());
                assertTrue(m.matches(), line);
                lines.add(json.writeValueAsString(Map.of("id", source[1] + m.group(2), "text", m.group(1).strip())));
            }
        }
        // the two recordings without a stored hypothesis are given their reference: 0 errors, 9 words, 45 characters
        lines.add(json.writeValueAsString(Map.of("id", "tidigits-dhd.2934z", "text", "two nine three four zero")));
        lines.add(json.writeValueAsString(Map.of("id", "goforward", "text", "Go forward, ten meters!")));
        Path hypotheses = dir.resolve("hyp.jsonl");
        Files.write(hypotheses, lines);

        String report = run("eval", "asr", "--data", dir.resolve("eval.jsonl").toString(), "--hyp", hypotheses.toString());
        assertTrue(report.contains("WER  19.80% (S "), report);          // 20 / (92 + 9)
        assertTrue(report.contains("/ 101 words"), report);
        assertTrue(report.contains("CER  12.99% (S "), report);          // 66 / (463 + 45)
        assertTrue(report.contains("/ 508 chars"), report);
        assertTrue(report.contains("he was not an illness those young man"), report);
    }
}
