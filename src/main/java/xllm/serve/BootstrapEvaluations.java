package xllm.serve;

import ai.djl.ndarray.NDManager;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import xllm.eval.AsrEvaluation;
import xllm.eval.ImageQaEvaluation;
import xllm.model.Modality;
import xllm.model.XLlm;
import xllm.speech.CifAsrModel;

import java.io.IOException;
import java.io.PrintStream;
import java.io.PrintWriter;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.EnumSet;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/** The held-out evaluations of {@code ./xllm bootstrap}, as JSON the report reads (and the text tables beside). */
final class BootstrapEvaluations {

    enum Kind {
        /** CER: a CIF ASR checkpoint, or an X-LLM (S, and S+V when the manifest has images). */
        ASR,
        /** Exact-match answers to the manifest's questions ({@code eval image/video/spoken}). */
        QA
    }

    private static final ObjectMapper JSON = new ObjectMapper();

    private BootstrapEvaluations() {}

    static ObjectNode run(BootstrapPipeline.Evaluate evaluate, Path table, PrintStream log) throws IOException {
        ObjectNode result = JSON.createObjectNode();
        result.put("kind", evaluate.kind().name().toLowerCase(java.util.Locale.ROOT));
        result.put("model", evaluate.model().toString());
        result.put("data", evaluate.data().toString());
        if (evaluate.task() != null) result.put("task", evaluate.task());
        long start = System.nanoTime();
        try (PrintWriter out = new PrintWriter(Files.newBufferedWriter(table, StandardCharsets.UTF_8))) {
            if (evaluate.kind() == Kind.ASR) asr(evaluate, out, result);
            else questions(evaluate, out, result);
        }
        result.put("seconds", (System.nanoTime() - start) / 1e9);
        log.printf(java.util.Locale.ROOT, "  %s%n", summary(result));
        return result;
    }

    /** One line of the headline figures. */
    static String summary(ObjectNode result) {
        if (result.has("overall")) {
            return String.format(java.util.Locale.ROOT, "accuracy %.1f%% of %d (chance %.1f%%)",
                    100 * result.get("overall").asDouble(), result.get("total").asInt(), 100 * result.get("chance").asDouble());
        }
        if (result.has("cer_sv")) {
            return String.format(java.util.Locale.ROOT, "CER S %.2f%%, S+V %.2f%% (%d utterances)",
                    100 * result.get("cer_s").asDouble(), 100 * result.get("cer_sv").asDouble(), result.get("utterances").asInt());
        }
        return String.format(java.util.Locale.ROOT, "CER %.2f%% (%d utterances)", 100 * result.get("cer_s").asDouble(),
                result.get("utterances").asInt());
    }

    private static void asr(BootstrapPipeline.Evaluate evaluate, PrintWriter out, ObjectNode result) throws IOException {
        List<AsrEvaluation.Entry> entries = AsrEvaluation.readManifest(evaluate.data(), evaluate.limit());
        result.put("utterances", entries.size());
        if (CifAsrModel.isCheckpoint(evaluate.model())) {
            try (CifAsrModel asr = CifAsrModel.load(evaluate.model())) {
                AsrEvaluation.Result r = AsrEvaluation.run(entry -> {
                    try {
                        return asr.transcribe(entry.audio());
                    } catch (IOException e) {
                        throw new UncheckedIOException(e);
                    }
                }, evaluate.data(), entries, out);
                result.put("cer_s", r.summary().cer());
            }
            return;
        }
        try (NDManager manager = NDManager.newBaseManager(); XLlm xllm = XLlm.load(evaluate.model(), manager)) {
            out.println("S: speech alone");
            result.put("cer_s", AsrEvaluation.run(e -> EvalCommand.transcribe(xllm, e, false), evaluate.data(), entries, out)
                    .summary().cer());
            if (entries.stream().anyMatch(e -> e.image() != null)) {
                out.println();
                out.println("S+V: speech with its image");
                result.put("cer_sv", AsrEvaluation.run(e -> EvalCommand.transcribe(xllm, e, true), evaluate.data(), entries,
                        out).summary().cer());
            }
        }
    }

    private static void questions(BootstrapPipeline.Evaluate evaluate, PrintWriter out, ObjectNode result)
            throws IOException {
        List<ImageQaEvaluation.Sample> samples = ImageQaEvaluation.readSamples(evaluate.data(), evaluate.limit(),
                evaluate.task(), EnumSet.allOf(Modality.class));
        Map<String, ImageQaEvaluation.Score> scores;
        java.io.ByteArrayOutputStream errors = new java.io.ByteArrayOutputStream();
        try (NDManager manager = NDManager.newBaseManager(); XLlm xllm = XLlm.load(evaluate.model(), manager);
             PrintStream wrong = new PrintStream(errors, true, StandardCharsets.UTF_8)) {
            scores = ImageQaEvaluation.run(ImageQaEvaluation.answering(xllm), samples, wrong);
        }
        out.printf("%-22s %8s %8s %9s%n", "task", "correct", "total", "accuracy");
        ObjectNode rows = result.putObject("scores");
        scores.forEach((task, s) -> {
            out.printf(java.util.Locale.ROOT, "%-22s %8d %8d %8.1f%%%n", task, s.correct(), s.total(), 100 * s.accuracy());
            rows.putObject(task).put("correct", s.correct()).put("total", s.total()).put("accuracy", s.accuracy());
        });
        out.println();
        out.println("wrong answers:");
        out.print(errors.toString(StandardCharsets.UTF_8));
        ImageQaEvaluation.Score overall = scores.get("overall");
        result.put("overall", overall.accuracy());
        result.put("total", overall.total());
        result.put("chance", chance(evaluate.data(), samples));
    }

    /**
     * Accuracy of guessing, for each question, uniformly among the distinct answers its kind of question (colour,
     * count, shape, position, or else its task; read from the typed text or the "spoken" text) has in the set — e.g.
     * one of six colours for "What colour are they?": the level a model that ignores the medium reaches by luck.
     */
    static double chance(Path manifest, List<ImageQaEvaluation.Sample> samples) throws IOException {
        Map<String, String> kindById = new HashMap<>();
        for (String line : Files.readAllLines(manifest, StandardCharsets.UTF_8)) {
            if (line.isBlank() || line.strip().startsWith("[")) continue;
            com.fasterxml.jackson.databind.JsonNode node = JSON.readTree(line);
            com.fasterxml.jackson.databind.JsonNode turns = node.path("conversations");
            String question = node.has("spoken") ? node.get("spoken").asText()
                    : turns.path(Math.max(0, turns.size() - 2)).path("value").asText();
            kindById.put(node.path("id").asText(), questionKind(question));
        }
        Map<String, Set<String>> answers = new HashMap<>();
        for (ImageQaEvaluation.Sample s : samples) {
            answers.computeIfAbsent(group(kindById, s), k -> new HashSet<>()).add(ImageQaEvaluation.normalise(s.expected()));
        }
        double sum = 0;
        for (ImageQaEvaluation.Sample s : samples) sum += 1.0 / answers.get(group(kindById, s)).size();
        return samples.isEmpty() ? Double.NaN : sum / samples.size();
    }

    static String questionKind(String question) {
        String q = question.toLowerCase(java.util.Locale.ROOT);
        if (q.matches("(?s).*(colou?r|颜色).*")) return "colour";
        if (q.matches("(?s).*(how many|几个|多少).*")) return "count";
        if (q.matches("(?s).*(where|which way|direction|left|right|哪里|位置|方向).*")) return "position";
        if (q.matches("(?s).*(shape|形状).*")) return "shape";
        return "other";
    }

    private static String group(Map<String, String> kindById, ImageQaEvaluation.Sample s) {
        return s.task() + "/" + s.language() + "/" + kindById.getOrDefault(s.id(), "other");
    }
}
