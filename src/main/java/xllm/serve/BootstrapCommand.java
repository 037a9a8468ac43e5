package xllm.serve;

import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;
import xllm.data.DebianPhotos;
import xllm.data.InstructionSet;
import xllm.data.PocketsphinxTestdata;
import xllm.data.SyntheticScenes;
import xllm.data.SyntheticSpeech;
import xllm.data.SyntheticVideos;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.Locale;
import java.util.concurrent.Callable;

/**
 * {@code ./xllm bootstrap}: the whole pipeline ({@link BootstrapPipeline}); its subcommands generate the training
 * data we draw ourselves, one set each (DESIGN.md §5).
 */
@Command(name = "bootstrap", mixinStandardHelpOptions = true, version = "xllm 0.1.0",
        description = {"Train X-LLM from nothing, in one resumable command: pull the weight carriers, build the "
                + "corpora, stage 1 (CIF ASR), stage 2 (image, video, speech), stage 3 (adapters on the joint "
                + "instruction set), evaluate held out, and write runs/bootstrap/REPORT.md (+ report.json, loss "
                + "curves). Each stage runs its committed recipe as written; a rerun skips the steps whose recipe, "
                + "arguments and input data are unchanged, and resumes an interrupted training step from its newest "
                + "checkpoint. About 90 minutes on 2 cores; run it from the repository root. Needs espeak-ng.",
                "With a subcommand: generate one data set."},
        subcommands = {BootstrapCommand.Scenes.class, BootstrapCommand.Videos.class, BootstrapCommand.Speech.class,
                BootstrapCommand.Pocketsphinx.class, BootstrapCommand.Photos.class, BootstrapCommand.Replies.class,
                BootstrapCommand.Instructions.class, CommandLine.HelpCommand.class})
public final class BootstrapCommand implements Callable<Integer> {

    @Spec
    CommandSpec spec;

    @Option(names = "--plan", description = "Print the steps, their planned minutes and which are up to date; run nothing.")
    boolean plan;

    @Option(names = "--fresh", description = "Run every step again, even those up to date.")
    boolean fresh;

    @Override
    public Integer call() throws Exception {
        BootstrapPipeline pipeline = new BootstrapPipeline(BootstrapPipeline.plan(), BootstrapPipeline.STATE, System.err);
        if (plan) {
            PrintWriter out = spec.commandLine().getOut();
            pipeline.plannedActions().forEach(out::println);
            out.flush();
            return 0;
        }
        pipeline.run(fresh);
        return 0;
    }

    /** {@code ./xllm bootstrap scenes}: see {@link SyntheticScenes}. */
    @Command(name = "scenes", mixinStandardHelpOptions = true, version = "xllm 0.1.0",
            description = {
                    "Draw 224x224 scenes of 1-4 identical shapes (circle, square, triangle, star) in one colour "
                            + "(red, green, blue, yellow, purple, orange) and write LLaVA-style JSONL samples: caption, "
                            + "colour, shape, count, describe, position; about 20%% in Chinese.",
                    "Writes OUT/images/*.png, OUT/train.jsonl and OUT/eval.jsonl; each line carries \"attributes\" "
                            + "{shape, colour, count, objects} for exact scoring. The eval split uses another seed "
                            + "and never repeats a train image."})
    static final class Scenes implements Callable<Integer> {

        @Spec
        CommandSpec spec;

        @Option(names = "--out", paramLabel = "DIR", defaultValue = "data/synthetic/scenes",
                description = "Output directory (default: ${DEFAULT-VALUE}).")
        Path out;

        @Option(names = "--train", paramLabel = "N", defaultValue = "2000",
                description = "Training scenes (default: ${DEFAULT-VALUE}); each gives 5-6 samples.")
        int train;

        @Option(names = "--eval", paramLabel = "N", defaultValue = "200",
                description = "Held-out evaluation scenes (default: ${DEFAULT-VALUE}); 0 for none.")
        int eval;

        @Option(names = "--seed", paramLabel = "SEED", defaultValue = "42",
                description = "Seed; the same seed writes byte-identical files (default: ${DEFAULT-VALUE}).")
        long seed;

        @Override
        public Integer call() throws IOException {
            OutputPaths.directory("--out", out);
            splits(spec, train, eval, (split, count, excluded, progress) ->
                    SyntheticScenes.generate(out, count, seed, split, excluded, progress), SyntheticScenes.Summary::layouts,
                    Scenes::report);
            return 0;
        }

        private static void report(PrintWriter printer, SyntheticScenes.Summary summary) {
            printer.printf(Locale.ROOT, "wrote %s: %d samples (%d Chinese) from %d scenes, images in %s "
                            + "(%.1f s, %.0f scenes/s)%n", summary.manifest(), summary.samples(),
                    summary.chineseSamples(), summary.scenes(), summary.manifest().resolveSibling("images"),
                    summary.seconds(), summary.scenesPerSecond());
        }
    }

    /** {@code ./xllm bootstrap videos}: see {@link SyntheticVideos}. */
    @Command(name = "videos", mixinStandardHelpOptions = true, version = "xllm 0.1.0",
            description = {
                    "Render 2-second 224x224 clips (16 frames, 8 fps) of one shape (circle, square, triangle, star) "
                            + "moving left/right/up/down, slowly or quickly, a quarter of them changing colour "
                            + "half-way, and write LLaVA-style JSONL samples: caption, describe, direction, colour, "
                            + "speed; about 20%% in Chinese.",
                    "Writes OUT/videos/*.mp4 (H.264) and *.avi (Motion JPEG, about 20%%), OUT/train.jsonl and "
                            + "OUT/eval.jsonl; each line carries \"attributes\" {shape, colour, colourEnd, direction, "
                            + "speed, start, end, ...} for exact scoring. The eval split uses another seed and never "
                            + "repeats a train motion."})
    static final class Videos implements Callable<Integer> {

        @Spec
        CommandSpec spec;

        @Option(names = "--out", paramLabel = "DIR", defaultValue = "data/synthetic/videos",
                description = "Output directory (default: ${DEFAULT-VALUE}).")
        Path out;

        @Option(names = "--train", paramLabel = "N", defaultValue = "500",
                description = "Training clips (default: ${DEFAULT-VALUE}); each gives 5 samples.")
        int train;

        @Option(names = "--eval", paramLabel = "N", defaultValue = "50",
                description = "Held-out evaluation clips (default: ${DEFAULT-VALUE}); 0 for none.")
        int eval;

        @Option(names = "--seed", paramLabel = "SEED", defaultValue = "42",
                description = "Seed; the same seed writes byte-identical files (default: ${DEFAULT-VALUE}).")
        long seed;

        @Override
        public Integer call() throws IOException {
            OutputPaths.directory("--out", out);
            splits(spec, train, eval, (split, count, excluded, progress) ->
                    SyntheticVideos.generate(out, count, seed, split, excluded, progress), SyntheticVideos.Summary::layouts,
                    Videos::report);
            return 0;
        }

        private static void report(PrintWriter printer, SyntheticVideos.Summary summary) {
            printer.printf(Locale.ROOT, "wrote %s: %d samples (%d Chinese) from %d clips (%d AVI), videos in %s "
                            + "(%.1f s, %.1f clips/s)%n", summary.manifest(), summary.samples(),
                    summary.chineseSamples(), summary.clips(), summary.aviClips(),
                    summary.manifest().resolveSibling("videos"), summary.seconds(), summary.clipsPerSecond());
        }
    }

    /** {@code ./xllm bootstrap speech}: see {@link SyntheticSpeech}. */
    @Command(name = "speech", mixinStandardHelpOptions = true, version = "xllm 0.1.0",
            description = {
                    "Synthesise an ASR corpus with espeak-ng: short English sentences about shapes, colours, counts, "
                            + "positions, numbers and everyday things (and, with --mandarin, Chinese sentences spoken "
                            + "through numbered pinyin), several voices, rates and pitches, speed perturbation "
                            + "0.9/1.0/1.1 and additive noise at 5-30 dB SNR.",
                    "Writes OUT/audio/*.wav (16 kHz 16-bit mono), OUT/train.jsonl and OUT/eval.jsonl of "
                            + "{\"id\",\"audio\",\"text\",\"language\",...}. Eval sentences never occur in train; "
                            + "eval voices and rates come from the train mix. Needs espeak-ng (apt-get install "
                            + "espeak-ng)."})
    static final class Speech implements Callable<Integer> {

        @Spec
        CommandSpec spec;

        @Option(names = "--out", paramLabel = "DIR", defaultValue = "data/synthetic/speech",
                description = "Output directory (default: ${DEFAULT-VALUE}).")
        Path out;

        @Option(names = "--train", paramLabel = "N", defaultValue = "2000",
                description = "English training utterances (default: ${DEFAULT-VALUE}); 0 for none.")
        int train;

        @Option(names = "--eval", paramLabel = "M", defaultValue = "200",
                description = "English evaluation utterances (default: ${DEFAULT-VALUE}); 0 for none.")
        int eval;

        @Option(names = "--mandarin", paramLabel = "K", defaultValue = "0",
                description = "Mandarin training utterances added to train (default: ${DEFAULT-VALUE}); eval gets "
                        + "the same fraction, K*M/N rounded up.")
        int mandarin;

        @Option(names = "--seed", paramLabel = "SEED", defaultValue = "42",
                description = "Seed; the same seed writes byte-identical files (default: ${DEFAULT-VALUE}).")
        long seed;

        @Option(names = "--workers", paramLabel = "W", description = "Parallel espeak-ng processes (default: cores).")
        Integer workers;

        @Option(names = "--general", paramLabel = "G", defaultValue = "0",
                description = "Also G general-knowledge spoken questions (\"how many legs does a cat have\", \"what is "
                        + "the capital of spain\") in OUT/general.jsonl and G/10 others in OUT/general_eval.jsonl, for "
                        + "stage 2 with `bootstrap replies`; four questions are never drawn (\"how many legs does a dog "
                        + "have\", ...): OUT/general_held_out.jsonl speaks them in every accent (default: ${DEFAULT-VALUE}).")
        int general;

        @Option(names = "--questions-from", paramLabel = "SCENES_MANIFEST",
                description = "Also speak the questions of this `bootstrap scenes` manifest: writes "
                        + "OUT/questions-<name>.jsonl of {\"id\",\"audio\",\"text\",\"image\",...}.")
        Path questionsFrom;

        @Override
        public Integer call() throws IOException {
            OutputPaths.directory("--out", out);
            if (train < 0 || eval < 0 || mandarin < 0 || general < 0) throw new IllegalArgumentException("counts must be >= 0");
            if (train + mandarin == 0 && eval == 0 && general == 0 && questionsFrom == null) {
                throw new IllegalArgumentException("nothing to do: --train, --eval, --mandarin, --general and "
                        + "--questions-from are all empty");
            }
            int threads = workers != null ? Math.max(1, workers) : Runtime.getRuntime().availableProcessors();
            PrintWriter printer = spec.commandLine().getOut();
            java.util.function.Consumer<String> progress = line -> {
                synchronized (printer) {
                    printer.println(line);
                    printer.flush();
                }
            };
            java.util.Set<String> trainTexts = java.util.Set.of();
            if (train + mandarin > 0) {
                SyntheticSpeech.Summary summary = SyntheticSpeech.generate(out, "train", train, mandarin, seed,
                        java.util.Set.of(), threads, progress);
                report(printer, summary);
                trainTexts = summary.texts();
            }
            int evalMandarin = train == 0 ? 0 : (int) Math.ceil((double) mandarin * eval / train);
            if (eval + evalMandarin > 0) {
                report(printer, SyntheticSpeech.generate(out, "eval", eval, evalMandarin, seed, trainTexts, threads,
                        progress));
            }
            if (general > 0) {
                SyntheticSpeech.Summary summary = SyntheticSpeech.generateQuestions(out, "general", general, seed,
                        java.util.Set.of(), threads, progress);
                report(printer, summary);
                report(printer, SyntheticSpeech.generateQuestions(out, "general_eval", Math.max(1, general / 10), seed,
                        summary.texts(), threads, progress));
                report(printer, SyntheticSpeech.speakHeldOutQuestions(out, threads, progress));
            }
            if (questionsFrom != null) {
                if (!java.nio.file.Files.isRegularFile(questionsFrom)) {
                    throw new IllegalArgumentException("--questions-from " + questionsFrom + ": no such file");
                }
                report(printer, SyntheticSpeech.speakQuestions(questionsFrom, out, seed, threads, progress));
            }
            printer.flush();
            return 0;
        }

        private static void report(PrintWriter printer, SyntheticSpeech.Summary summary) {
            printer.printf(Locale.ROOT, "wrote %s: %d utterances (%d Mandarin), %.1f min of audio, %.1f-%.1f s each "
                            + "(%.1f s, %.1f utterances/s)%n", summary.manifest(), summary.utterances(),
                    summary.mandarin(), summary.audioSeconds() / 60, summary.minSeconds(), summary.maxSeconds(),
                    summary.wallSeconds(), summary.utterancesPerSecond());
        }
    }

    /** {@code ./xllm bootstrap instructions}: see {@link InstructionSet}. */
    @Command(name = "instructions", mixinStandardHelpOptions = true, version = "xllm 0.1.0",
            description = {
                    "Build the stage-3 joint instruction set: LLaVA-style conversations over synthetic scenes, clips "
                            + "and espeak-ng speech, one task each, round-robin: image-caption, image-qa, video-qa, "
                            + "asr, spoken-image-qa (the speech is the question), mm-asr (a description of the image "
                            + "spoken over 0-6 dB noise) and multi-turn (2-3 turns about one image).",
                    "Writes OUT/train.jsonl, OUT/eval.jsonl, OUT/eval-mmasr.jsonl (ASR lines with \"image\"), "
                            + "OUT/eval-spoken-image.jsonl, OUT/summary.json and media under OUT/images, OUT/videos, "
                            + "OUT/audio. Eval never shares an image, a clip, a spoken sentence or a voice with train. "
                            + "Needs espeak-ng (apt-get install espeak-ng). See docs/instructions.md."})
    static final class Instructions implements Callable<Integer> {

        @Spec
        CommandSpec spec;

        @Option(names = "--out", paramLabel = "DIR", defaultValue = "data/synthetic/instructions",
                description = "Output directory (default: ${DEFAULT-VALUE}).")
        Path out;

        @Option(names = "--train", paramLabel = "N", defaultValue = "1500",
                description = "Training conversations, at least 7 (default: ${DEFAULT-VALUE}).")
        int train;

        @Option(names = "--eval", paramLabel = "N", defaultValue = "350",
                description = "Held-out conversations, at least 7 (default: ${DEFAULT-VALUE}).")
        int eval;

        @Option(names = "--seed", paramLabel = "SEED", defaultValue = "42",
                description = "Seed; the same seed writes byte-identical files (default: ${DEFAULT-VALUE}).")
        long seed;

        @Option(names = "--workers", paramLabel = "W", description = "Parallel renderers and espeak-ng processes "
                + "(default: cores).")
        Integer workers;

        @Override
        public Integer call() throws IOException {
            OutputPaths.directory("--out", out);
            int threads = workers != null ? Math.max(1, workers) : Runtime.getRuntime().availableProcessors();
            InstructionSet.Summary summary = InstructionSet.build(out, train, eval, seed, threads, true);
            PrintWriter printer = spec.commandLine().getOut();
            summary.tasks().forEach((split, counts) -> printer.printf(Locale.ROOT, "%s: %s%n", split, counts));
            printer.printf(Locale.ROOT, "wrote %s: %d images, %d clips, %d utterances (%.1f s)%n", out,
                    summary.images(), summary.clips(), summary.utterances(), summary.seconds());
            printer.flush();
            return 0;
        }
    }

    /** {@code ./xllm bootstrap pocketsphinx}: see {@link PocketsphinxTestdata}. */
    @Command(name = "pocketsphinx", mixinStandardHelpOptions = true, version = "xllm 0.1.0",
            description = {"Build an English ASR evaluation manifest from the real recordings of the Debian package "
                    + "pocketsphinx-testdata (LibriVox read speech, card names, digits): OUT/audio/*.wav (16 kHz) and "
                    + "OUT/eval.jsonl with lower-cased reference text."})
    static final class Pocketsphinx implements Callable<Integer> {

        @Spec
        CommandSpec spec;

        @Option(names = "--out", paramLabel = "DIR", defaultValue = "data/pocketsphinx",
                description = "Output directory (default: ${DEFAULT-VALUE}).")
        Path out;

        @Option(names = "--data", paramLabel = "DIR", defaultValue = PocketsphinxTestdata.DEFAULT_ROOT,
                description = "The package's test data (default: ${DEFAULT-VALUE}).")
        Path data;

        @Override
        public Integer call() throws IOException {
            OutputPaths.directory("--out", out);
            PocketsphinxTestdata.Summary summary = PocketsphinxTestdata.build(data, out);
            PrintWriter printer = spec.commandLine().getOut();
            printer.printf(Locale.ROOT, "wrote %s: %d utterances, %.1f s of audio%n", summary.manifest(),
                    summary.utterances(), summary.audioSeconds());
            printer.flush();
            return 0;
        }
    }

    /** {@code ./xllm bootstrap photos}: see {@link DebianPhotos}. */
    @Command(name = "photos", mixinStandardHelpOptions = true, version = "xllm 0.1.0",
            description = {"Build a small real-photo image evaluation set from the photographs of the Debian package "
                    + "python3-skimage (astronaut, cat, coffee, rocket, motorcycle, ...) with our own hand-written "
                    + "captions and questions: OUT/images/ and OUT/eval.jsonl (LLaVA-style, with \"keywords\" that "
                    + "`eval image` accepts in a free-form answer). Evaluation only."})
    static final class Photos implements Callable<Integer> {

        @Spec
        CommandSpec spec;

        @Option(names = "--out", paramLabel = "DIR", defaultValue = "data/photos",
                description = "Output directory (default: ${DEFAULT-VALUE}).")
        Path out;

        @Option(names = "--data", paramLabel = "DIR", defaultValue = DebianPhotos.DEFAULT_ROOT,
                description = "The package's photo directory (default: ${DEFAULT-VALUE}).")
        Path data;

        @Override
        public Integer call() throws IOException {
            OutputPaths.directory("--out", out);
            DebianPhotos.Summary summary = DebianPhotos.build(data, out);
            PrintWriter printer = spec.commandLine().getOut();
            printer.printf(Locale.ROOT, "wrote %s: %d samples about %d photos%n", summary.manifest(), summary.samples(),
                    summary.photos());
            printer.flush();
            return 0;
        }
    }

    /** {@code ./xllm bootstrap replies}: see {@link xllm.data.SpokenReplies}. */
    @Command(name = "replies", mixinStandardHelpOptions = true, version = "xllm 0.1.0",
            description = {"Spoken-question data for stage 2 (speech): the frozen LLM's own greedy chat reply to each "
                    + "transcript of an ASR manifest (its first sentence), as a LLaVA-style manifest whose samples make "
                    + "the speech the user's whole turn. Trained on it (mixed with the ASR samples, --asr), the speech "
                    + "interface makes the LLM answer a spoken question as it answers the typed one, instead of "
                    + "transcribing it. Mandarin utterances get no reply (the LLM is English).",
                    "Audio paths are written relative to OUT's directory."})
    static final class Replies implements Callable<Integer> {

        @Spec
        CommandSpec spec;

        @picocli.CommandLine.Mixin
        ModelOption llm;

        @Option(names = "--data", required = true, paramLabel = "ASR_MANIFEST", description = "ASR manifest {\"id\",\"audio\",\"text\"}.")
        Path data;

        @Option(names = "--out", required = true, paramLabel = "FILE", description = "Manifest to write (replaced atomically).")
        Path out;

        @Option(names = "--asr", description = "Also write every utterance's ASR sample (the paper's instruction, the "
                + "transcript), before its reply sample.")
        boolean asr;

        @Option(names = "--replies", paramLabel = "N", defaultValue = "0",
                description = "Replies for the first N English utterances only (default: all).")
        int replies;

        @Option(names = "--batch", paramLabel = "B", defaultValue = "16", description = "Replies generated together (default: ${DEFAULT-VALUE}).")
        int batch;

        @Option(names = "--max-tokens", paramLabel = "T", defaultValue = "40",
                description = "Most tokens generated per reply before its first sentence is kept (default: ${DEFAULT-VALUE}).")
        int maxTokens;

        @Override
        public Integer call() throws IOException {
            OutputPaths.file("--out", out); // before the model is loaded
            try (ai.djl.ndarray.NDManager manager = ai.djl.ndarray.NDManager.newBaseManager();
                 xllm.llm.LanguageModel model = llm.open(manager)) {
                xllm.data.SpokenReplies.Summary summary = xllm.data.SpokenReplies.write(model, data, out, asr,
                        replies, batch, maxTokens);
                PrintWriter printer = spec.commandLine().getOut();
                printer.printf(Locale.ROOT, "wrote %s: %d reply samples (%d distinct transcripts, %d empty replies left "
                                + "out), %d ASR samples, %.1f s%n", summary.manifest(), summary.replySamples(),
                        summary.distinctTexts(), summary.skipped(), summary.asrSamples(), summary.seconds());
                printer.flush();
            }
            return 0;
        }
    }

    /** One split of a synthetic set: writes {@code count} items of {@code split}, never one of {@code excluded}. */
    interface SplitWriter<S> {
        S write(String split, int count, java.util.Set<String> excluded, java.util.function.Consumer<String> progress)
                throws IOException;
    }

    /** The train split, then (eval &gt; 0) an eval split excluding the train layouts; progress and a summary each. */
    static <S> void splits(CommandSpec spec, int train, int eval, SplitWriter<S> writer,
                           java.util.function.Function<S, java.util.Set<String>> layouts,
                           java.util.function.BiConsumer<PrintWriter, S> report) throws IOException {
        if (train < 1) throw new IllegalArgumentException("--train must be >= 1");
        if (eval < 0) throw new IllegalArgumentException("--eval must be >= 0");
        PrintWriter printer = spec.commandLine().getOut();
        java.util.function.Consumer<String> progress = line -> {
            synchronized (printer) {
                printer.println(line);
                printer.flush();
            }
        };
        S trainSummary = writer.write("train", train, java.util.Set.of(), progress);
        report.accept(printer, trainSummary);
        if (eval > 0) report.accept(printer, writer.write("eval", eval, layouts.apply(trainSummary), progress));
        printer.flush();
    }
}
