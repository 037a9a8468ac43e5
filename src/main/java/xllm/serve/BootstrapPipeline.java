package xllm.serve;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.lang.management.ManagementFactory;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * {@code ./xllm bootstrap}: the whole X-LLM pipeline in one resumable command (weights, corpora, stage 1, stage 2,
 * stage 3, evaluation, report), each stage from its committed recipe as written.
 *
 * <p>A step is a {@code ./xllm} command run in its own JVM (its native memory goes back when it ends), a manifest
 * mix, or an evaluation ({@link BootstrapEvaluations}). Its key hashes what it runs (arguments, the recipe file's
 * bytes) and the digests of the steps it reads; a data step's digest hashes the manifests it wrote. A step whose key
 * matches its marker under {@code runs/bootstrap/steps/} is skipped, so a rerun after a change reruns exactly what the
 * change reaches; a training step that was interrupted with the same key resumes from its newest checkpoint.
 */
final class BootstrapPipeline {

    static final Path STATE = Path.of("runs/bootstrap");
    private static final ObjectMapper JSON = new ObjectMapper();

    /** What a step does. */
    sealed interface Action permits Run, Mix, Evaluate, Report {}

    /** {@code ./xllm ARGS} for each of {@code runs}, in a child JVM; for {@code train}, the recipe's bytes are hashed. */
    record Run(List<List<String>> runs) implements Action {}

    /** Concatenates manifests into {@code out}: each part's lines (those of {@code task} only when given) {@code times} times. */
    record Mix(Path out, List<Part> parts) implements Action {}

    record Part(Path manifest, String task, int times) {}

    /** One held-out evaluation, in this JVM, written to {@code runs/bootstrap/evals/NAME.json}. */
    record Evaluate(BootstrapEvaluations.Kind kind, Path model, Path data, String task, int limit) implements Action {}

    /** REPORT.md, report.json and the loss curves under runs/bootstrap. */
    record Report() implements Action {}

    /**
     * @param minutes  the expected wall time on 2 idle cores (Intel Xeon, measured), for the ETA
     * @param after    the steps whose results it reads
     * @param outputs  what it writes: manifests (hashed into its digest) or a run directory (its final checkpoint)
     */
    record Step(String name, String what, double minutes, List<String> after, Action action, List<Path> outputs) {}

    /** The committed plan; minutes as measured on 2 idle Intel cores (docs/bootstrap-2026-12-05: 96 min in all). */
    static List<Step> plan() {
        Path scenes = Path.of("data/synthetic/scenes"), videos = Path.of("data/synthetic/videos");
        Path speech = Path.of("data/synthetic/speech"), instructions = Path.of("data/synthetic/instructions");
        List<Step> steps = new ArrayList<>();
        steps.add(new Step("weights", "pull SmolLM2-135M-Instruct, EfficientNet-Lite0, all-MiniLM-L6-v2", 0.5, List.of(),
                new Run(List.of(List.of("models", "pull", "smollm2-135m-instruct"),
                        List.of("models", "pull", "efficientnet-lite0"), List.of("models", "pull", "all-minilm-l6-v2"))),
                List.of()));
        steps.add(data("scenes", "1,000 training and 60 held-out scenes", 0.5, List.of(),
                List.of("bootstrap", "scenes", "--train", "1000", "--eval", "60"), scenes));
        steps.add(data("videos", "400 training and 40 held-out clips", 1, List.of(),
                List.of("bootstrap", "videos", "--train", "400", "--eval", "40"), videos));
        steps.add(new Step("speech", "2,000 training and 150 held-out utterances, 300 general questions", 1.5, List.of(),
                new Run(List.of(List.of("bootstrap", "speech", "--train", "2000", "--eval", "150", "--general", "300"))),
                List.of(speech.resolve("train.jsonl"), speech.resolve("eval.jsonl"), speech.resolve("general.jsonl"))));
        steps.add(data("instructions", "the stage-3 joint instruction set: 1,200 training, 350 held-out conversations", 1.5,
                List.of(), List.of("bootstrap", "instructions", "--train", "1200", "--eval", "350"), instructions));
        steps.add(new Step("video-mix", "video training manifest with the direction questions 3x", 0.1, List.of("videos"),
                new Mix(videos.resolve("train-mixed.jsonl"), List.of(new Part(videos.resolve("train.jsonl"), null, 1),
                        new Part(videos.resolve("train.jsonl"), "direction", 2))),
                List.of(videos.resolve("train-mixed.jsonl"))));
        steps.add(new Step("replies", "the frozen LLM's replies to 400 transcripts and the general questions", 4,
                List.of("weights", "speech"), new Run(List.of(
                List.of("bootstrap", "replies", "--data", speech.resolve("train.jsonl").toString(), "--asr", "--replies",
                        "400", "--max-tokens", "32", "--out", speech.resolve("train-replies.jsonl").toString()),
                List.of("bootstrap", "replies", "--data", speech.resolve("general.jsonl").toString(), "--asr",
                        "--max-tokens", "32", "--out", speech.resolve("general-replies.jsonl").toString()))),
                List.of(speech.resolve("train-replies.jsonl"), speech.resolve("general-replies.jsonl"))));
        steps.add(new Step("spoken-mix", "stage-2 speech manifest: ASR samples and spoken turns", 0.1, List.of("replies"),
                new Mix(speech.resolve("spoken-train.jsonl"), List.of(new Part(speech.resolve("train-replies.jsonl"), null, 1),
                        new Part(speech.resolve("general-replies.jsonl"), null, 1))),
                List.of(speech.resolve("spoken-train.jsonl"))));
        steps.add(train("stage1-asr", "stage 1: the CIF ASR model", 13, List.of("speech"), "recipes/stage1-asr.yaml",
                "runs/stage1-asr"));
        steps.add(train("stage2-image", "stage 2: Q-Former + I-Adapter through the frozen LLM", 19,
                List.of("weights", "scenes"), "recipes/stage2-image.yaml", "runs/stage2-image"));
        steps.add(train("stage2-video", "stage 2: video interface from the image interface", 16,
                List.of("stage2-image", "video-mix"), "recipes/stage2-video.yaml", "runs/stage2-video"));
        steps.add(train("stage2-speech", "stage 2: C-Former + S-Adapter through the frozen LLM", 22,
                List.of("stage1-asr", "spoken-mix"), "recipes/stage2-speech.yaml", "runs/stage2-speech"));
        steps.add(new Step("stage2-joint", "the stage-2 interfaces in one X-LLM, untrained together (steps=0)", 0.5,
                List.of("stage2-image", "stage2-video", "stage2-speech", "instructions"),
                new Run(List.of(List.of("train", "recipes/stage3-integrate.yaml", "steps=0", "evalEvery=0",
                        "checkpointEvery=0", "featureCache=false", "output=runs/stage2-joint"))), List.of(Path.of("runs/stage2-joint"))));
        steps.add(train("stage3", "stage 3: the adapters on the joint instruction set", 13,
                List.of("stage2-image", "stage2-video", "stage2-speech", "instructions"), "recipes/stage3-integrate.yaml",
                "runs/stage3-integrate"));
        Path cif = Path.of("runs/stage1-asr/final"), image = Path.of("runs/stage2-image/final");
        Path video = Path.of("runs/stage2-video/final"), spoken = Path.of("runs/stage2-speech/final");
        Path joint = Path.of("runs/stage2-joint/final"), integrated = Path.of("runs/stage3-integrate/final");
        BootstrapEvaluations.Kind asr = BootstrapEvaluations.Kind.ASR, qa = BootstrapEvaluations.Kind.QA;
        steps.add(eval("eval-cif", "CIF ASR CER, held-out utterances", 0.5, "stage1-asr",
                new Evaluate(asr, cif, speech.resolve("eval.jsonl"), null, 100)));
        steps.add(eval("eval-speech-s2", "LLM transcription CER through the C-Former, same utterances", 2, "stage2-speech",
                new Evaluate(asr, spoken, speech.resolve("eval.jsonl"), null, 100)));
        steps.add(eval("eval-image-s2", "image QA, held-out scenes", 1.5, "stage2-image",
                new Evaluate(qa, image, scenes.resolve("eval.jsonl"), null, 0)));
        steps.add(eval("eval-video-s2", "video direction, held-out clips", 0.7, "stage2-video",
                new Evaluate(qa, video, videos.resolve("eval.jsonl"), "direction", 0)));
        steps.add(eval("eval-mmasr-s2", "multimodal ASR S vs S+V, stage-2 model", 2, "stage2-joint",
                new Evaluate(asr, joint, instructions.resolve("eval-mmasr.jsonl"), null, 0)));
        steps.add(eval("eval-spoken-s2", "spoken questions about images, stage-2 model", 0.7, "stage2-joint",
                new Evaluate(qa, joint, instructions.resolve("eval-spoken-image.jsonl"), null, 0)));
        steps.add(eval("eval-image-s3", "image QA, held-out scenes, after stage 3", 1.5, "stage3",
                new Evaluate(qa, integrated, scenes.resolve("eval.jsonl"), null, 0)));
        steps.add(eval("eval-video-s3", "video direction, after stage 3", 0.7, "stage3",
                new Evaluate(qa, integrated, videos.resolve("eval.jsonl"), "direction", 0)));
        steps.add(eval("eval-mmasr-s3", "multimodal ASR S vs S+V, after stage 3", 2, "stage3",
                new Evaluate(asr, integrated, instructions.resolve("eval-mmasr.jsonl"), null, 0)));
        steps.add(eval("eval-spoken-s3", "spoken questions about images, after stage 3", 0.7, "stage3",
                new Evaluate(qa, integrated, instructions.resolve("eval-spoken-image.jsonl"), null, 0)));
        steps.add(eval("eval-instructions-s3", "every task of the held-out instruction set, after stage 3", 2.5, "stage3",
                new Evaluate(qa, integrated, instructions.resolve("eval.jsonl"), null, 0)));
        List<String> all = steps.stream().map(Step::name).toList();
        steps.add(new Step("report", "REPORT.md, report.json, loss curves", 0.1, all, new Report(),
                List.of(STATE.resolve("REPORT.md"))));
        return steps;
    }

    private static Step data(String name, String what, double minutes, List<String> after, List<String> argv, Path dir) {
        return new Step(name, what, minutes, after, new Run(List.of(argv)),
                List.of(dir.resolve("train.jsonl"), dir.resolve("eval.jsonl")));
    }

    private static Step train(String name, String what, double minutes, List<String> after, String recipe, String output) {
        return new Step(name, what, minutes, after, new Run(List.of(List.of("train", recipe))), List.of(Path.of(output)));
    }

    private static Step eval(String name, String what, double minutes, String model, Evaluate action) {
        return new Step(name, what, minutes, List.of(model), action, List.of(STATE.resolve("evals").resolve(name + ".json")));
    }

    private final List<Step> steps;
    private final Path state;
    private final PrintStream log;
    private final Map<String, String> digests = new LinkedHashMap<>();

    BootstrapPipeline(List<Step> steps, Path state, PrintStream log) {
        this.steps = steps;
        this.state = state;
        this.log = log;
        Map<String, Step> seen = new LinkedHashMap<>();
        for (Step step : steps) {
            for (String before : step.after()) {
                if (!seen.containsKey(before)) {
                    throw new IllegalArgumentException("step " + step.name() + " reads " + before + ", which does not come before it");
                }
            }
            if (seen.put(step.name(), step) != null) throw new IllegalArgumentException("two steps named " + step.name());
        }
    }

    /** What a run would do: each step's name and whether it is up to date. */
    List<String> plannedActions() throws IOException {
        List<String> lines = new ArrayList<>();
        for (Step step : steps) {
            String key = key(step);
            boolean done = upToDate(step, key);
            digests.put(step.name(), done ? marker(step).path("digest").asText() : key);
            lines.add(String.format(Locale.ROOT, "%-22s %-9s %5.1f min  %s", step.name(), done ? "done" : "to run",
                    step.minutes(), step.what()));
        }
        return lines;
    }

    /** Runs every step that is not up to date, in order; returns the wall seconds of each step run now. */
    Map<String, Double> run(boolean fresh) throws IOException, InterruptedException {
        Files.createDirectories(state.resolve("steps"));
        double planned = steps.stream().mapToDouble(Step::minutes).sum();
        double plannedDone = 0, actualSeconds = 0, estimatedOfRun = 0;
        Map<String, Double> ran = new LinkedHashMap<>();
        long start = System.nanoTime();
        for (int i = 0; i < steps.size(); i++) {
            Step step = steps.get(i);
            String key = key(step);
            String prefix = String.format(Locale.ROOT, "bootstrap [%d/%d] %s", i + 1, steps.size(), step.name());
            if (!fresh && upToDate(step, key)) {
                digests.put(step.name(), marker(step).path("digest").asText());
                log.println(prefix + ": up to date, skipped");
                plannedDone += step.minutes();
                continue;
            }
            // calibrated ETA: the steps run so far took actual/estimated of their estimate
            double remaining = planned - plannedDone;
            // the plan's minutes until 5 planned minutes have run (the data steps alone would say little)
            double pace = estimatedOfRun >= 5 ? Math.min(3, Math.max(0.33, actualSeconds / 60 / estimatedOfRun)) : 1;
            log.printf(Locale.ROOT, "%s: %s (about %.1f min) — %.0f%% of the plan done, %.0f min elapsed, ETA %.0f min%n",
                    prefix, step.what(), step.minutes() * pace, 100 * plannedDone / planned,
                    (System.nanoTime() - start) / 6e10, remaining * pace);
            long stepStart = System.nanoTime();
            String digest = execute(step, key);
            double seconds = (System.nanoTime() - stepStart) / 1e9;
            digests.put(step.name(), digest);
            writeMarker(step, key, digest, seconds);
            ran.put(step.name(), seconds);
            actualSeconds += seconds;
            estimatedOfRun += step.minutes();
            plannedDone += step.minutes();
            log.printf(Locale.ROOT, "%s: done in %.1f min%n", prefix, seconds / 60);
        }
        log.printf(Locale.ROOT, "bootstrap: all %d steps done (%.1f min this run); report %s%n", steps.size(),
                (System.nanoTime() - start) / 6e10, state.resolve("REPORT.md"));
        return ran;
    }

    /** A {@code ./xllm train} step: its output is a run directory. */
    static boolean trains(Step step) {
        return step.action() instanceof Run run && run.runs().size() == 1 && run.runs().get(0).get(0).equals("train");
    }

    private String execute(Step step, String key) throws IOException, InterruptedException {
        Action action = step.action();
        if (action instanceof Run run) {
            boolean training = trains(step);
            Path logFile = state.resolve("logs").resolve(step.name() + ".log");
            Files.createDirectories(logFile.getParent());
            Files.deleteIfExists(logFile);
            for (List<String> argv : run.runs()) {
                List<String> args = new ArrayList<>(argv);
                if (training) args.addAll(prepareRunDirectory(step, key));
                child(args, logFile);
            }
            if (training && !Files.isDirectory(step.outputs().get(0).resolve("final"))) {
                throw new IllegalStateException(step.name() + ": the run ended without " + step.outputs().get(0)
                        .resolve("final") + " (log: " + logFile + ")");
            }
            return training || step.outputs().isEmpty() ? key : digestOf(step.outputs());
        }
        if (action instanceof Mix mix) {
            mix(mix);
            return digestOf(step.outputs());
        }
        if (action instanceof Evaluate evaluate) {
            Path out = step.outputs().get(0);
            Files.createDirectories(out.getParent());
            ObjectNode result = BootstrapEvaluations.run(evaluate, out.resolveSibling(step.name() + ".txt"), log);
            result.put("name", step.name());
            result.put("what", step.what());
            writeAtomically(out, JSON.writerWithDefaultPrettyPrinter().writeValueAsBytes(result));
            return key;
        }
        BootstrapReport.write(steps, state, log); // Report
        return key;
    }

    /**
     * A run directory left by an interrupted run of the same step resumes ({@code --resume}); one left by a run with
     * another key (another recipe, other data) is stale and removed first, so its checkpoints cannot mix in.
     */
    private List<String> prepareRunDirectory(Step step, String key) throws IOException {
        Path started = state.resolve("steps").resolve(step.name() + ".started");
        Path runDir = step.outputs().get(0);
        boolean sameRun = Files.isRegularFile(started) && Files.readString(started).strip().equals(key);
        if (sameRun && Files.isDirectory(runDir)) return List.of("--resume");
        if (Files.exists(runDir)) {
            log.println("bootstrap: " + runDir + " was written by another recipe or other data; removing it");
            deleteTree(runDir);
        }
        writeAtomically(started, (key + "\n").getBytes(StandardCharsets.UTF_8));
        return List.of();
    }

    /** {@code ./xllm ARGS} in a child JVM with this JVM's flags; stdout appended to the step's log, stderr shown. */
    private void child(List<String> args, Path logFile) throws IOException, InterruptedException {
        List<String> command = new ArrayList<>();
        command.add(ProcessHandle.current().info().command().orElse("java"));
        command.addAll(ManagementFactory.getRuntimeMXBean().getInputArguments());
        command.add("-cp");
        command.add(System.getProperty("java.class.path"));
        command.add(Main.class.getName());
        command.addAll(args);
        Process process = new ProcessBuilder(command)
                .redirectOutput(ProcessBuilder.Redirect.appendTo(logFile.toFile()))
                .redirectError(ProcessBuilder.Redirect.INHERIT)
                .start();
        int status;
        try {
            status = process.waitFor();
        } catch (InterruptedException e) {
            process.destroy();
            throw e;
        }
        if (status != 0) {
            throw new IllegalStateException("./xllm " + String.join(" ", args) + " failed (exit " + status + "); its output: "
                    + logFile + "; rerun ./xllm bootstrap to continue from here");
        }
    }

    static void mix(Mix mix) throws IOException {
        StringBuilder text = new StringBuilder();
        for (Part part : mix.parts()) {
            List<String> lines = new ArrayList<>();
            int number = 0;
            for (String line : Files.readAllLines(part.manifest(), StandardCharsets.UTF_8)) {
                number++;
                if (line.isBlank()) continue;
                if (part.task() != null) {
                    JsonNode node;
                    try {
                        node = JSON.readTree(line);
                    } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
                        throw new IOException(part.manifest() + ":" + number + ": not JSON: " + e.getOriginalMessage(), e);
                    }
                    if (!part.task().equals(node.path("task").asText(null))) continue;
                }
                lines.add(line);
            }
            if (lines.isEmpty()) {
                throw new IOException(part.manifest() + ": no lines" + (part.task() == null ? "" : " of task " + part.task()));
            }
            for (int t = 0; t < part.times(); t++) lines.forEach(l -> text.append(l).append('\n'));
        }
        Files.createDirectories(mix.out().toAbsolutePath().getParent());
        writeAtomically(mix.out(), text.toString().getBytes(StandardCharsets.UTF_8));
    }

    /** The step's key: its action (with a recipe's bytes) and the digests of the steps it reads. */
    String key(Step step) throws IOException {
        MessageDigest sha = sha256();
        update(sha, step.name());
        update(sha, step.action().toString());
        if (step.action() instanceof Run run) {
            for (List<String> argv : run.runs()) {
                if (argv.get(0).equals("train")) sha.update(Files.readAllBytes(Path.of(argv.get(1))));
            }
        }
        for (String before : step.after()) {
            String digest = digests.get(before);
            if (digest == null) throw new IllegalStateException("step " + before + " has no digest yet");
            update(sha, before + "=" + digest);
        }
        return HexFormat.of().formatHex(sha.digest());
    }

    private boolean upToDate(Step step, String key) throws IOException {
        JsonNode marker = marker(step);
        if (marker == null || !key.equals(marker.path("key").asText())) return false;
        if (step.outputs().isEmpty()) return false; // nothing to check (pulling weights): cheap, always run
        for (Path output : step.outputs()) {
            if (!Files.exists(output)) return false;
        }
        if (trains(step)) return Files.isDirectory(step.outputs().get(0).resolve("final"));
        boolean data = step.action() instanceof Mix || step.action() instanceof Run;
        return !data || marker.path("digest").asText().equals(digestOf(step.outputs())); // files edited since: rerun
    }

    private JsonNode marker(Step step) throws IOException {
        Path file = state.resolve("steps").resolve(step.name() + ".json");
        return Files.isRegularFile(file) ? JSON.readTree(file.toFile()) : null;
    }

    private void writeMarker(Step step, String key, String digest, double seconds) throws IOException {
        ObjectNode node = JSON.createObjectNode();
        node.put("step", step.name());
        node.put("key", key);
        node.put("digest", digest);
        node.put("seconds", seconds);
        node.put("minutes_planned", step.minutes());
        node.put("finished", java.time.Instant.now().toString());
        writeAtomically(state.resolve("steps").resolve(step.name() + ".json"),
                JSON.writerWithDefaultPrettyPrinter().writeValueAsBytes(node));
    }

    /** SHA-256 over the files (a directory: its name only; runs are keyed by what produced them). */
    static String digestOf(List<Path> outputs) throws IOException {
        MessageDigest sha = sha256();
        for (Path output : outputs) {
            update(sha, output.toString());
            if (Files.isRegularFile(output)) {
                try (var in = Files.newInputStream(output)) {
                    byte[] buffer = new byte[1 << 16];
                    for (int n; (n = in.read(buffer)) > 0; ) sha.update(buffer, 0, n);
                }
            }
        }
        return HexFormat.of().formatHex(sha.digest());
    }

    static void writeAtomically(Path file, byte[] bytes) throws IOException {
        Path dir = file.toAbsolutePath().getParent();
        Files.createDirectories(dir);
        Path temporary = Files.createTempFile(dir, file.getFileName().toString(), ".partial");
        try {
            Files.write(temporary, bytes);
            Files.move(temporary, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        } finally {
            Files.deleteIfExists(temporary);
        }
    }

    private static void deleteTree(Path root) throws IOException {
        try (var paths = Files.walk(root)) {
            for (Path p : paths.sorted(java.util.Comparator.reverseOrder()).toList()) Files.delete(p);
        } catch (UncheckedIOException e) {
            throw e.getCause();
        }
    }

    private static MessageDigest sha256() {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    private static void update(MessageDigest sha, String text) {
        sha.update(text.getBytes(StandardCharsets.UTF_8));
        sha.update((byte) 0);
    }
}
