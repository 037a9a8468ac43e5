package xllm.serve;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import xllm.train.MetricsLog;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * The report of {@code ./xllm bootstrap}: REPORT.md (where the time went, each stage's loss curve, every held-out
 * score beside the paper's number) and report.json with the same figures, under {@code runs/bootstrap}.
 */
final class BootstrapReport {

    private static final ObjectMapper JSON = new ObjectMapper();

    /** One headline row: a measure, the eval giving it at stage 2 and after stage 3, the field, the paper's figure. */
    private record Row(String measure, String stage2, String stage3, String field, String paper) {}

    private static final List<Row> HEADLINES = List.of(
            new Row("CIF ASR model, CER (held-out synthetic English)", "eval-cif", null, "cer_s",
                    "CIF model 6.0 (AISHELL-2 test-ios)"),
            new Row("LLM transcription through the C-Former, CER (same utterances)", "eval-speech-s2", null, "cer_s",
                    "X-LLM 8.7 (1.45x the CIF model)"),
            new Row("multimodal ASR, speech alone (S), CER", "eval-mmasr-s2", "eval-mmasr-s3", "cer_s",
                    "3.4 (VSDial-CN test-orig)"),
            new Row("multimodal ASR, speech + image (S+V), CER", "eval-mmasr-s2", "eval-mmasr-s3", "cer_sv",
                    "4.7 after stage 2, 4.3 after stage 3"),
            new Row("image QA, held-out scenes", "eval-image-s2", "eval-image-s3", "overall",
                    "stage 3 keeps image QA (Table 7 trains adapters only)"),
            new Row("video direction of motion, held-out clips", "eval-video-s2", "eval-video-s3", "overall",
                    "issue goal >= 85% after stage 3"),
            new Row("spoken question about an image (image + speech in)", "eval-spoken-s2", "eval-spoken-s3", "overall",
                    "answered without joint training (Table 9, qualitative)"),
            new Row("held-out instruction set, all tasks", null, "eval-instructions-s3", "overall", "-"));

    private BootstrapReport() {}

    static void write(List<BootstrapPipeline.Step> steps, Path state, PrintStream log) throws IOException {
        Path plots = state.resolve("plots");
        Files.createDirectories(plots);
        ObjectNode report = JSON.createObjectNode();
        report.put("written", java.time.Instant.now().toString());
        report.set("machine", JSON.valueToTree(xllm.eval.BenchmarkReport.machine()));
        StringBuilder md = new StringBuilder();
        md.append("# xllm bootstrap report\n\n");
        md.append(String.format(Locale.ROOT, "Written %s by `./xllm bootstrap` on %s (%d cores).%n%n", report.get("written").asText(),
                report.get("machine").get("cpu").asText(), report.get("machine").get("cores").asInt()));

        // where the time goes
        md.append("## Where the time goes\n\n| step | what | planned min | took min | steps | last loss | held-out loss | samples/s |\n");
        md.append("|---|---|---|---|---|---|---|---|\n");
        ArrayNode timing = report.putArray("steps");
        double total = 0, planned = 0;
        for (BootstrapPipeline.Step step : steps) {
            if (step.action() instanceof BootstrapPipeline.Report) continue;
            Path markerFile = state.resolve("steps").resolve(step.name() + ".json");
            if (!Files.isRegularFile(markerFile)) continue;
            JsonNode marker = JSON.readTree(markerFile.toFile());
            double minutes = marker.path("seconds").asDouble() / 60;
            total += minutes;
            planned += step.minutes();
            ObjectNode row = timing.addObject().put("step", step.name()).put("what", step.what())
                    .put("minutes_planned", step.minutes()).put("minutes", minutes);
            String trainCells = "| | | |";
            if (isTraining(step)) {
                Path run = step.outputs().get(0);
                List<Map<String, Object>> metrics = MetricsLog.read(MetricsLog.in(run));
                if (!metrics.isEmpty()) {
                    Map<String, Object> last = metrics.get(metrics.size() - 1);
                    double evalLoss = Double.NaN;
                    for (Map<String, Object> m : metrics) if (m.get("eval_loss") instanceof Number n) evalLoss = n.doubleValue();
                    double[] rates = metrics.stream().mapToDouble(m -> ((Number) m.get("samples_per_s")).doubleValue()).sorted().toArray();
                    double median = rates[rates.length / 2];
                    double lastLoss = ((Number) last.get("loss")).doubleValue();
                    row.put("train_steps", metrics.size()).put("last_loss", lastLoss).put("eval_loss", evalLoss)
                            .put("samples_per_s_median", median);
                    trainCells = String.format(Locale.ROOT, "| %d | %.3f | %.3f | %.1f |", metrics.size(), lastLoss, evalLoss, median);
                }
                Path curve = run.resolve("loss.png");
                if (Files.isRegularFile(curve)) {
                    Files.copy(curve, plots.resolve(step.name() + "-loss.png"), StandardCopyOption.REPLACE_EXISTING);
                }
            }
            md.append(String.format(Locale.ROOT, "| %s | %s | %.1f | %.1f %s%n", step.name(), step.what(), step.minutes(),
                    minutes, trainCells));
        }
        report.put("minutes_total", total);
        md.append(String.format(Locale.ROOT, "| **total** | | %.1f | **%.1f** | | | | |%n%n", planned, total));
        md.append("Each step's time is that of its latest run; steps skipped because they were up to date keep the time "
                + "they took when they ran.\n\n");

        // held-out scores
        ObjectNode evals = report.putObject("evaluations");
        for (BootstrapPipeline.Step step : steps) {
            Path file = state.resolve("evals").resolve(step.name() + ".json");
            if (step.action() instanceof BootstrapPipeline.Evaluate && Files.isRegularFile(file)) {
                evals.set(step.name(), JSON.readTree(file.toFile()));
            }
        }
        md.append("## Held-out scores\n\n| measure | stage 2 | after stage 3 | paper |\n|---|---|---|---|\n");
        for (Row row : HEADLINES) {
            md.append(String.format("| %s | %s | %s | %s |%n", row.measure(), cell(evals, row.stage2(), row.field()),
                    cell(evals, row.stage3(), row.field()), row.paper()));
        }
        md.append("\nCER in %, lower is better; accuracies are exact-match answers (chance: guessing among the answers its "
                + "kind of question has in the set). The paper's figures are ChatGLM-6B on real Chinese data; ours are "
                + "SmolLM2-135M on synthetic English scenes, clips and espeak-ng speech, so compare directions, not "
                + "levels.\n\n");
        checks(evals).forEach(line -> md.append(line).append('\n'));
        md.append('\n');
        for (var e : evals.properties()) {
            md.append(String.format("- `%s` (%s): %s, model `%s`, data `%s`; table `evals/%s.txt`%n", e.getKey(),
                    e.getValue().path("what").asText(), BootstrapEvaluations.summary((ObjectNode) e.getValue()),
                    e.getValue().path("model").asText(), e.getValue().path("data").asText(), e.getKey()));
        }

        // loss curves
        md.append("\n## Loss curves\n\n");
        for (BootstrapPipeline.Step step : steps) {
            if (Files.isRegularFile(plots.resolve(step.name() + "-loss.png"))) {
                md.append(String.format("### %s%n%n![%s loss](plots/%s-loss.png)%n%n", step.name(), step.name(), step.name()));
            }
        }
        BootstrapPipeline.writeAtomically(state.resolve("report.json"),
                JSON.writerWithDefaultPrettyPrinter().writeValueAsBytes(report));
        BootstrapPipeline.writeAtomically(state.resolve("REPORT.md"), md.toString().getBytes(StandardCharsets.UTF_8));
        log.printf(Locale.ROOT, "bootstrap: report %s (%.1f min of steps in all)%n", state.resolve("REPORT.md"), total);
    }

    /** The paper's claims in miniature, each checked on this run's held-out figures (skipped when one is missing). */
    static List<String> checks(ObjectNode evals) {
        List<String> lines = new java.util.ArrayList<>();
        double cif = value(evals, "eval-cif", "cer_s"), llm = value(evals, "eval-speech-s2", "cer_s");
        if (Double.isFinite(cif) && Double.isFinite(llm) && cif > 0) {
            lines.add(check(llm / cif <= 1.5, String.format(Locale.ROOT, "LLM transcription CER is %.2fx the CIF model's "
                    + "on the same utterances (paper 8.7/6.0 = 1.45x; goal <= 1.5x)", llm / cif)));
        }
        double spoken = value(evals, "eval-spoken-s2", "overall"), chance = value(evals, "eval-spoken-s2", "chance");
        if (Double.isFinite(spoken)) {
            lines.add(check(spoken > chance, String.format(Locale.ROOT, "stage 2 only: spoken questions about images "
                    + "answered %.1f%% vs chance %.1f%% (paper Table 9)", 100 * spoken, 100 * chance)));
        }
        double sv2 = value(evals, "eval-mmasr-s2", "cer_sv"), sv3 = value(evals, "eval-mmasr-s3", "cer_sv");
        double s3 = value(evals, "eval-mmasr-s3", "cer_s");
        if (Double.isFinite(sv2) && Double.isFinite(sv3)) {
            lines.add(check(sv3 < sv2, String.format(Locale.ROOT, "stage 3 lowers multimodal-ASR CER (S+V): %.2f%% -> "
                    + "%.2f%% (paper 4.7 -> 4.3)", 100 * sv2, 100 * sv3)));
            lines.add(check(sv3 < s3, String.format(Locale.ROOT, "after stage 3 the image helps: S+V %.2f%% vs S %.2f%%",
                    100 * sv3, 100 * s3)));
        }
        double image2 = value(evals, "eval-image-s2", "overall"), image3 = value(evals, "eval-image-s3", "overall");
        if (Double.isFinite(image2) && Double.isFinite(image3)) {
            lines.add(check(image3 >= image2 - 0.02, String.format(Locale.ROOT, "image QA after stage 3 within 2 points of "
                    + "stage 2: %.1f%% vs %.1f%%", 100 * image3, 100 * image2)));
        }
        double video = value(evals, "eval-video-s3", "overall");
        if (Double.isFinite(video)) {
            lines.add(check(video >= 0.85, String.format(Locale.ROOT, "video direction after stage 3: %.1f%% (goal >= 85%%)",
                    100 * video)));
        }
        return lines;
    }

    private static String check(boolean holds, String claim) {
        return (holds ? "- holds: " : "- does not hold: ") + claim;
    }

    private static double value(ObjectNode evals, String name, String field) {
        JsonNode e = evals.get(name);
        return e == null || !e.has(field) ? Double.NaN : e.get(field).asDouble();
    }

    private static boolean isTraining(BootstrapPipeline.Step step) {
        return BootstrapPipeline.trains(step) && Files.isDirectory(step.outputs().get(0));
    }

    /** The figure of one eval: a CER or an accuracy in %, accuracies with their chance level. */
    private static String cell(ObjectNode evals, String name, String field) {
        if (name == null) return "-";
        JsonNode e = evals.get(name);
        if (e == null || !e.has(field)) return "not run";
        String value = String.format(Locale.ROOT, "%.1f%%", 100 * e.get(field).asDouble());
        if (field.equals("overall")) {
            value += String.format(Locale.ROOT, " of %d (chance %.1f%%)", e.path("total").asInt(), 100 * e.path("chance").asDouble());
        }
        return value;
    }
}
