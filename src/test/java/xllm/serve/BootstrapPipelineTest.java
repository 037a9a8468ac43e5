package xllm.serve;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@link BootstrapPipeline}: steps run once, a rerun skips what is up to date, a change reruns what it reaches. */
class BootstrapPipelineTest {

    private static final PrintStream QUIET = new PrintStream(PrintStream.nullOutputStream());

    /** scenes (a child ./xllm) → mix (captions twice more) → report. */
    private static List<BootstrapPipeline.Step> tinyPlan(Path root, int trainScenes) {
        Path scenes = root.resolve("scenes");
        Path mixed = scenes.resolve("train-mixed.jsonl");
        return List.of(
                new BootstrapPipeline.Step("scenes", "tiny scenes", 0.1, List.of(),
                        new BootstrapPipeline.Run(List.of(List.of("bootstrap", "scenes", "--train", "" + trainScenes,
                                "--eval", "1", "--out", scenes.toString()))),
                        List.of(scenes.resolve("train.jsonl"), scenes.resolve("eval.jsonl"))),
                new BootstrapPipeline.Step("mix", "captions 3x", 0.1, List.of("scenes"),
                        new BootstrapPipeline.Mix(mixed, List.of(new BootstrapPipeline.Part(scenes.resolve("train.jsonl"), null, 1),
                                new BootstrapPipeline.Part(scenes.resolve("train.jsonl"), "caption", 2))),
                        List.of(mixed)),
                new BootstrapPipeline.Step("report", "report", 0.1, List.of("scenes", "mix"), new BootstrapPipeline.Report(),
                        List.of(root.resolve("state/REPORT.md"))));
    }

    @Test
    void runsOnceThenSkipsThenRerunsWhatAChangeReaches(@TempDir Path root) throws Exception {
        Path state = root.resolve("state");
        Map<String, Double> first = new BootstrapPipeline(tinyPlan(root, 3), state, QUIET).run(false);
        assertEquals(List.of("scenes", "mix", "report"), List.copyOf(first.keySet()));
        List<String> train = Files.readAllLines(root.resolve("scenes/train.jsonl"));
        long captions = train.stream().filter(l -> l.contains("\"task\":\"caption\"")).count();
        assertTrue(captions > 0, "the scenes have caption samples");
        assertEquals(train.size() + 2 * captions, Files.readAllLines(root.resolve("scenes/train-mixed.jsonl")).size());
        assertTrue(Files.readString(state.resolve("REPORT.md")).contains("| scenes | tiny scenes |"));
        assertTrue(Files.isRegularFile(state.resolve("steps/scenes.json")));

        assertEquals(Map.of(), new BootstrapPipeline(tinyPlan(root, 3), state, QUIET).run(false), "all up to date");

        // an edited output is noticed by its digest: the mix reruns; it writes the same bytes again, so what reads
        // it (keyed by that digest) stays up to date
        Files.writeString(root.resolve("scenes/train-mixed.jsonl"), "edited\n");
        assertEquals(List.of("mix"),
                List.copyOf(new BootstrapPipeline(tinyPlan(root, 3), state, QUIET).run(false).keySet()));

        // other arguments: the step and everything downstream of it run again
        assertEquals(List.of("scenes", "mix", "report"),
                List.copyOf(new BootstrapPipeline(tinyPlan(root, 4), state, QUIET).run(false).keySet()));
        assertEquals(List.of("scenes", "mix", "report"),
                List.copyOf(new BootstrapPipeline(tinyPlan(root, 4), state, QUIET).run(true).keySet()), "--fresh");
    }

    @Test
    void aFailingStepNamesTheCommandAndItsLogAndLeavesNoMarker(@TempDir Path root) {
        Path state = root.resolve("state");
        List<BootstrapPipeline.Step> plan = List.of(new BootstrapPipeline.Step("broken", "a recipe that is not there", 0.1,
                List.of(), new BootstrapPipeline.Run(List.of(List.of("train", root.resolve("missing.yaml").toString()))),
                List.of(root.resolve("run"))));
        // the key hashes the recipe's bytes, so a missing recipe fails before anything runs
        Exception e = assertThrows(java.nio.file.NoSuchFileException.class,
                () -> new BootstrapPipeline(plan, state, QUIET).run(false));
        assertTrue(e.getMessage().contains("missing.yaml"), e.getMessage());
        assertTrue(Files.notExists(state.resolve("steps/broken.json")));
    }

    @Test
    void aChildThatFailsStopsThePipelineNamingItsLog(@TempDir Path root) {
        Path state = root.resolve("state");
        List<BootstrapPipeline.Step> plan = List.of(new BootstrapPipeline.Step("scenes", "no scenes asked", 0.1, List.of(),
                new BootstrapPipeline.Run(List.of(List.of("bootstrap", "scenes", "--train", "0", "--out",
                        root.resolve("scenes").toString()))), List.of(root.resolve("scenes/train.jsonl"))));
        Exception e = assertThrows(IllegalStateException.class, () -> new BootstrapPipeline(plan, state, QUIET).run(false));
        assertTrue(e.getMessage().contains("./xllm bootstrap scenes --train 0") && e.getMessage().contains("failed (exit 1)")
                && e.getMessage().contains(state.resolve("logs/scenes.log").toString()), e.getMessage());
        assertTrue(Files.notExists(state.resolve("steps/scenes.json")));
    }

    @Test
    void theCommittedPlanIsOrderedAndItsRecipesExist() throws Exception {
        List<BootstrapPipeline.Step> plan = BootstrapPipeline.plan();
        new BootstrapPipeline(plan, Path.of("target/unused"), QUIET); // checks every step reads earlier steps only
        for (BootstrapPipeline.Step step : plan) {
            if (BootstrapPipeline.trains(step)) {
                Path recipe = Path.of(((BootstrapPipeline.Run) step.action()).runs().get(0).get(1));
                assertTrue(Files.isRegularFile(recipe), recipe.toString());
            }
        }
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        int status = Main.commandLine().setOut(new java.io.PrintWriter(out, true, StandardCharsets.UTF_8))
                .execute("bootstrap", "--plan");
        assertEquals(0, status);
        assertTrue(out.toString(StandardCharsets.UTF_8).contains("stage3 "), out.toString(StandardCharsets.UTF_8));
    }

    @Test
    void aMixOfAManifestWithABrokenLineNamesTheFileAndLine(@TempDir Path root) throws Exception {
        Path manifest = root.resolve("train.jsonl");
        Files.writeString(manifest, "{\"task\":\"direction\"}\n{broken\n");
        Exception e = assertThrows(java.io.IOException.class, () -> BootstrapPipeline.mix(new BootstrapPipeline.Mix(
                root.resolve("out.jsonl"), List.of(new BootstrapPipeline.Part(manifest, "direction", 1)))));
        assertTrue(e.getMessage().startsWith(manifest + ":2: not JSON"), e.getMessage());
        assertTrue(Files.notExists(root.resolve("out.jsonl")));
        Path clean = root.resolve("clean.jsonl");
        Files.writeString(clean, "{\"task\":\"direction\"}\n");
        Exception none = assertThrows(java.io.IOException.class, () -> BootstrapPipeline.mix(new BootstrapPipeline.Mix(
                root.resolve("out.jsonl"), List.of(new BootstrapPipeline.Part(clean, "speed", 1)))));
        assertEquals(clean + ": no lines of task speed", none.getMessage());
    }

    /** The report puts each held-out figure beside the paper's and says which of the paper's claims hold here. */
    @Test
    void theReportTabulatesTimesAndScoresAndChecksTheClaims(@TempDir Path root) throws Exception {
        Path state = root.resolve("state");
        Files.createDirectories(state.resolve("steps"));
        Files.createDirectories(state.resolve("evals"));
        List<BootstrapPipeline.Step> plan = BootstrapPipeline.plan();
        Files.writeString(state.resolve("steps/scenes.json"), "{\"seconds\": 30.0}");
        Map<String, String> evals = Map.of(
                "eval-cif", "{\"cer_s\": 0.10, \"utterances\": 100}",
                "eval-speech-s2", "{\"cer_s\": 0.40, \"utterances\": 100}",
                "eval-spoken-s2", "{\"overall\": 0.30, \"total\": 50, \"chance\": 0.20}",
                "eval-mmasr-s2", "{\"cer_s\": 0.30, \"cer_sv\": 0.35, \"utterances\": 50}",
                "eval-mmasr-s3", "{\"cer_s\": 0.25, \"cer_sv\": 0.20, \"utterances\": 50}",
                "eval-image-s2", "{\"overall\": 0.80, \"total\": 315, \"chance\": 0.25}",
                "eval-image-s3", "{\"overall\": 0.77, \"total\": 315, \"chance\": 0.25}",
                "eval-video-s3", "{\"overall\": 0.90, \"total\": 40, \"chance\": 0.25}");
        for (var e : evals.entrySet()) Files.writeString(state.resolve("evals/" + e.getKey() + ".json"), e.getValue());
        BootstrapReport.write(plan, state, QUIET);
        String report = Files.readString(state.resolve("REPORT.md"));
        assertTrue(report.contains("| scenes | 1,000 training and 60 held-out scenes | 0.5 | 0.5 | | | |"), report);
        assertTrue(report.contains("| multimodal ASR, speech + image (S+V), CER | 35.0% | 20.0% | 4.7 after stage 2, 4.3 after stage 3 |"), report);
        assertTrue(report.contains("| video direction of motion, held-out clips | not run | 90.0% of 40 (chance 25.0%) |"), report);
        assertTrue(report.contains("- does not hold: LLM transcription CER is 4.00x the CIF model's"), report);
        assertTrue(report.contains("- holds: stage 2 only: spoken questions about images answered 30.0% vs chance 20.0%"), report);
        assertTrue(report.contains("- holds: stage 3 lowers multimodal-ASR CER (S+V): 35.00% -> 20.00%"), report);
        assertTrue(report.contains("- holds: after stage 3 the image helps: S+V 20.00% vs S 25.00%"), report);
        assertTrue(report.contains("- does not hold: image QA after stage 3 within 2 points of stage 2: 77.0% vs 80.0%"), report);
        assertTrue(report.contains("- holds: video direction after stage 3: 90.0% (goal >= 85%)"), report);
        com.fasterxml.jackson.databind.JsonNode json = new com.fasterxml.jackson.databind.ObjectMapper()
                .readTree(state.resolve("report.json").toFile());
        assertEquals(0.5, json.get("minutes_total").asDouble(), 1e-9);
        assertEquals(0.20, json.get("evaluations").get("eval-mmasr-s3").get("cer_sv").asDouble(), 1e-12);
    }

    @Test
    void chanceGuessesAmongTheAnswersOfTheSameKindOfQuestion(@TempDir Path root) throws Exception {
        assertEquals("colour", BootstrapEvaluations.questionKind("okay so what colour are the shapes"));
        assertEquals("count", BootstrapEvaluations.questionKind("tell me this how many orange stars can you see"));
        assertEquals("shape", BootstrapEvaluations.questionKind("What shape are they?"));
        assertEquals("colour", BootstrapEvaluations.questionKind("这些图形是什么颜色？"));
        assertEquals("position", BootstrapEvaluations.questionKind("Which way does the shape move?"));
        assertEquals("other", BootstrapEvaluations.questionKind("Describe the image."));
    }
}
