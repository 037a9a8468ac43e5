package xllm.eval;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import xllm.speech.WavReader;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;
import java.util.function.Function;

/**
 * Runs a recognizer over an ASR manifest (DESIGN.md §4: {@code {"id","audio","text","language"?}}, audio relative
 * to the manifest) and scores it with {@link ErrorRate}: a table of id, reference, hypothesis and CER per
 * utterance, then corpus CER / WER with their S/D/I counts, sentence error rate, per-language lines when the
 * manifest mixes languages, and the real-time factor (recognizer wall time / audio duration). The recognizer is
 * any {@code Path → String} function, so the same code scores the ASR model, a C-Former pipeline or a stored
 * hypothesis file ({@link #hypothesesFrom}).
 */
public final class AsrEvaluation {

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final int TEXT_COLUMN = 40;

    /** A manifest line. */
    public record Entry(String id, Path audio, String text, String language) {
    }

    /** Everything {@link #run} measured. */
    public record Result(List<ErrorRate.Row> rows, ErrorRate.Summary summary, Map<String, ErrorRate.Summary> byLanguage,
                         double audioSeconds, double recognitionSeconds) {
        public double realTimeFactor() {
            return recognitionSeconds / Math.max(audioSeconds, 1e-9);
        }
    }

    private AsrEvaluation() {}

    /** Reads the manifest; errors name the file, line and problem. {@code limit} ≤ 0 reads all. */
    public static List<Entry> readManifest(Path manifest, int limit) throws IOException {
        Path base = manifest.toAbsolutePath().getParent();
        List<String> lines = Files.readAllLines(manifest, StandardCharsets.UTF_8);
        List<Entry> entries = new ArrayList<>();
        for (int n = 0; n < lines.size() && (limit <= 0 || entries.size() < limit); n++) {
            if (lines.get(n).isBlank()) continue;
            String where = manifest + ":" + (n + 1) + ": ";
            JsonNode node;
            try {
                node = JSON.readTree(lines.get(n));
            } catch (JsonProcessingException e) {
                throw new IOException(where + "not valid JSON: " + e.getOriginalMessage());
            }
            for (String field : new String[]{"id", "audio", "text"}) {
                if (!node.hasNonNull(field) || !node.get(field).isTextual()) {
                    throw new IOException(where + "missing string field \"" + field + "\"");
                }
            }
            Path audio = base.resolve(node.get("audio").asText());
            if (!Files.isRegularFile(audio)) throw new IOException(where + "audio file not found: " + audio);
            entries.add(new Entry(node.get("id").asText(), audio, node.get("text").asText(),
                    node.path("language").asText("en")));
        }
        if (entries.isEmpty()) throw new IOException(manifest + ": no utterances");
        return entries;
    }

    /**
     * Recognises every utterance (in manifest order), prints the table and summary to {@code out} (null: silent)
     * and returns the totals.
     */
    public static Result run(Function<Path, String> recognizer, Path manifest, int limit, PrintWriter out)
            throws IOException {
        List<Entry> entries = readManifest(manifest, limit);
        List<ErrorRate.Row> rows = new ArrayList<>();
        Map<String, List<ErrorRate.Row>> languages = new TreeMap<>();
        double audioSeconds = 0, recognitionSeconds = 0;
        if (out != null) {
            out.printf(Locale.ROOT, "%-24s %-" + TEXT_COLUMN + "s %-" + TEXT_COLUMN + "s %7s%n", "id", "reference",
                    "hypothesis", "CER");
        }
        for (Entry entry : entries) {
            audioSeconds += WavReader.read(entry.audio()).seconds();
            long start = System.nanoTime();
            String hypothesis = recognizer.apply(entry.audio());
            recognitionSeconds += (System.nanoTime() - start) / 1e9;
            ErrorRate.Row row = ErrorRate.score(entry.id(), entry.text(), hypothesis == null ? "" : hypothesis);
            rows.add(row);
            languages.computeIfAbsent(entry.language(), k -> new ArrayList<>()).add(row);
            if (out != null) {
                out.printf(Locale.ROOT, "%-24s %-" + TEXT_COLUMN + "s %-" + TEXT_COLUMN + "s %6.1f%%%n",
                        clip(entry.id(), 24), clip(row.normalisedReference(), TEXT_COLUMN),
                        clip(row.normalisedHypothesis(), TEXT_COLUMN), 100 * row.cer());
            }
        }
        ErrorRate.Summary summary = ErrorRate.summarise(rows);
        Map<String, ErrorRate.Summary> byLanguage = new TreeMap<>();
        languages.forEach((language, list) -> byLanguage.put(language, ErrorRate.summarise(list)));
        Result result = new Result(rows, summary, byLanguage, audioSeconds, recognitionSeconds);
        if (out != null) {
            printSummary(result, out);
            out.flush();
        }
        return result;
    }

    /** A recognizer that looks hypotheses up by audio file in a JSONL of {@code {"id","text"}} keyed to the manifest. */
    public static Function<Path, String> hypothesesFrom(Path manifest, Path hypotheses) throws IOException {
        Map<String, String> byId = new TreeMap<>();
        List<String> lines = Files.readAllLines(hypotheses, StandardCharsets.UTF_8);
        for (int n = 0; n < lines.size(); n++) {
            if (lines.get(n).isBlank()) continue;
            JsonNode node;
            try {
                node = JSON.readTree(lines.get(n));
            } catch (JsonProcessingException e) {
                throw new IOException(hypotheses + ":" + (n + 1) + ": not valid JSON: " + e.getOriginalMessage());
            }
            if (!node.path("id").isTextual() || !node.path("text").isTextual()) {
                throw new IOException(hypotheses + ":" + (n + 1) + ": expected {\"id\", \"text\"}");
            }
            byId.put(node.get("id").asText(), node.get("text").asText());
        }
        Map<Path, String> byAudio = new TreeMap<>();
        for (Entry entry : readManifest(manifest, 0)) {
            String text = byId.get(entry.id());
            if (text == null) throw new IOException(hypotheses + ": no hypothesis for id " + entry.id());
            byAudio.put(entry.audio(), text);
        }
        return byAudio::get;
    }

    private static void printSummary(Result result, PrintWriter out) {
        out.println();
        printLine(out, "all", result.summary());
        if (result.byLanguage().size() > 1) result.byLanguage().forEach((language, s) -> printLine(out, language, s));
        out.printf(Locale.ROOT, "audio %.1f s, recognition %.1f s, real-time factor %.3f%n", result.audioSeconds(),
                result.recognitionSeconds(), result.realTimeFactor());
    }

    private static void printLine(PrintWriter out, String label, ErrorRate.Summary s) {
        ErrorRate.Edits c = s.characters(), w = s.words();
        out.printf(Locale.ROOT, "%-4s %5d utts  CER %6.2f%% (S %d D %d I %d / %d chars)  WER %6.2f%% (S %d D %d I %d "
                        + "/ %d words)  SER %5.1f%%%n", label, s.utterances(), 100 * s.cer(), c.substitutions(),
                c.deletions(), c.insertions(), c.referenceLength(), 100 * s.wer(), w.substitutions(), w.deletions(),
                w.insertions(), w.referenceLength(), 100 * s.sentenceErrorRate());
    }

    private static String clip(String text, int width) {
        return text.length() <= width ? text : text.substring(0, width - 1) + "…";
    }
}
