package xllm.eval;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import xllm.data.SyntheticScenes;
import xllm.llm.Generator;
import xllm.model.MediaChat;
import xllm.train.ProgressBar;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

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

    /** Lower case, no leading/trailing spaces or sentence punctuation (ASCII and CJK). */
    public static String normalise(String text) {
        return text.strip().toLowerCase(java.util.Locale.ROOT).replaceAll("^[\\p{Punct}\\s。，！？]+|[\\p{Punct}\\s。，！？]+$", "");
    }

    /** Whether {@code answer} contains one of the strings of the JSON array {@code keywords} (case-insensitive). */
    static boolean containsKeyword(String answer, JsonNode keywords) {
        String text = answer.toLowerCase(java.util.Locale.ROOT);
        for (JsonNode keyword : keywords) {
            if (text.contains(keyword.asText().toLowerCase(java.util.Locale.ROOT))) return true;
        }
        return false;
    }

    public static Map<String, Score> run(MediaChat chat, Path manifest, int limit, PrintStream log) throws IOException {
        return run(chat, manifest, limit, null, log);
    }

    /** As above, only samples whose "task" is {@code task} (null: all). */
    public static Map<String, Score> run(MediaChat chat, Path manifest, int limit, String task, PrintStream log)
            throws IOException {
        ObjectMapper json = new ObjectMapper();
        Map<String, int[]> counts = new TreeMap<>();
        Map<String, List<ErrorRate.Row>> replies = new TreeMap<>();
        List<JsonNode> samples = new ArrayList<>();
        List<String> lines = Files.readAllLines(manifest, StandardCharsets.UTF_8);
        for (int n = 0; n < lines.size() && (limit <= 0 || samples.size() < limit); n++) {
            if (lines.get(n).isBlank()) continue;
            JsonNode node;
            try {
                node = json.readTree(lines.get(n));
            } catch (com.fasterxml.jackson.core.JacksonException e) {
                throw new IOException(manifest + ":" + (n + 1) + ": not a JSON object: " + e.getOriginalMessage(), e);
            }
            if (task == null || task.equals(node.path("task").asText())) samples.add(node);
        }
        ProgressBar progress = ProgressBar.stderr(samples.size(), "sample");
        int done = 0;
        for (JsonNode node : samples) {
            String row = node.path("task").asText("all") + "/" + node.path("language").asText("?");
            // exactly the question the interface was trained on (the <video> placeholder was echoed back otherwise)
            String question = xllm.data.ConversationSample.questionText(node.get("conversations").get(0).get("value").asText());
            String expected = node.get("conversations").get(1).get("value").asText();
            String field = node.has("image") ? "image" : node.has("video") ? "video" : "audio";
            if (!node.hasNonNull(field)) throw new IOException(manifest + ": sample " + node.path("id") + " has no image, video or audio");
            Path image = manifest.toAbsolutePath().getParent().resolve(node.get(field).asText());
            boolean spoken = field.equals("audio") && question.isEmpty();
            // a spoken question's expected answer is a sentence (the LLM's reply, up to 40 tokens); others are words
            String answer = chat.answer(image, question, Generator.Options.greedy(spoken ? 48 : 24), null).text();
            boolean right = normalise(answer).equals(normalise(expected)) || containsKeyword(answer, node.path("keywords"));
            int[] c = counts.computeIfAbsent(row, k -> new int[2]);
            c[0] += right ? 1 : 0;
            c[1]++;
            done++;
            if (spoken) {
                replies.computeIfAbsent(row, k -> new ArrayList<>()).add(ErrorRate.score(node.get("id").asText(), expected, answer));
            }
            if (log != null && !right) log.printf("  %s: expected '%s', got '%s'%n", node.get("id").asText(), expected, answer.strip());
            progress.update(done, Double.NaN, Double.NaN, 1);
            String kind = node.path("task").asText();
            if ((kind.equals("caption") || kind.equals("describe")) && node.path("attributes").has("count")) { // scenes
                scoreAttributes(node.get("attributes"), answer, counts);
            }
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
