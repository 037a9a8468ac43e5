package xllm.train;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import xllm.train.StageConfig.Interface;
import xllm.train.StageConfig.Precision;
import xllm.train.StageConfig.Stage;
import xllm.train.StageConfig.WarmupCosine;
import xllm.train.StageConfig.WarmupHoldDecay;

import java.io.IOException;
import java.lang.reflect.RecordComponent;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class StageConfigTest {

    static final Path RECIPES = Path.of("recipes");

    /** A valid recipe; tests break it one key at a time. */
    static final String BASE = """
            stage: align-image
            model:
              llm: smollm2-135m-instruct
              interfaces: [image]
            trainable: ["imageInterface.qformer.**", "imageInterface.adapter.*"]
            data:
              train: train.jsonl
            schedule: {type: warmup-cosine, initLr: 1.0e-4, minLr: 1.0e-5, warmupStartLr: 1.0e-6, warmupSteps: 200}
            batchSize: 8
            steps: 2000
            output: runs/test
            """;

    @TempDir
    Path dir;

    Path recipe(String yaml) throws IOException {
        Files.writeString(dir.resolve("train.jsonl"), "{}\n");
        Path file = dir.resolve("recipe.yaml");
        Files.writeString(file, yaml);
        return file;
    }

    /** The load error for a recipe, which must name the recipe file first. */
    String error(String yaml, String... overrides) throws IOException {
        Path file = recipe(yaml);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> StageConfig.load(file, List.of(overrides)));
        assertTrue(e.getMessage().startsWith(file + ": "), e.getMessage());
        return e.getMessage();
    }

    static void assertContains(String text, String part) {
        assertTrue(text.contains(part), () -> "expected <" + part + "> in:\n" + text);
    }

    // --- the recipes under recipes/ --------------------------------------------------------------------------------

    @Test
    void everyRecipeParses() throws IOException {
        List<Path> recipes;
        try (Stream<Path> files = Files.list(RECIPES)) {
            recipes = files.filter(p -> p.toString().endsWith(".yaml")).sorted().toList();
        }
        assertEquals(List.of("stage1-asr.yaml", "stage1-qformer.yaml", "stage2-image.yaml",
                "stage2-speech-spoken.yaml", "stage2-speech.yaml", "stage2-video.yaml", "stage3-integrate.yaml", "tiny-asr.yaml", "tiny-integrate.yaml", "tiny-overfit.yaml", "tiny-speech.yaml"),
                recipes.stream().map(p -> p.getFileName().toString()).toList());
        for (Path recipe : recipes) {
            boolean checkFiles = recipe.endsWith("tiny-overfit.yaml") || recipe.endsWith("tiny-asr.yaml");
            StageConfig config = StageConfig.load(recipe, List.of(), checkFiles);
            assertEquals(recipe, config.recipe());
            assertTrue(config.data().train().isAbsolute());
        }
        assertEquals(Stage.CONVERT_ASR, StageConfig.load(RECIPES.resolve("stage1-asr.yaml"), List.of(), false).stage());
        StageConfig integrate = StageConfig.load(RECIPES.resolve("stage3-integrate.yaml"), List.of(), false);
        assertEquals(3, integrate.initFrom().size());
        assertEquals(300, integrate.steps());
        assertNull(integrate.epochs());
        StageConfig video = StageConfig.load(RECIPES.resolve("stage2-video.yaml"), List.of(), false);
        assertEquals(Map.of("imageInterface.", "videoInterface."), video.initRename());
        StageConfig spoken = StageConfig.load(RECIPES.resolve("stage2-speech-spoken.yaml"), List.of(), false);
        assertEquals(List.of(Path.of("runs/stage2-speech/final")), spoken.initFrom(), "continues the ASR-aligned interface");
    }

    @Test
    void tinyOverfitIsCompleteOnDisk() throws IOException {
        StageConfig tiny = StageConfig.load(RECIPES.resolve("tiny-overfit.yaml"), List.of());
        assertEquals(Stage.ALIGN_IMAGE, tiny.stage());
        assertEquals("src/test/resources/fixtures/llm/tiny-llama", tiny.model().llm());
        assertEquals(List.of(Interface.IMAGE), tiny.model().interfaces());
        assertEquals(List.of("imageInterface.adapter.**"), tiny.trainable());
        assertEquals(300, tiny.steps());
        assertEquals(1e-2, ((WarmupCosine) tiny.schedule()).initLr());
        assertEquals(Path.of("data/tiny-overfit/train.jsonl").toAbsolutePath(), tiny.data().train());
        List<String> lines = Files.readAllLines(tiny.data().train());
        assertEquals(4, lines.size());
        for (String line : lines) {
            String image = line.replaceAll(".*\"image\": \"([^\"]+)\".*", "$1");
            assertTrue(Files.isRegularFile(tiny.data().train().resolveSibling(image)), image);
        }
    }

    @Test
    void stageRecipeWithoutItsCorpusFailsNamingTheResolvedPath() throws IOException {
        Path copy = dir.resolve("recipes/stage2-image.yaml");
        Files.createDirectories(copy.getParent());
        Files.copy(RECIPES.resolve("stage2-video.yaml"), copy);
        String message = assertThrows(IllegalArgumentException.class,
                () -> StageConfig.load(copy, List.of())).getMessage();
        assertContains(message, copy + ": data.train: file not found: "
                + dir.resolve("data/synthetic/videos/train-mixed.jsonl"));
        assertContains(message, copy + ": data.eval: file not found: ");
        assertContains(message, copy + ": initFrom[0]: checkpoint dir not found: ");
    }

    // --- defaults and binding ------------------------------------------------------------------------------------

    @Test
    void absentKeysTakeThePaperDefaults() throws IOException {
        StageConfig config = StageConfig.load(recipe(BASE), List.of());
        assertEquals(new StageConfig.Optimizer(StageConfig.OptimizerType.ADAMW, 0.9, 0.98, 1e-8, 0.05, 1.0),
                config.optimizer());
        assertEquals(new WarmupCosine(1e-4, 1e-5, 1e-6, 200), config.schedule());
        assertEquals(1, config.gradientAccumulation());
        assertEquals(List.of(), config.initFrom());
        assertEquals(Map.of(), config.initRename());
        assertEquals(Precision.FP32, config.precision());
        assertEquals(42L, config.seed());
        assertEquals(3, config.keepCheckpoints());
        assertEquals(StageConfig.ModelSize.DEMO, config.model().size());
        assertEquals("efficientnet-lite0", config.model().visionEncoder());
        assertEquals(dir.resolve("train.jsonl"), config.data().train());
        assertNull(config.data().eval());
        assertEquals(Path.of("runs/test"), config.output());
        StageConfig cosine = StageConfig.load(recipe(BASE.replace(
                ", minLr: 1.0e-5, warmupStartLr: 1.0e-6", "")), List.of());
        assertEquals(new WarmupCosine(1e-4, 1e-8, 1e-6, 200), cosine.schedule());
    }

    @Test
    void jsonRecipesLoadToo() throws IOException {
        Files.writeString(dir.resolve("train.jsonl"), "{}\n");
        Path json = dir.resolve("recipe.json");
        Files.writeString(json, """
                {"stage": "align-image", "model": {"llm": "x", "interfaces": ["image"]}, "trainable": ["a.*"],
                 "data": {"train": "train.jsonl"}, "schedule": {"type": "warmup-cosine", "initLr": 1e-4,
                 "warmupSteps": 0}, "batchSize": 2, "epochs": 1, "output": "runs/x"}
                """);
        assertEquals(1, StageConfig.load(json, List.of()).epochs());
    }

    @Test
    void toYamlLoadsBackToAnEqualConfig() throws IOException {
        StageConfig config = StageConfig.load(recipe(BASE), List.of("trainable=[**.bias, a.*]", "model.llm=123",
                "initRename={\"imageInterface.\": \"videoInterface.\"}",
                "schedule={type: warmup-hold-decay, warmupSteps: 1, holdSteps: 2, decaySteps: 3, finalLr: 1e-6}"));
        Path copy = dir.resolve("copy/recipe.yaml");
        Files.createDirectories(copy.getParent());
        Files.writeString(copy, config.toYaml());
        StageConfig again = StageConfig.load(copy, List.of());
        assertEquals(config.toYaml(), again.toYaml());
        assertEquals(config.schedule(), again.schedule());
        assertEquals("123", again.model().llm());
    }

    // --- validation: each message names the file and the key path --------------------------------------------------

    @Test
    void unknownKeysAnywhereWithSuggestion() throws IOException {
        assertContains(error(BASE.replace("batchSize: 8", "batchsize: 8")),
                ": batchsize: unknown key (did you mean batchSize?)");
        assertContains(error(BASE.replace("initLr:", "initLR:")),
                ": schedule.initLR: unknown key for type warmup-cosine (did you mean initLr?)");
        assertContains(error(BASE.replace("  llm:", "  lm:")), ": model.lm: unknown key (did you mean llm?)");
        assertContains(error(BASE + "recipe: x\n"), ": recipe: unknown key");
        assertContains(error(BASE + "optimizer: {type: adamw, peakLr: 1}\n"), ": optimizer.peakLr: unknown key");
    }

    @Test
    void wrongTypes() throws IOException {
        assertContains(error(BASE.replace("initLr: 1.0e-4", "initLr: fast")),
                ": schedule.initLr: expected a number, got \"fast\"");
        assertContains(error(BASE.replace("batchSize: 8", "batchSize: 2.5")),
                ": batchSize: expected an integer, got 2.5");
        assertContains(error(BASE + "featureCache: maybe\n"), ": featureCache: expected true or false, got \"maybe\"");
        assertContains(error(BASE.replace("llm: smollm2-135m-instruct", "llm: [a, b]")),
                ": model.llm: expected a string, got [\"a\",\"b\"]");
        assertContains(error(BASE.replace("  train: train.jsonl", "  train: {path: x}")),
                ": data.train: expected a path, got {\"path\":\"x\"}");
        assertContains(error(BASE + "optimizer: 5\n"), ": optimizer: expected a mapping, got 5");
    }

    @Test
    void missingRequiredKeys() throws IOException {
        assertContains(error(BASE.replace("batchSize: 8\n", "")), ": batchSize: missing required key");
        assertContains(error(BASE.replace("  train: train.jsonl\n", "  eval: train.jsonl\n")),
                ": data.train: missing required key");
        assertContains(error(BASE.replace("type: warmup-cosine, ", "")),
                ": schedule.type: missing required key (one of warmup-cosine, warmup-hold-decay)");
        assertContains(error(BASE.replace(", warmupSteps: 200", "")), ": schedule.warmupSteps: missing required key");
        assertContains(error(BASE.replace("  llm: smollm2-135m-instruct\n", "")),
                ": model.llm: missing required key (stage align-image trains through the frozen LLM)");
        assertContains(error(BASE.replace("output: runs/test", "output: null")), ": output: a value is required, got null");
    }

    @Test
    void exactlyOneOfStepsAndEpochs() throws IOException {
        assertContains(error(BASE.replace("steps: 2000\n", "")),
                ": steps: missing required key: give exactly one of steps, epochs");
        assertContains(error(BASE + "epochs: 3\n"), ": epochs: given together with steps");
    }

    @Test
    void outOfRangeNumbers() throws IOException {
        assertContains(error(BASE.replace("batchSize: 8", "batchSize: 0")), ": batchSize: must be >= 1, got 0");
        assertContains(error(BASE.replace("steps: 2000", "steps: -5")), ": steps: must be >= 0, got -5");
        assertContains(error(BASE + "gradientAccumulation: 0\n"), ": gradientAccumulation: must be >= 1, got 0");
        assertContains(error(BASE + "keepCheckpoints: 0\n"), ": keepCheckpoints: must be >= 1, got 0");
        assertContains(error(BASE + "optimizer: {beta2: 1.0}\n"), ": optimizer.beta2: must be in [0, 1), got 1.0");
        assertContains(error(BASE.replace("initLr: 1.0e-4", "initLr: 0")), ": schedule.initLr: must be > 0, got 0.0");
        assertContains(error(BASE.replace("minLr: 1.0e-5", "minLr: 1.0e-3")), ": schedule.minLr: is 0.001, above");
        assertContains(error(BASE + "evalEvery: 100\n"), ": evalEvery: is 100 but data.eval is not given");
        assertContains(error(BASE, "schedule={type: warmup-hold-decay, warmupSteps: 1, holdSteps: 1, decaySteps: 1, "
                + "finalLr: 0}"), ": schedule.finalLr: must be > 0, got 0.0");
    }

    @Test
    void unknownEnumValuesListTheAllowedOnes() throws IOException {
        assertContains(error(BASE.replace("stage: align-image", "stage: align-imag")),
                ": stage: unknown value \"align-imag\"; allowed: convert-asr, convert-qformer, align-image, "
                        + "align-video, align-speech, integrate");
        assertContains(error(BASE.replace("interfaces: [image]", "interfaces: [image, audio]")),
                ": model.interfaces[1]: unknown value \"audio\"; allowed: image, video, speech");
        assertContains(error(BASE + "precision: fp16\n"), ": precision: unknown value \"fp16\"; allowed: fp32, bf16");
        assertContains(error(BASE.replace("type: warmup-cosine", "type: cosine")),
                ": schedule.type: unknown value \"cosine\"; allowed: warmup-cosine, warmup-hold-decay");
    }

    @Test
    void interfacesMustFitTheStage() throws IOException {
        assertContains(error(BASE.replace("interfaces: [image]", "interfaces: [image, video]")),
                ": model.interfaces: stage align-image assembles exactly [image], got [image, video]");
        assertContains(error(BASE.replace("stage: align-image", "stage: integrate")
                        .replace("interfaces: [image]", "interfaces: []")),
                ": model.interfaces: stage integrate needs at least one of image, video, speech");
        assertContains(error(BASE.replace("stage: align-image", "stage: align-speech")
                        .replace("interfaces: [image]", "interfaces: [speech]")),
                ": model.speechEncoder: missing required key");
        assertContains(error(BASE.replace("\"imageInterface.adapter.*\"", "\"image**\"")),
                ": trainable[1]: glob \"image**\": ** must be a whole segment");
    }

    @Test
    void missingFilesShowTheResolvedPath() throws IOException {
        assertContains(error(BASE.replace("train: train.jsonl", "train: ../elsewhere/train.jsonl")),
                ": data.train: file not found: " + dir.getParent().resolve("elsewhere/train.jsonl"));
        Path checkpoint = Files.createDirectories(dir.resolve("ckpt"));
        assertContains(error(BASE + "initFrom: " + checkpoint + "\n"),
                ": initFrom[0]: " + checkpoint + " has no model.safetensors");
        Files.writeString(checkpoint.resolve("model.safetensors"), "");
        assertEquals(List.of(checkpoint), StageConfig.load(recipe(BASE + "initFrom: " + checkpoint + "\n"),
                List.of()).initFrom());
        // without file checks the same recipes load
        assertEquals(Path.of("/nowhere/t.jsonl"), StageConfig.load(recipe(BASE.replace("train: train.jsonl",
                "train: /nowhere/t.jsonl")), List.of(), false).data().train());
    }

    @Test
    void malformedFiles() throws IOException {
        assertContains(error(BASE + "batchSize: 4\n"), ": not valid YAML: Duplicate field 'batchSize'");
        assertContains(error("stage: [unclosed\n"), ": not valid YAML: ");
        assertContains(error("- a\n- b\n"), ": expected a mapping of keys at the top, got [\"a\",\"b\"]");
        assertContains(error(""), ": empty recipe");
        Path missing = dir.resolve("none.yaml");
        assertContains(assertThrows(IllegalArgumentException.class,
                () -> StageConfig.load(missing, List.of())).getMessage(), missing + ": no such recipe file");
    }

    @Test
    void allProblemsAreReportedAtOnce() throws IOException {
        String message = error(BASE.replace("batchSize: 8", "batchsize: 8").replace("initLr: 1.0e-4", "initLr: x"));
        assertContains(message, ": batchsize: unknown key");
        assertContains(message, ": schedule.initLr: expected a number");
        assertContains(message, ": batchSize: missing required key");
        assertEquals(3, message.lines().count(), message);
        String withOverrides = error(BASE.replace("batchSize: 8", "batchsize: 8"), "steps=abc", "stepz=1");
        assertContains(withOverrides, ": steps: expected an integer, got \"abc\" (from override \"steps=abc\")");
        assertContains(withOverrides, ": override \"stepz=1\": unknown key stepz (did you mean steps?)");
        assertContains(withOverrides, ": batchsize: unknown key");
    }

    // --- overrides -----------------------------------------------------------------------------------------------

    @Test
    void overridesAreTypedByTheTargetField() throws IOException {
        StageConfig config = StageConfig.load(recipe(BASE), List.of("schedule.initLr=3e-4", "steps=300",
                "trainable=[a.*, b.**]", "model.llm=123", "featureCache=true", "precision=bf16", "seed=7",
                "data.eval=train.jsonl", "initRename={\"imageInterface.\": \"videoInterface.\"}", "batchSize = 2"));
        assertEquals(3e-4, ((WarmupCosine) config.schedule()).initLr());
        assertEquals(300, config.steps());
        assertEquals(List.of("a.*", "b.**"), config.trainable());
        assertEquals("123", config.model().llm());
        assertTrue(config.featureCache());
        assertEquals(Precision.BF16, config.precision());
        assertEquals(7L, config.seed());
        assertEquals(2, config.batchSize());
        assertEquals(dir.resolve("train.jsonl"), config.data().eval());     // relative to the recipe, as in the file
        assertEquals(Map.of("imageInterface.", "videoInterface."), config.initRename());
        assertEquals(List.of("**.bias"), StageConfig.load(recipe(BASE), List.of("trainable=**.bias")).trainable());
        assertContains(error(BASE, "trainable=[]"), ": trainable: lists no glob, so nothing would train");
    }

    @Test
    void overridesReplaceSectionsAndClearTheAlternative() throws IOException {
        StageConfig config = StageConfig.load(recipe(BASE), List.of("epochs=3",
                "schedule={type: warmup-hold-decay, warmupSteps: 10, holdSteps: 20, decaySteps: 30, finalLr: 1e-6}",
                "optimizer.weightDecay=0.01"));
        assertEquals(3, config.epochs());
        assertNull(config.steps());                  // overriding epochs drops the recipe's steps
        assertEquals(new WarmupHoldDecay(3e-4, 10, 20, 30, 1e-6), config.schedule());
        assertEquals(0.01, config.optimizer().weightDecay());
        assertEquals(0.9, config.optimizer().beta1());
        StageConfig switched = StageConfig.load(recipe(BASE), List.of("schedule.type=warmup-hold-decay",
                "schedule={type: warmup-hold-decay, warmupSteps: 1, holdSteps: 1, decaySteps: 1, finalLr: 1e-6}",
                "schedule.peakLr=1e-3"));
        assertEquals(1e-3, ((WarmupHoldDecay) switched.schedule()).peakLr());
        assertContains(error(BASE, "steps=10", "epochs=2"), ": epochs: given together with steps");
    }

    @Test
    void overrideErrorsNameTheKey() throws IOException {
        assertContains(error(BASE, "schedule.initlr=3e-4"),
                ": override \"schedule.initlr=3e-4\": unknown key schedule.initlr (did you mean schedule.initLr?)");
        assertContains(error(BASE, "batchsize=4"), ": override \"batchsize=4\": unknown key batchsize "
                + "(did you mean batchSize?)");
        assertContains(error(BASE, "steps.x=4"), ": override \"steps.x=4\": unknown key steps.x (steps has no sub-keys)");
        assertContains(error(BASE, "schedule.initLr=fast"),
                ": schedule.initLr: expected a number, got \"fast\" (from override \"schedule.initLr=fast\")");
        assertContains(error(BASE, "steps=1.5"), ": steps: expected an integer, got \"1.5\"");
        assertContains(error(BASE, "featureCache=yes"), ": featureCache: expected true or false, got \"yes\"");
        assertContains(error(BASE, "stage=align-imag"),
                ": stage: unknown value \"align-imag\"; allowed: convert-asr, convert-qformer, align-image, "
                        + "align-video, align-speech, integrate (from override \"stage=align-imag\")");
        assertContains(error(BASE, "batchSize=0"), ": batchSize: must be >= 1, got 0 (from override \"batchSize=0\")");
        assertContains(error(BASE, "steps"), ": override \"steps\": expected key=value");
        assertContains(error(BASE, "optimizer=adamw"), ": optimizer: expected a mapping like {key: value, ...}");
        assertContains(error(BASE, "schedule.peakLr=1e-3"), ": override \"schedule.peakLr=1e-3\": unknown key "
                + "schedule.peakLr");
    }

    // --- trainable globs against the assembled model ---------------------------------------------------------------

    @Test
    void validateTrainableReturnsMatchesOrNamesTheDeadGlob() throws IOException {
        StageConfig config = StageConfig.load(recipe(BASE), List.of());
        List<String> names = ParameterGlobTest.NAMES;
        assertEquals(List.of("imageInterface.qformer.queryTokens",
                "imageInterface.qformer.layers.0.attention.query.weight",
                "imageInterface.qformer.layers.0.attention.query.bias",
                "imageInterface.qformer.layers.1.crossAttention.key.weight",
                "imageInterface.adapter.weight", "imageInterface.adapter.bias"), config.validateTrainable(names));

        StageConfig typo = StageConfig.load(recipe(BASE), List.of("trainable=[imageInterface.adaptr.*, llm.**]"));
        String message = assertThrows(IllegalArgumentException.class, () -> typo.validateTrainable(names)).getMessage();
        assertContains(message, typo.recipe() + ": trainable: glob \"imageInterface.adaptr.*\" matches no parameter");
        assertContains(message, "close names: imageInterface.adapter.");
        assertEquals(1, message.lines().count(), message);
        int hints = message.substring(message.indexOf("close names: ")).split(", ").length;
        assertEquals(5, hints);

        StageConfig module = StageConfig.load(recipe(BASE), List.of("trainable=imageInterface.adapter"));
        assertContains(assertThrows(IllegalArgumentException.class, () -> module.validateTrainable(names)).getMessage(),
                "it names a module, not a tensor: use \"imageInterface.adapter.**\"");
    }

    // --- help text -----------------------------------------------------------------------------------------------

    @Test
    void warmupAtLeastAsLongAsTheRunIsRefusedForEverySchedule() throws IOException {
        assertContains(error(BASE, "steps=200"), ": schedule.warmupSteps: is 200, not below steps 200 (the warm-up "
                + "would never finish)");
        assertContains(error(BASE, "steps=150"), ": schedule.warmupSteps: is 200, not below steps 150");
        assertContains(error(BASE, "schedule={type: warmup-hold-decay, warmupSteps: 3000, holdSteps: 1, decaySteps: 1, "
                + "finalLr: 1e-6}"), ": schedule.warmupSteps: is 3000, not below steps 2000");
        StageConfig.load(recipe(BASE), List.of("steps=201")); // one step after the warm-up is enough
    }

    @Test
    void anOutputThatIsAFileOrHasAFileForItsCheckpointsIsRefused() throws IOException {
        Path file = Files.writeString(dir.resolve("somefile"), "x");
        assertContains(error(BASE, "output=" + file), ": output: " + file + ": is a file, expected a directory");
        Path run = Files.createDirectories(dir.resolve("run"));
        Files.writeString(run.resolve("checkpoints"), "x");
        assertContains(error(BASE, "output=" + run), ": output: " + run.resolve("checkpoints")
                + ": is a file, expected a directory (the run's checkpoints)");
        assertContains(error(BASE, "output=" + file.resolve("run")), ": output: " + file + ": is a file, expected a directory");
    }

    @Test
    void prepareOutputCreatesTheRunDirOrNamesWhyItCannot() throws IOException {
        StageConfig config = StageConfig.load(recipe(BASE), List.of("output=" + dir.resolve("runs/new")));
        config.prepareOutput();
        assertTrue(Files.isDirectory(dir.resolve("runs/new/checkpoints")));
        try (var left = Files.list(dir.resolve("runs/new/checkpoints"))) {
            assertEquals(0, left.count(), "the probe file is removed");
        }
        StageConfig unwritable = StageConfig.load(recipe(BASE), List.of("output=/proc/xllm-no-such/run"));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, unwritable::prepareOutput);
        assertContains(e.getMessage(), ": output: cannot create or write /proc/xllm-no-such/run");
        assertTrue(e.getMessage().startsWith(dir.resolve("recipe.yaml") + ": "), e.getMessage());
    }

    @Test
    void describeFieldsListsEveryKey() {
        String help = StageConfig.describeFields();
        List<String> keys = new ArrayList<>();
        collectKeys(StageConfig.class, "", keys);
        assertTrue(keys.size() > 30, keys.toString());
        for (String key : keys) {
            assertTrue(help.lines().anyMatch(line -> line.trim().startsWith(key + " ")), () -> key + " not in\n" + help);
        }
        assertContains(help, "schedule.type");
        assertContains(help, "default 0.98");
        assertContains(help, "one of convert-asr, convert-qformer, align-image");
        assertTrue(help.lines().noneMatch(line -> line.trim().startsWith("recipe ")), help);
    }

    private static void collectKeys(Class<?> record, String prefix, List<String> keys) {
        for (RecordComponent component : record.getRecordComponents()) {
            if (component.isAnnotationPresent(StageConfig.SetByLoad.class)) continue;
            String key = prefix + component.getName();
            keys.add(key);
            if (component.getType().isRecord()) collectKeys(component.getType(), key + ".", keys);
            if (component.getType().isSealed()) {
                for (Class<?> variant : component.getType().getPermittedSubclasses()) {
                    collectKeys(variant, key + ".", keys);
                }
            }
        }
    }
}
