package xllm.eval;

import xllm.data.JsonLines;
import xllm.speech.WavReader;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.function.Function;

/**
 * Runs a recognizer over an ASR manifest (DESIGN.md §4: {@code {"id","audio","text","language"?}}, audio relative
 * to the manifest) and scores it with {@link ErrorRate}: a table of id, reference, hypothesis and CER per
 * utterance, then corpus CER / WER with their S/D/I counts, sentence error rate, per-language lines when the
 * manifest mixes languages, and the real-time factor (recognizer wall time / audio duration). The recognizer is
 * any {@code Entry → String} function, so the same code scores the ASR model, a C-Former pipeline or a stored
 * hypothesis file ({@link #hypothesesFrom}, matched by id).
 */
public final class AsrEvaluation {

    private static final int TEXT_COLUMN = 40;

    /**
     * A manifest line; {@code image} is the optional picture the speech is about (multimodal ASR, null without);
     * {@code line} is its line number, for messages.
     */
    public record Entry(String id, Path audio, String text, String language, Path image, int line) {
    }

    /** Everything {@link #run} measured. */
    public record Result(List<ErrorRate.Row> rows, ErrorRate.Summary summary, Map<String, ErrorRate.Summary> byLanguage,
                         double audioSeconds, double recognitionSeconds) {
        public double realTimeFactor() {
            return recognitionSeconds / Math.max(audioSeconds, 1e-9);
        }
    }

    private AsrEvaluation() {}

    /**
     * Reads the manifest ({@link JsonLines}: errors name the file, line and problem); ids must be unique, since
     * stored hypotheses are matched to rows by id. {@code limit} ≤ 0 reads all.
     */
    public static List<Entry> readManifest(Path manifest, int limit) throws IOException {
        List<Entry> entries = new ArrayList<>();
        Map<String, Integer> lineOfId = new HashMap<>();
        JsonLines.read(manifest, line -> {
            String id = line.string("id");
            Integer first = lineOfId.putIfAbsent(id, line.number());
            if (first != null) throw new IOException(line.where() + ": id \"" + id + "\" again (first on line " + first + ")");
            String text = line.string("text");
            Path image = line.object().has("image") ? line.media("image", manifest) : null;
            entries.add(new Entry(id, line.media("audio", manifest), text, line.string("language", "en"), image,
                    line.number()));
            return limit <= 0 || entries.size() < limit;
        });
        if (entries.isEmpty()) throw new IOException(manifest + ": no utterances");
        return entries;
    }

    /**
     * Recognises every utterance (in manifest order), prints the table and summary to {@code out} (null: silent)
     * and returns the totals. Every recording is read first, so a bad one stops the evaluation before the
     * recognizer has spent anything.
     */
    public static Result run(Function<Entry, String> recognizer, Path manifest, int limit, PrintWriter out)
            throws IOException {
        return run(recognizer, manifest, readManifest(manifest, limit), out);
    }

    /** As above, on {@code entries} already read from {@code manifest} (which messages name). */
    public static Result run(Function<Entry, String> recognizer, Path manifest, List<Entry> entries, PrintWriter out)
            throws IOException {
        double audioSeconds = 0, recognitionSeconds = 0;
        for (Entry entry : entries) {
            try {
                audioSeconds += WavReader.read(entry.audio()).seconds();
            } catch (IOException e) {
                throw new IOException(manifest + ":" + entry.line() + ": " + e.getMessage(), e);
            }
        }
        List<ErrorRate.Row> rows = new ArrayList<>();
        Map<String, List<ErrorRate.Row>> languages = new TreeMap<>();
        if (out != null) {
            out.printf(Locale.ROOT, "%-24s %-" + TEXT_COLUMN + "s %-" + TEXT_COLUMN + "s %7s%n", "id", "reference",
                    "hypothesis", "CER");
        }
        for (Entry entry : entries) {
            long start = System.nanoTime();
            String hypothesis = recognizer.apply(entry);
            recognitionSeconds += (System.nanoTime() - start) / 1e9;
            ErrorRate.Row row;
            try {
                row = ErrorRate.score(entry.id(), entry.text(), hypothesis == null ? "" : hypothesis);
            } catch (IllegalArgumentException e) {
                throw new IOException(manifest + ":" + entry.line() + ": id \"" + entry.id() + "\": " + e.getMessage(), e);
            }
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

    /**
     * A recognizer that looks each row's hypothesis up by id in a JSONL of {@code {"id","text"}}. Rows may share a
     * recording, so the id is the only key. The file must hold exactly one hypothesis per manifest id: a repeated
     * id, an id the manifest lacks and a manifest id without a hypothesis are errors naming the line.
     */
    public static Function<Entry, String> hypothesesFrom(Path manifest, Path hypotheses) throws IOException {
        Set<String> ids = new HashSet<>();
        List<Entry> entries = readManifest(manifest, 0);
        for (Entry entry : entries) ids.add(entry.id());
        Map<String, String> byId = new HashMap<>();
        Map<String, Integer> lineOfId = new HashMap<>();
        JsonLines.read(hypotheses, line -> {
            String id = line.string("id");
            String text = line.string("text");
            if (!ids.contains(id)) throw new IOException(line.where() + ": id \"" + id + "\" is not in " + manifest);
            Integer first = lineOfId.putIfAbsent(id, line.number());
            if (first != null) throw new IOException(line.where() + ": id \"" + id + "\" again (first on line " + first + ")");
            byId.put(id, text);
            return true;
        });
        for (Entry entry : entries) {
            if (!byId.containsKey(entry.id())) {
                throw new IOException(hypotheses + ": no hypothesis for id \"" + entry.id() + "\" (" + manifest + ":"
                        + entry.line() + ")");
            }
        }
        return entry -> byId.get(entry.id());
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

    /** {@code text} cut to {@code width} code points, the last one an ellipsis (never half a surrogate pair). */
    private static String clip(String text, int width) {
        if (text.codePointCount(0, text.length()) <= width) return text;
        return text.substring(0, text.offsetByCodePoints(0, width - 1)) + "…";
    }
}
