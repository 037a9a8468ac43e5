package xllm.eval;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import xllm.llm.Generator;
import xllm.model.ImageChat;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * Exact-match accuracy of image question answering on a manifest (synthetic scenes carry a "task" field: caption,
 * describe, colour, shape, count, position): greedy answers, normalised (case, surrounding punctuation and spaces),
 * compared with the reference answer; a per-task table plus the overall figure.
 */
public final class ImageQaEvaluation {

    public record Score(int correct, int total) {
        public double accuracy() {
            return total == 0 ? Double.NaN : (double) correct / total;
        }
    }

    private ImageQaEvaluation() {}

    /** Lower case, no leading/trailing spaces or sentence punctuation (ASCII and CJK). */
    public static String normalise(String text) {
        return text.strip().toLowerCase(java.util.Locale.ROOT).replaceAll("^[\\p{Punct}\\s。，！？]+|[\\p{Punct}\\s。，！？]+$", "");
    }

    public static Map<String, Score> run(ImageChat chat, Path manifest, int limit, PrintStream log) throws IOException {
        ObjectMapper json = new ObjectMapper();
        Map<String, int[]> counts = new TreeMap<>();
        List<String> lines = Files.readAllLines(manifest, StandardCharsets.UTF_8);
        int done = 0;
        for (String line : lines) {
            if (line.isBlank() || (limit > 0 && done >= limit)) continue;
            JsonNode node = json.readTree(line);
            String task = node.path("task").asText("all") + "/" + node.path("language").asText("?");
            String question = node.get("conversations").get(0).get("value").asText().replace("<image>", "").strip();
            String expected = node.get("conversations").get(1).get("value").asText();
            Path image = manifest.toAbsolutePath().getParent().resolve(node.get("image").asText());
            String answer = chat.answer(image, question, Generator.Options.greedy(24), null).text();
            boolean right = normalise(answer).equals(normalise(expected));
            int[] c = counts.computeIfAbsent(task, k -> new int[2]);
            c[0] += right ? 1 : 0;
            c[1]++;
            done++;
            if (log != null && !right) log.printf("  %s: expected '%s', got '%s'%n", node.get("id").asText(), expected, answer.strip());
        }
        Map<String, Score> scores = new TreeMap<>();
        int correct = 0, total = 0;
        for (var e : counts.entrySet()) {
            scores.put(e.getKey(), new Score(e.getValue()[0], e.getValue()[1]));
            correct += e.getValue()[0];
            total += e.getValue()[1];
        }
        scores.put("overall", new Score(correct, total));
        return scores;
    }
}
