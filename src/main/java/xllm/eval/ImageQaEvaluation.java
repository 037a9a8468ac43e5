package xllm.eval;

import com.fasterxml.jackson.databind.JsonNode;
import xllm.data.ConversationSample;
import xllm.data.JsonLines;
import xllm.data.SyntheticScenes;
import xllm.llm.Generator;
import xllm.model.Modality;
import xllm.model.Turn;
import xllm.model.XLlm;
import xllm.train.InstructionTask;
import xllm.data.ProgressBar;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;

/**
 * Exact-match accuracy of image (or video) question answering on a manifest (synthetic scenes carry a "task" field: caption,
 * describe, colour, shape, count, position): greedy answers, normalised (case, surrounding punctuation and spaces),
 * compared with the reference answer; a per-task table plus the overall figure, and for scene descriptions an
 * attribute-by-attribute score (colour, shape, count, all three). A sample with {@code "keywords"} (the real photos of
 * {@link xllm.data.DebianPhotos}) is also right when the answer contains one of them, case-insensitively: free-form
 * answers about a photo are not scored by exact match.
 *
 * <p>Spoken questions ({@code "audio"} samples whose human turn is only {@code <audio>}, task "reply", from
 * {@code ./xllm bootstrap replies}) are asked with no typed question: the expected answer is the LLM's own reply to
 * the transcript, and besides exact match their rows report the word error rate of the answer against it (how far the
 * answer to the speech is from the answer to the text).
 *
 * <p>The whole manifest is read and checked first ({@link #readSamples}), so a bad line is reported with its file and
 * line number before the model has answered anything.
 */
public final class ImageQaEvaluation {

    /** {@code wer}: word error rate of the answers against the expected ones (spoken-question rows; NaN otherwise). */
    public record Score(int correct, int total, double wer) {
        public Score(int correct, int total) {
            this(correct, total, Double.NaN);
        }

        public double accuracy() {
            return total == 0 ? Double.NaN : (double) correct / total;
        }
    }

    private ImageQaEvaluation() {}

    /**
     * Lower case, no leading/trailing spaces or punctuation (ASCII, and the CJK 。，！？). A scan from both ends, not
     * a trailing-run pattern, which backtracks quadratically over a long run of punctuation inside the text.
     */
    public static String normalise(String text) {
        String s = text.strip().toLowerCase(java.util.Locale.ROOT);
        int start = 0, end = s.length();
        while (start < end && isTrimmed(s.charAt(start))) start++;
        while (end > start && isTrimmed(s.charAt(end - 1))) end--;
        return s.substring(start, end);
    }

    private static boolean isTrimmed(char c) {
        return "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~ \t\n\u000B\f\r。，！？".indexOf(c) >= 0;
    }

    /** Whether {@code answer} contains one of the strings of the JSON array {@code keywords} (case-insensitive). */
    static boolean containsKeyword(String answer, JsonNode keywords) {
        String text = answer.toLowerCase(java.util.Locale.ROOT);
        for (JsonNode keyword : keywords) {
            if (text.contains(keyword.asText().toLowerCase(java.util.Locale.ROOT))) return true;
        }
        return false;
    }

    /**
     * The model under evaluation: its greedy answer, of at most {@code maxTokens}, to the last turn of a conversation
     * (earlier turns are history with their reference answers).
     */
    @FunctionalInterface
    public interface Model {
        String answer(InstructionTask.Sample conversation, int maxTokens) throws IOException;
    }

    /**
     * One checked manifest line. {@code spoken}: an audio sample without a typed question (the speech is the
     * question); {@code keywords}: an array of strings, empty when the line has none; {@code attributes}: a scene
     * description's, null for other samples.
     */
    public record Sample(String id, String task, String language, InstructionTask.Sample conversation, String expected,
                         boolean spoken, JsonNode keywords, JsonNode attributes) {
    }

    public static Map<String, Score> run(XLlm model, Path manifest, int limit, PrintStream log) throws IOException {
        return run(model, manifest, limit, null, log);
    }

    /** As below, asking {@code model}; each sample's media must be ones the model reads. */
    public static Map<String, Score> run(XLlm model, Path manifest, int limit, String task, PrintStream log)
            throws IOException {
        return run(answering(model), readSamples(manifest, limit, task, model.modalities()), log);
    }

    /** {@code model} as the model under evaluation. */
    public static Model answering(XLlm model) {
        return (conversation, maxTokens) -> model.generate(List.of(turns(model, conversation)),
                Generator.Options.greedy(maxTokens), null).get(0).text();
    }

    /** A conversation's turns with their media prepared; the last turn's answer left to generate. */
    public static List<Turn> turns(XLlm model, InstructionTask.Sample conversation) throws IOException {
        return InstructionTask.turns(conversation, (m, file) -> Turn.Medium.prepared(model.interfaceOf(m).prepare(file)),
                false);
    }

    /** Scores {@code model} on {@code samples} ({@link #readSamples}); {@code log}, when given, gets each wrong answer. */
    public static Map<String, Score> run(Model model, List<Sample> samples, PrintStream log) throws IOException {
        Map<String, int[]> counts = new TreeMap<>();
        Map<String, List<ErrorRate.Row>> replies = new TreeMap<>();
        ProgressBar progress = ProgressBar.stderr(samples.size(), "sample");
        int done = 0;
        for (Sample sample : samples) {
            String row = sample.task() + "/" + sample.language();
            // a spoken question's expected answer is a sentence (the LLM's reply, up to 40 tokens); others are words
            String answer = model.answer(sample.conversation(), sample.spoken() ? 48 : 24);
            boolean right = normalise(answer).equals(normalise(sample.expected()))
                    || containsKeyword(answer, sample.keywords());
            int[] c = counts.computeIfAbsent(row, k -> new int[2]);
            c[0] += right ? 1 : 0;
            c[1]++;
            done++;
            if (sample.spoken()) {
                replies.computeIfAbsent(row, k -> new ArrayList<>()).add(ErrorRate.score(sample.id(), sample.expected(), answer));
            }
            if (log != null && !right) log.printf("  %s: expected '%s', got '%s'%n", sample.id(), sample.expected(), answer.strip());
            progress.update(done, Double.NaN, Double.NaN, 1);
            if (sample.attributes() != null) scoreAttributes(sample.attributes(), answer, counts); // scene descriptions
        }
        progress.finish();
        Map<String, Score> scores = new TreeMap<>();
        int correct = 0, total = 0;
        List<ErrorRate.Row> allReplies = new ArrayList<>();
        for (var e : counts.entrySet()) {
            List<ErrorRate.Row> rows = replies.getOrDefault(e.getKey(), List.of());
            allReplies.addAll(rows);
            scores.put(e.getKey(), new Score(e.getValue()[0], e.getValue()[1],
                    rows.isEmpty() ? Double.NaN : ErrorRate.summarise(rows).wer()));
            if (e.getKey().startsWith("attributes/")) continue; // a second view of the caption/describe rows
            correct += e.getValue()[0];
            total += e.getValue()[1];
        }
        scores.put("overall", new Score(correct, total, allReplies.isEmpty() ? Double.NaN : ErrorRate.summarise(allReplies).wer()));
        return scores;
    }

    /**
     * Reads and checks the samples to evaluate: the first {@code limit} (≤ 0: all) whose "task" is {@code task}
     * (null: all). Each needs a string "id", the media file {@code mediaField} (relative to the manifest), and
     * "conversations": a human turn (the question; without a typed question an audio sample is a spoken question)
     * then a gpt turn (the non-blank expected answer); "task", "language" must be strings and "keywords" an array
     * of strings when present. A caption or describe sample with "attributes" is scored attribute by attribute, so
     * these need string "colour" and "shape" and an integer "count". Errors name the file and line.
     */
    public static List<Sample> readSamples(Path manifest, int limit, String task, Set<Modality> modalities)
            throws IOException {
        List<Sample> samples = new ArrayList<>();
        Set<String> tasks = new TreeSet<>();
        JsonLines.read(manifest, line -> {
            JsonNode node = line.object();
            String id = line.string("id");
            String kind = line.string("task", "all");
            tasks.add(kind);
            String language = line.string("language", "?");
            InstructionTask.Sample conversation = InstructionTask.of(ConversationSample.fromJson(node, manifest, line.where()));
            InstructionTask.Exchange last = conversation.turns().get(conversation.turns().size() - 1);
            String expected = last.answer();
            for (Modality m : conversation.media().keySet()) {
                if (!modalities.contains(m)) {
                    throw new IOException(line.where() + ": sample '" + id + "' has " + (m == Modality.IMAGE ? "an " : "a ")
                            + m.field() + ", which this model does not read (it reads "
                            + modalities.stream().map(x -> "--" + x.flag()).toList() + "); choose samples with --task");
                }
            }
            if (conversation.media().isEmpty()) {
                throw new IOException(line.where() + ": sample '" + id + "' has no " + modalities.stream()
                        .map(Modality::field).toList() + " file to ask about");
            }
            JsonNode keywords = node.path("keywords");
            if (!keywords.isMissingNode() && !(keywords.isArray() && allText(keywords))) {
                throw new IOException(line.where() + ": \"keywords\" must be an array of strings");
            }
            JsonNode attributes = node.get("attributes");
            boolean scene = (kind.equals("caption") || kind.equals("describe")) && attributes != null && attributes.has("count");
            if (scene && !(attributes.path("colour").isTextual() && attributes.path("shape").isTextual()
                    && attributes.get("count").canConvertToInt() && attributes.get("count").isIntegralNumber())) {
                throw new IOException(line.where() + ": \"attributes\" of a scene description must have string "
                        + "\"colour\" and \"shape\" and an integer \"count\"");
            }
            if (task == null || task.equals(kind)) {
                boolean spoken = last.media().contains(Modality.SPEECH) && last.question().isBlank();
                samples.add(new Sample(id, kind, language, conversation, expected, spoken, keywords,
                        scene ? attributes : null));
            }
            return limit <= 0 || samples.size() < limit;
        });
        if (samples.isEmpty()) {
            throw new IOException(manifest + ": no samples" + (task == null ? "" : " of task \"" + task + "\" (tasks: "
                    + String.join(", ", tasks) + ")"));
        }
        return samples;
    }

    private static boolean allText(JsonNode array) {
        for (JsonNode element : array) if (!element.isTextual()) return false;
        return true;
    }

    private static final String[] COUNT_WORDS_ENGLISH = {"zero", "one", "two", "three", "four"};
    private static final String[] COUNT_WORDS_CHINESE = {"零个", "一个", "两个", "三个", "四个"};

    /**
     * Scores a scene description ("Two red circles." / "两个红色的圆形。") attribute by attribute against the
     * scene's {@code attributes}: an attribute is right when the answer names the true value and no other value of
     * that attribute. Adds rows {@code attributes/colour|shape|count|all} (all = the three right together: the
     * held-out attribute accuracy of the image alignment goal).
     */
    static void scoreAttributes(JsonNode attributes, String answer, Map<String, int[]> counts) {
        String text = " " + answer.toLowerCase(java.util.Locale.ROOT).replaceAll("[^\\p{L}\\p{N}]+", " ") + " ";
        java.util.Set<String> colours = new java.util.HashSet<>(), shapes = new java.util.HashSet<>(), numbers = new java.util.HashSet<>();
        for (SyntheticScenes.Colour c : SyntheticScenes.Colour.values()) {
            if (text.contains(" " + c.english + " ") || answer.contains(c.chinese)) colours.add(c.english);
        }
        for (SyntheticScenes.ShapeKind k : SyntheticScenes.ShapeKind.values()) {
            if (text.contains(" " + k.english + " ") || text.contains(" " + k.plural + " ") || answer.contains(k.chinese)) {
                shapes.add(k.english);
            }
        }
        for (int n = 0; n < COUNT_WORDS_ENGLISH.length; n++) {
            if (text.contains(" " + COUNT_WORDS_ENGLISH[n] + " ") || answer.contains(COUNT_WORDS_CHINESE[n])) numbers.add(String.valueOf(n));
        }
        boolean colour = colours.equals(java.util.Set.of(attributes.path("colour").asText()));
        boolean shape = shapes.equals(java.util.Set.of(attributes.path("shape").asText()));
        boolean count = numbers.equals(java.util.Set.of(String.valueOf(attributes.path("count").asInt())));
        add(counts, "attributes/colour", colour);
        add(counts, "attributes/shape", shape);
        add(counts, "attributes/count", count);
        add(counts, "attributes/all", colour && shape && count);
    }

    private static void add(Map<String, int[]> counts, String row, boolean right) {
        int[] c = counts.computeIfAbsent(row, k -> new int[2]);
        c[0] += right ? 1 : 0;
        c[1]++;
    }
}
