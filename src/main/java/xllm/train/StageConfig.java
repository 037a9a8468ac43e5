package xllm.train;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import com.fasterxml.jackson.dataformat.yaml.YAMLGenerator;
import xllm.train.RecipeBinder.Problems;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.annotation.ElementType;
import java.lang.annotation.Retention;
import java.lang.annotation.RetentionPolicy;
import java.lang.annotation.Target;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashSet;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.stream.Collectors;

/**
 * One training stage as data: a recipe file ({@code recipes/*.yaml}, YAML or JSON) mapped 1:1 onto this record,
 * so the three stages of X-LLM (paper §3.2; hyper-parameters in Appendix A.3 and Table 7) are run by one stage
 * runner instead of three hand-written loops. Format, defaults and their sources: docs/recipes.md.
 *
 * <p>Loading is strict, and every problem is reported before any training starts, all at once, one line each, as
 * {@code <recipe file>: <key path>: <what is wrong>}: unknown keys (with a did-you-mean), wrong types, missing
 * required keys, out-of-range numbers, unknown enum values (the allowed ones listed), missing data files (the
 * resolved path shown), {@code initFrom} directories without {@code model.safetensors}, and {@code key=value}
 * overrides naming a key that does not exist. Jackson parses the file into a tree; {@link RecipeBinder} binds it
 * onto the records below (a reflective walk over record components) so that every message carries the key path.
 *
 * <p>Each field's meaning and default live in its {@link Doc} annotation; {@link #describeFields()} prints them
 * (the {@code ./xllm train --help} footer), and an absent key takes that default. Paths: {@code data.*} are
 * relative to the recipe's directory and are stored resolved (absolute); {@code initFrom}, {@code output} and model
 * paths are relative to the current directory, as {@code --model} is.
 */
public record StageConfig(
        @SetByLoad @Doc("the recipe file this config was loaded from (set by load, not a key)")
        Path recipe,
        @Doc("training stage: which X-LLM stage and which module it trains (see docs/recipes.md)")
        Stage stage,
        @Doc(value = "what is assembled: the frozen LLM and encoders, and which X2L interfaces", defaultValue = "{}")
        Model model,
        @Doc(value = "checkpoint dirs (each with model.safetensors) whose tensors initialise this stage's "
                + "parameters, relative to the current directory; one dir may be given without brackets",
                defaultValue = "[]")
        List<Path> initFrom,
        @Doc(value = "name-prefix renames applied to the tensors read from initFrom "
                + "(e.g. {\"imageInterface.\": \"videoInterface.\"})", defaultValue = "{}")
        Map<String, String> initRename,
        @Doc(value = "globs of initFrom tensors (names before initRename) that are not loaded, e.g. the stage-1 "
                + "Q-Former heads: [\"qformerPretraining.**\"]; every other tensor must match a parameter",
                defaultValue = "[]")
        List<String> initSkip,
        @Doc("parameter-name globs of what trains: * = part of one dotted segment, ** = any number of segments; "
                + "everything else stays frozen")
        List<String> trainable,
        @Doc("training and evaluation data (JSONL manifests)")
        Data data,
        @Doc(value = "optimiser settings", defaultValue = "{}")
        Optimizer optimizer,
        @Doc("learning-rate schedule; schedule.type picks the variant")
        Schedule schedule,
        @Doc("samples per forward/backward pass")
        int batchSize,
        @Doc(value = "micro-batches summed per optimiser step (effective batch = batchSize x this)", defaultValue = "1")
        int gradientAccumulation,
        @Doc(value = "optimiser steps to run (exactly one of steps, epochs); 0 writes the initFrom checkpoints, joined, as "
                + "this stage's model without training", defaultValue = "null")
        Integer steps,
        @Doc(value = "passes over data.train to run (exactly one of steps, epochs)", defaultValue = "null")
        Integer epochs,
        @Doc(value = "evaluate on data.eval every N optimiser steps (0 = only at the end)", defaultValue = "0")
        int evalEvery,
        @Doc(value = "write a checkpoint every N optimiser steps (0 = only the final one)", defaultValue = "0")
        int checkpointEvery,
        @Doc(value = "step checkpoints kept in the run dir, oldest deleted first", defaultValue = "3")
        int keepCheckpoints,
        @Doc(value = "seed of initialisation, data order, augmentation and dropout", defaultValue = "42")
        long seed,
        @Doc(value = "read pre-computed frozen-encoder features instead of running the encoders each step",
                defaultValue = "false")
        boolean featureCache,
        @Doc(value = "compute precision of the trainable path (bf16 only where the engine supports it)",
                defaultValue = "fp32")
        Precision precision,
        @Doc("run dir for checkpoints, metrics and provenance, relative to the current directory")
        Path output) {

    // ---------------------------------------------------------------------------------------------------------------
    // Sections and value types
    // ---------------------------------------------------------------------------------------------------------------

    /** What is assembled. Frozen parts are named by model-store name ({@code ./xllm models list}) or path. */
    public record Model(
            @Doc(value = "frozen decoder LLM: model-store name, GGUF file or Hugging Face dir (required except for "
                    + "convert-* stages)", defaultValue = "null")
            String llm,
            @Doc(value = "X2L interfaces in the model: any of image, video, speech", defaultValue = "[]")
            List<Interface> interfaces,
            @Doc(value = "size of the trainable interfaces and of encoders trained here: tiny (tests), demo "
                    + "(trains on 2 CPU cores), full (paper)", defaultValue = "demo")
            ModelSize size,
            @Doc(value = "frozen image/video encoder: model-store name or path; 'random' = random frozen weights "
                    + "from seed (tests)", defaultValue = "efficientnet-lite0")
            String visionEncoder,
            @Doc(value = "frozen speech encoder + CIF: a convert-asr checkpoint dir; 'random' as visionEncoder "
                    + "(required with the speech interface)", defaultValue = "null")
            String speechEncoder,
            @Doc(value = "BERT checkpoint (with tokenizer.json) initialising the Q-Former (convert-qformer, where it "
                    + "is required, and align-image) / C-Former transformer layers before initFrom "
                    + "is applied (null = random init)", defaultValue = "null")
            String bertInit,
            @Doc(value = "frames sampled uniformly from each video for the video interface (paper: 5 in training, "
                    + "up to 10 at inference)", defaultValue = "5")
            int videoFrames,
            @Doc(value = "SpecAugment time/frequency masks on convert-asr training batches; the demo recipe turns them "
                    + "off (with them the 3.7 M-parameter model stayed on its CTC plateau ~4x longer, docs/asr.md)",
                    defaultValue = "true")
            boolean specAugment) {
    }

    /** Data manifests (DESIGN.md §4). Relative paths in the recipe are resolved against the recipe's directory. */
    public record Data(
            @Doc("training manifest (JSONL), relative to the recipe's directory")
            Path train,
            @Doc(value = "evaluation manifest (JSONL), relative to the recipe's directory", defaultValue = "null")
            Path eval) {
    }

    /** AdamW (decoupled weight decay); paper Appendix A.3: beta = (0.9, 0.98), weight decay 0.05. */
    public record Optimizer(
            @Doc(value = "optimiser algorithm", defaultValue = "adamw")
            OptimizerType type,
            @Doc(value = "first-moment decay (paper A.3)", defaultValue = "0.9")
            double beta1,
            @Doc(value = "second-moment decay (paper A.3)", defaultValue = "0.98")
            double beta2,
            @Doc(value = "denominator term (not in the paper; PyTorch's AdamW default, which LAVIS uses)",
                    defaultValue = "1.0e-8")
            double epsilon,
            @Doc(value = "decoupled weight decay (paper A.3; its CIF ASR model used 0.01)", defaultValue = "0.05")
            double weightDecay,
            @Doc(value = "clip the global gradient L2 norm to this (0 = no clipping; not in the paper)",
                    defaultValue = "1.0")
            double maxGradNorm) {
    }

    /** A learning-rate schedule; the {@code type} key picks the variant ({@link Variant}). */
    public sealed interface Schedule permits WarmupCosine, WarmupHoldDecay {
        /** Steps of linear warm-up before the schedule's peak. */
        int warmupSteps();
    }

    /**
     * Linear warm-up from {@code warmupStartLr} to {@code initLr} over {@code warmupSteps}, then cosine decay from
     * {@code initLr} to {@code minLr} over the remaining steps (LAVIS {@code linear_warmup_cosine_lr}, whose
     * init_lr / min_lr / warmup_lr are the three learning rates of the paper's Table 7; LAVIS decays per epoch,
     * we decay per step).
     */
    @Variant("warmup-cosine")
    public record WarmupCosine(
            @Doc("peak learning rate reached after warm-up (Table 7 \"Init. LR\": 3e-5 image, 1e-5 video, "
                    + "1e-4 speech, 1e-6 stage 3)")
            double initLr,
            @Doc(value = "floor of the cosine decay (Table 7 \"Min. LR\", stage 2)", defaultValue = "1.0e-8")
            double minLr,
            @Doc(value = "learning rate at step 0 of the warm-up (Table 7 \"Warmup LR\")", defaultValue = "1.0e-6")
            double warmupStartLr,
            @Doc("linear warm-up steps (Table 7: 6000 image and speech, 200 video, 0 stage 3)")
            int warmupSteps) implements Schedule {
    }

    /**
     * Warm up linearly from 0 to {@code peakLr}, hold, then decay exponentially to {@code finalLr} and stay there:
     * the CIF ASR model's schedule (paper A.3, after SpecAugment [39]: 24k / 36k / 120k steps, hold at 3e-4).
     */
    @Variant("warmup-hold-decay")
    public record WarmupHoldDecay(
            @Doc(value = "learning rate of the hold phase (paper A.3)", defaultValue = "3.0e-4")
            double peakLr,
            @Doc("linear warm-up steps from 0 to peakLr (paper: 24000)")
            int warmupSteps,
            @Doc("steps held at peakLr (paper: 36000)")
            int holdSteps,
            @Doc("steps of exponential decay from peakLr to finalLr (paper: 120000)")
            int decaySteps,
            @Doc("learning rate (> 0) at the end of the decay and after it (not in the paper)")
            double finalLr) implements Schedule {
    }

    /** The training stages (paper §3.2); YAML ids are {@link #id()}. */
    public enum Stage {
        /** Stage 1: the CIF-based ASR model whose encoder + CIF become the frozen speech encoder. */
        CONVERT_ASR(1, List.of(), false),
        /** Stage 1: BLIP-2 stage-1 pre-training of the image Q-Former against the frozen vision encoder. */
        CONVERT_QFORMER(1, List.of(Interface.IMAGE), false),
        /** Stage 2: image interface aligned with the frozen LLM. */
        ALIGN_IMAGE(2, List.of(Interface.IMAGE), true),
        /** Stage 2: video interface aligned with the frozen LLM. */
        ALIGN_VIDEO(2, List.of(Interface.VIDEO), true),
        /** Stage 2: speech interface aligned with the frozen LLM. */
        ALIGN_SPEECH(2, List.of(Interface.SPEECH), true),
        /** Stage 3: all interfaces together on multimodal instructions (the paper trains the adapters). */
        INTEGRATE(3, null, true);

        /** 1, 2 or 3, as in the paper. */
        public final int paperStage;
        /** The interfaces this stage assembles exactly; null = any non-empty set. */
        public final List<Interface> interfaces;
        /** Whether the frozen LLM takes part (it does not in stage 1). */
        public final boolean usesLlm;

        Stage(int paperStage, List<Interface> interfaces, boolean usesLlm) {
            this.paperStage = paperStage;
            this.interfaces = interfaces;
            this.usesLlm = usesLlm;
        }

        public String id() {
            return idOf(this);
        }
    }

    public enum Interface { IMAGE, VIDEO, SPEECH }

    public enum ModelSize { TINY, DEMO, FULL }

    public enum Precision { FP32, BF16 }

    public enum OptimizerType { ADAMW }

    /** The YAML spelling of an enum constant: lower case, '_' as '-' ({@code ALIGN_IMAGE} is {@code align-image}). */
    public static String idOf(Enum<?> constant) {
        return constant.name().toLowerCase(Locale.ROOT).replace('_', '-');
    }

    /** Meaning and default of a recipe key; {@link #REQUIRED} as default marks a key that must be given. */
    @Retention(RetentionPolicy.RUNTIME)
    @Target(ElementType.RECORD_COMPONENT)
    public @interface Doc {
        String REQUIRED = "\u0000required";

        String value();

        /** YAML text of the default ({@code "null"}, {@code "[]"}, {@code "0.9"}), or {@link #REQUIRED}. */
        String defaultValue() default REQUIRED;
    }

    /** A component filled by {@link #load}, not read from the recipe. */
    @Retention(RetentionPolicy.RUNTIME)
    @Target(ElementType.RECORD_COMPONENT)
    public @interface SetByLoad {
    }

    /** The {@code type} id of a {@link Schedule} variant. */
    @Retention(RetentionPolicy.RUNTIME)
    @Target(ElementType.TYPE)
    public @interface Variant {
        String value();
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Loading
    // ---------------------------------------------------------------------------------------------------------------

    /** {@link #load(Path, List, boolean)} with data files and initFrom checkpoints checked. */
    public static StageConfig load(Path recipe, List<String> overrides) {
        return load(recipe, overrides, true);
    }

    /**
     * Reads a recipe, applies {@code key=value} overrides (dotted keys, typed by the target field) to the tree, binds
     * and validates it. {@code checkFiles} = false skips the existence checks of data files and initFrom
     * checkpoints (for recipes whose corpora are not generated yet).
     *
     * @throws IllegalArgumentException listing every problem, one per line, each as {@code recipe: key.path: what}
     */
    public static StageConfig load(Path recipe, List<String> overrides, boolean checkFiles) {
        Problems problems = new Problems(recipe.toString());
        ObjectNode root = read(recipe, problems);
        for (String override : overrides) RecipeBinder.applyOverride(root, StageConfig.class, override, problems);
        StageConfig config = (StageConfig) RecipeBinder.bind(root, StageConfig.class, recipe, problems);
        problems.throwIfAny();      // also reports failed overrides, together with the binding problems
        config = config.withResolvedData(recipe.toAbsolutePath().getParent());
        config.check(problems, checkFiles);
        problems.throwIfAny();
        return config;
    }

    private static ObjectNode read(Path recipe, Problems problems) {
        boolean json = recipe.getFileName().toString().toLowerCase(Locale.ROOT).endsWith(".json");
        JsonNode tree;
        try {
            tree = (json ? RecipeBinder.JSON : RecipeBinder.YAML).readTree(Files.readString(recipe));
        } catch (NoSuchFileException e) {
            throw new IllegalArgumentException(recipe + ": no such recipe file (" + recipe.toAbsolutePath() + ")");
        } catch (JsonProcessingException e) {
            // SnakeYAML's message already shows the line with a caret; Jackson's JSON message needs the location
            throw new IllegalArgumentException(recipe + ": not valid " + (json ? "JSON" : "YAML") + ": "
                    + e.getOriginalMessage() + (json ? locationOf(e) : ""));
        } catch (IOException e) {
            throw new UncheckedIOException(recipe + ": cannot read recipe: " + e.getMessage(), e);
        }
        if (tree == null || tree.isMissingNode() || tree.isNull()) {
            throw new IllegalArgumentException(recipe + ": empty recipe");
        }
        if (!tree.isObject()) {
            throw new IllegalArgumentException(recipe + ": expected a mapping of keys at the top, got " + RecipeBinder.show(tree));
        }
        return (ObjectNode) tree;
    }

    private static String locationOf(JsonProcessingException e) {
        return e.getLocation() == null ? ""
                : " (line " + e.getLocation().getLineNr() + ", column " + e.getLocation().getColumnNr() + ")";
    }

    /** Data paths resolved against the recipe's directory (absolute, normalised). */
    private StageConfig withResolvedData(Path recipeDir) {
        Data resolved = new Data(recipeDir.resolve(data.train).normalize(),
                data.eval == null ? null : recipeDir.resolve(data.eval).normalize());
        return new StageConfig(recipe, stage, model, initFrom, initRename, initSkip, trainable, resolved, optimizer, schedule,
                batchSize, gradientAccumulation, steps, epochs, evalEvery, checkpointEvery, keepCheckpoints, seed,
                featureCache, precision, output);
    }

    /** The checks that span fields or need ranges; files only when asked. */
    private void check(Problems problems, boolean checkFiles) {
        // what is assembled must fit the stage
        if (stage.usesLlm && model.llm == null) {
            problems.add("model.llm", "missing required key (stage " + stage.id() + " trains through the frozen LLM)");
        }
        Set<Interface> unique = new LinkedHashSet<>(model.interfaces);
        if (unique.size() != model.interfaces.size()) {
            problems.add("model.interfaces", "lists an interface twice: " + ids(model.interfaces));
        }
        if (stage.interfaces == null && model.interfaces.isEmpty()) {
            problems.add("model.interfaces", "stage " + stage.id() + " needs at least one of image, video, speech");
        } else if (stage.interfaces != null && !unique.equals(new LinkedHashSet<>(stage.interfaces))) {
            problems.add("model.interfaces", "stage " + stage.id() + " assembles exactly " + ids(stage.interfaces)
                    + ", got " + ids(model.interfaces));
        }
        if (model.interfaces.contains(Interface.SPEECH) && model.speechEncoder == null) {
            problems.add("model.speechEncoder", "missing required key (the speech interface needs the frozen "
                    + "encoder + CIF of a convert-asr checkpoint)");
        }
        // what trains
        if (trainable.isEmpty()) problems.add("trainable", "lists no glob, so nothing would train");
        for (int i = 0; i < trainable.size(); i++) {
            try {
                ParameterGlob.compile(trainable.get(i));
            } catch (IllegalArgumentException e) {
                problems.add("trainable[" + i + "]", e.getMessage());
            }
        }
        initRename.forEach((from, to) -> {
            if (from.isEmpty()) problems.add("initRename", "an empty prefix would rename every tensor");
        });
        for (String glob : initSkip) {
            try {
                ParameterGlob.compile(glob);
            } catch (IllegalArgumentException e) {
                problems.add("initSkip", e.getMessage());
            }
        }
        // how long and how
        if (steps == null && epochs == null) {
            problems.add("steps", "missing required key: give exactly one of steps, epochs");
        } else if (steps != null && epochs != null) {
            problems.add("epochs", "given together with steps; give exactly one of steps, epochs");
        }
        atLeast(problems, "batchSize", batchSize, 1);
        atLeast(problems, "gradientAccumulation", gradientAccumulation, 1);
        if (steps != null) atLeast(problems, "steps", steps, 0); // 0: compose initFrom into one checkpoint, no training
        if (epochs != null) atLeast(problems, "epochs", epochs, 1);
        atLeast(problems, "evalEvery", evalEvery, 0);
        atLeast(problems, "checkpointEvery", checkpointEvery, 0);
        atLeast(problems, "keepCheckpoints", keepCheckpoints, 1);
        if (evalEvery > 0 && data.eval == null) {
            problems.add("evalEvery", "is " + evalEvery + " but data.eval is not given");
        }
        // optimiser
        inRange(problems, "optimizer.beta1", optimizer.beta1, 0, 1, "in [0, 1)");
        inRange(problems, "optimizer.beta2", optimizer.beta2, 0, 1, "in [0, 1)");
        if (!(optimizer.epsilon > 0)) problems.add("optimizer.epsilon", "must be > 0, got " + optimizer.epsilon);
        nonNegative(problems, "optimizer.weightDecay", optimizer.weightDecay);
        nonNegative(problems, "optimizer.maxGradNorm", optimizer.maxGradNorm);
        // schedule
        if (schedule instanceof WarmupCosine cosine) {
            if (!(cosine.initLr > 0)) problems.add("schedule.initLr", "must be > 0, got " + cosine.initLr);
            nonNegative(problems, "schedule.minLr", cosine.minLr);
            nonNegative(problems, "schedule.warmupStartLr", cosine.warmupStartLr);
            atLeast(problems, "schedule.warmupSteps", cosine.warmupSteps, 0);
            if (cosine.minLr > cosine.initLr) {
                problems.add("schedule.minLr", "is " + cosine.minLr + ", above schedule.initLr " + cosine.initLr);
            }
        } else if (schedule instanceof WarmupHoldDecay hold) {
            if (!(hold.peakLr > 0)) problems.add("schedule.peakLr", "must be > 0, got " + hold.peakLr);
            // exponential decay needs a positive end point
            if (!(hold.finalLr > 0)) problems.add("schedule.finalLr", "must be > 0, got " + hold.finalLr);
            atLeast(problems, "schedule.warmupSteps", hold.warmupSteps, 0);
            atLeast(problems, "schedule.holdSteps", hold.holdSteps, 0);
            atLeast(problems, "schedule.decaySteps", hold.decaySteps, 0);
            if (hold.finalLr > hold.peakLr) {
                problems.add("schedule.finalLr", "is " + hold.finalLr + ", above schedule.peakLr " + hold.peakLr);
            }
        }
        // a warm-up as long as the run never reaches the schedule's peak (with epochs the run's length is known only
        // once the data is read: StageRunner checks it there)
        if (steps != null && steps >= 1 && schedule.warmupSteps() >= steps) {
            problems.add("schedule.warmupSteps", "is " + schedule.warmupSteps() + ", not below steps " + steps
                    + " (the warm-up would never finish)");
        }
        if (!checkFiles) return;
        checkOutput(problems);
        requireFile(problems, "data.train", data.train);
        if (data.eval != null) requireFile(problems, "data.eval", data.eval);
        for (int i = 0; i < initFrom.size(); i++) {
            Path dir = initFrom.get(i).toAbsolutePath().normalize();
            String key = "initFrom[" + i + "]";
            if (!Files.isDirectory(dir)) problems.add(key, "checkpoint dir not found: " + dir);
            else if (!Files.isRegularFile(dir.resolve("model.safetensors"))) {
                problems.add(key, dir + " has no model.safetensors (not a checkpoint dir)");
            }
        }
    }

    /**
     * The run dir and its checkpoints/ dir must be directories (or not exist yet) below a directory: found here, a
     * file in their place fails the recipe at load, not at the first checkpoint after the run's compute.
     */
    private void checkOutput(Problems problems) {
        if (output == null) return;
        Path run = output.toAbsolutePath().normalize();
        Path checkpoints = run.resolve(CheckpointStore.CHECKPOINTS);
        if (Files.exists(run) && !Files.isDirectory(run)) {
            problems.add("output", output + ": is a file, expected a directory");
        } else if (Files.exists(checkpoints) && !Files.isDirectory(checkpoints)) {
            problems.add("output", checkpoints + ": is a file, expected a directory (the run's checkpoints)");
        } else {
            for (Path ancestor = run.getParent(); ancestor != null; ancestor = ancestor.getParent()) {
                if (!Files.exists(ancestor)) continue;
                if (!Files.isDirectory(ancestor)) problems.add("output", ancestor + ": is a file, expected a directory");
                break;
            }
        }
    }

    /**
     * Creates the run dir and its checkpoints/ dir and writes (then deletes) a probe file in each, so that an
     * unwritable output fails before the model is assembled and trained, not when the first checkpoint is saved.
     *
     * @throws IllegalArgumentException naming the recipe, the {@code output} key and the directory
     */
    public void prepareOutput() {
        Path run = output.toAbsolutePath().normalize();
        for (Path dir : List.of(run, run.resolve(CheckpointStore.CHECKPOINTS))) {
            try {
                Files.createDirectories(dir);
                Files.delete(Files.createTempFile(dir, ".write-probe-", ""));
            } catch (IOException | UnsupportedOperationException | SecurityException e) {
                throw new IllegalArgumentException(recipe + ": output: cannot create or write " + dir + " ("
                        + reason(e) + ")", e);
            }
        }
    }

    private static String reason(Exception e) {
        if (e instanceof java.nio.file.FileSystemException fs) {
            String why = fs.getReason() != null ? fs.getReason()
                    : e instanceof NoSuchFileException ? "no such file or directory"
                    : e instanceof java.nio.file.AccessDeniedException ? "permission denied"
                    : e instanceof java.nio.file.FileAlreadyExistsException ? "a file is in the way"
                    : e.getClass().getSimpleName();
            return fs.getFile() == null ? why : fs.getFile() + ": " + why;
        }
        return e.getMessage() != null ? e.getMessage() : e.getClass().getSimpleName();
    }

    private static void requireFile(Problems problems, String key, Path file) {
        if (!Files.exists(file)) problems.add(key, "file not found: " + file);
        else if (!Files.isRegularFile(file)) problems.add(key, "not a regular file: " + file);
    }

    private static void atLeast(Problems problems, String key, long value, long min) {
        if (value < min) problems.add(key, "must be " + (min == 0 ? ">= 0" : ">= " + min) + ", got " + value);
    }

    private static void nonNegative(Problems problems, String key, double value) {
        if (!(value >= 0)) problems.add(key, "must be >= 0, got " + value);
    }

    private static void inRange(Problems problems, String key, double value, double low, double high, String what) {
        if (!(value >= low && value < high)) problems.add(key, "must be " + what + ", got " + value);
    }

    private static String ids(List<? extends Enum<?>> constants) {
        return constants.stream().map(StageConfig::idOf).collect(Collectors.joining(", ", "[", "]"));
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Trainable parameters
    // ---------------------------------------------------------------------------------------------------------------

    /**
     * Checks the {@code trainable} globs against the assembled model's parameter names and returns the matched
     * names (in the given order): the parameters this stage trains.
     *
     * @throws IllegalArgumentException naming the recipe, each glob that matched nothing, and up to 5 close names
     */
    public List<String> validateTrainable(Collection<String> parameterNames) {
        Map<String, List<String>> matches = ParameterGlob.match(trainable, parameterNames);
        List<String> errors = new ArrayList<>();
        matches.forEach((glob, hits) -> {
            if (!hits.isEmpty()) return;
            StringBuilder message = new StringBuilder(recipe + ": trainable: glob \"" + glob
                    + "\" matches no parameter of the assembled model");
            String below = glob + ".";
            if (glob.indexOf('*') < 0 && parameterNames.stream().anyMatch(n -> n.startsWith(below))) {
                message.append("; it names a module, not a tensor: use \"").append(glob).append(".**\"");
            }
            List<String> close = ParameterGlob.closest(glob, parameterNames, 5);
            if (!close.isEmpty()) message.append("; close names: ").append(String.join(", ", close));
            errors.add(message.toString());
        });
        if (!errors.isEmpty()) throw new IllegalArgumentException(String.join("\n", errors));
        Set<String> matched = new HashSet<>();
        matches.values().forEach(matched::addAll);
        return parameterNames.stream().filter(matched::contains).toList();
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Help text and serialisation
    // ---------------------------------------------------------------------------------------------------------------

    /** Every recipe key with its type, default and meaning, generated from the records and their {@link Doc}s. */
    public static String describeFields() {
        List<String[]> rows = RecipeBinder.describeRows(StageConfig.class);
        int keyWidth = rows.stream().mapToInt(r -> r[0].length()).max().orElse(0) + 2;
        StringBuilder text = new StringBuilder("Recipe keys (YAML or JSON; nested keys dotted as in overrides, "
                + "e.g. schedule.initLr=3e-4):\n");
        for (String[] row : rows) {
            text.append("  ").append(pad(row[0], keyWidth));
            wrap(row[1] + ". " + row[2], 2 + keyWidth, HELP_WIDTH, text);
        }
        return text.toString();
    }

    private static final int HELP_WIDTH = 110;

    /** Appends words up to {@code width} columns, continuation lines indented to {@code indent}. */
    private static void wrap(String words, int indent, int width, StringBuilder text) {
        int column = indent;
        boolean first = true;
        for (String word : words.split(" ")) {
            if (!first && column + 1 + word.length() > width) {
                text.append('\n').append(" ".repeat(indent));
                column = indent;
                first = true;
            }
            if (!first) {
                text.append(' ');
                column++;
            }
            text.append(word);
            column += word.length();
            first = false;
        }
        text.append('\n');
    }

    private static String pad(String text, int width) {
        return text + " ".repeat(Math.max(2, width - text.length()));
    }

    /** This config as recipe YAML (data paths as stored: absolute after {@link #load}); loads back to an equal record. */
    public String toYaml() {
        ObjectMapper yaml = new ObjectMapper(new YAMLFactory()
                .disable(YAMLGenerator.Feature.WRITE_DOC_START_MARKER)
                .enable(YAMLGenerator.Feature.MINIMIZE_QUOTES)
                .enable(YAMLGenerator.Feature.ALWAYS_QUOTE_NUMBERS_AS_STRINGS));
        try {
            return yaml.writeValueAsString(RecipeBinder.toTree(this));
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }
}
