package xllm.serve;

import ai.djl.ndarray.NDManager;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import xllm.eval.AsrEvaluation;
import xllm.eval.ImageQaEvaluation;
import xllm.hub.ModelStore;
import xllm.model.Conversation;
import xllm.model.Modality;
import xllm.model.PromptTemplate;
import xllm.model.VideoInterface;
import xllm.model.XLlm;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;

/** {@code ./xllm eval ...}: evaluations that print a per-task table. */
@Command(name = "eval", mixinStandardHelpOptions = true, description = "Evaluate a trained model.",
        subcommands = {EvalCommand.Image.class, EvalCommand.Video.class, EvalCommand.Spoken.class, EvalCommand.Asr.class})
public final class EvalCommand implements Runnable {

    @Override
    public void run() {
        picocli.CommandLine.usage(this, System.out);
    }

    /**
     * {@code ./xllm eval image|video|spoken}: exact-match accuracy of greedy answers ({@link ImageQaEvaluation}). The
     * three names differ only in their usage text (video adds --frames): each sample is asked with all its media,
     * which the X-LLM checkpoint must read.
     */
    abstract static class MediaQuestions implements Callable<Integer> {
        @Option(names = {"-m", "--model"}, required = true, description = "X-LLM checkpoint directory.") String model;
        @Option(names = "--data", required = true, description = "JSONL manifest (LLaVA style).") Path data;
        @Option(names = "--limit", defaultValue = "0", description = "Evaluate only the first N samples (0 = all).") int limit;
        @Option(names = "--show-errors", description = "Print each wrong answer on stderr.") boolean showErrors;
        @Option(names = "--task", description = "Only samples of this task (e.g. direction, caption).") String task;

        /** Frames sampled per video (0: the training recipe's). */
        int frames() {
            return 0;
        }

        @Override
        public Integer call() throws Exception {
            requireAtLeastZero("--limit", limit);
            if (frames() < 0 || frames() > VideoInterface.MAX_FRAMES) { // before anything is loaded
                throw new IllegalArgumentException("--frames must be in 1.." + VideoInterface.MAX_FRAMES
                        + " (0: the checkpoint's), got " + frames());
            }
            // the manifest is checked before the model is looked up, then against the media the model reads
            ImageQaEvaluation.readSamples(data, limit, task, java.util.EnumSet.allOf(Modality.class));
            Path checkpoint = ModelStore.defaultStore().resolve(model);
            java.util.Set<Modality> reads = XLlm.readConfig(checkpoint).modalities();
            List<ImageQaEvaluation.Sample> samples = ImageQaEvaluation.readSamples(data, limit, task, reads);
            try (NDManager manager = NDManager.newBaseManager(); XLlm xllm = XLlm.load(checkpoint, frames(), manager)) {
                Map<String, ImageQaEvaluation.Score> scores = ImageQaEvaluation.run(ImageQaEvaluation.answering(xllm),
                        samples, showErrors ? System.err : null);
                boolean spoken = scores.values().stream().anyMatch(s -> !Double.isNaN(s.wer()));
                System.out.printf("%-16s %8s %8s %9s%s%n", "task", "correct", "total", "accuracy", spoken ? "       WER" : "");
                scores.forEach((task, s) -> System.out.printf("%-16s %8d %8d %8.1f%%%s%n", task, s.correct(), s.total(),
                        100 * s.accuracy(), !spoken ? "" : Double.isNaN(s.wer()) ? "         -" : String.format(" %8.1f%%", 100 * s.wer())));
            }
            return 0;
        }
    }

    @Command(name = "image", mixinStandardHelpOptions = true,
            description = {"Exact-match accuracy of greedy answers on an image-question manifest (per task and "
                    + "language); scene descriptions are also scored attribute by attribute (colour, shape, count), "
                    + "and a sample with \"keywords\" is also right when the answer contains one.",
                    "Needs an X-LLM checkpoint that reads the samples' media (all of a sample's image, video and audio are "
                            + "given together; a multi-turn sample's last turn is asked after the earlier turns)."})
    static final class Image extends MediaQuestions {
    }

    @Command(name = "video", mixinStandardHelpOptions = true,
            description = {"Exact-match accuracy of greedy answers on a video-question manifest (per task and "
                    + "language).",
                    "Needs an X-LLM checkpoint with a video interface (and whatever other media the samples carry)."})
    static final class Video extends MediaQuestions {
        @Option(names = "--frames", description = "Frames sampled per video (default: the training recipe's).") int frames;


        @Override
        int frames() {
            return frames;
        }
    }

    @Command(name = "spoken", mixinStandardHelpOptions = true,
            description = {"Exact-match accuracy of greedy answers on a speech manifest (per task and language).",
                    "Needs an X-LLM checkpoint with a speech interface. A spoken question (human "
                            + "turn only <audio>, `bootstrap replies`) is asked with no typed text; its rows also give "
                            + "the word error rate of the answers against the LLM's replies to the transcripts."})
    static final class Spoken extends MediaQuestions {
    }

    /** Refuses a negative count, naming the option. */
    static void requireAtLeastZero(String option, int value) {
        if (value < 0) throw new IllegalArgumentException(option + " must be 0 or more, got " + value);
    }

    /** The X-LLM's greedy transcription of one entry: speech alone (S) or with its image as context (S+V). */
    static String transcribe(XLlm joint, AsrEvaluation.Entry entry, boolean withImage) {
        try {
            Map<Modality, Path> media = new java.util.EnumMap<>(Modality.class);
            media.put(Modality.SPEECH, entry.audio());
            if (withImage) {
                if (entry.image() == null) throw new IllegalArgumentException("utterance '" + entry.id() + "' has no image");
                media.put(Modality.IMAGE, entry.image());
            }
            String instruction = withImage ? PromptTemplate.MULTIMODAL_ASR_INSTRUCTION : PromptTemplate.ASR_INSTRUCTION;
            return new Conversation(joint).ask(media, instruction, xllm.llm.Generator.Options.greedy(64), null).text().strip();
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    /**
     * {@code ./xllm eval asr}: CER / WER of recognised text on an ASR manifest ({@link AsrEvaluation}): from a CIF ASR
     * checkpoint, from an X-LLM checkpoint (the LLM transcribes through the C-Former; with images, S and S+V), or
     * stored hypotheses.
     */
    @Command(name = "asr", mixinStandardHelpOptions = true,
            description = {"CER and WER (with substitution / deletion / insertion counts) of hypotheses against an ASR "
                    + "manifest {\"id\",\"audio\",\"text\"}: a per-utterance table, then corpus totals per language.",
                    "Text is normalised first: NFKC (full-width to half-width), lower case, punctuation (CJK included) "
                            + "removed, spaces between CJK characters removed."})
    static final class Asr implements Callable<Integer> {
        @picocli.CommandLine.Spec picocli.CommandLine.Model.CommandSpec spec;
        @Option(names = "--data", required = true, description = "ASR manifest (JSONL).") Path data;
        @Option(names = {"-m", "--model"}, description = "Recognise with this checkpoint: a convert-asr checkpoint (the CIF "
                + "ASR model, greedy) or an X-LLM checkpoint with a speech interface (the frozen LLM through the C-Former, greedy, "
                + "asked \"" + PromptTemplate.ASR_INSTRUCTION + "\"; when the manifest's lines carry an \"image\", also "
                + "with the image, asked \"" + PromptTemplate.MULTIMODAL_ASR_INSTRUCTION + "\": S vs S+V).") String model;
        @Option(names = "--hyp", description = "Score stored hypotheses instead: JSONL of {\"id\", \"text\"}.") Path hypotheses;
        @Option(names = "--limit", defaultValue = "0", description = "Score only the first N utterances (0 = all).") int limit;

        @Override
        public Integer call() throws Exception {
            java.io.PrintWriter out = spec.commandLine().getOut();
            if ((model == null) == (hypotheses == null)) throw new IllegalArgumentException("give exactly one of --model, --hyp");
            requireAtLeastZero("--limit", limit);
            if (hypotheses != null) {
                AsrEvaluation.run(AsrEvaluation.hypothesesFrom(data, hypotheses), data, limit, out);
                return 0;
            }
            List<AsrEvaluation.Entry> entries = AsrEvaluation.readManifest(data, limit); // checked before the model loads
            Path checkpoint = ModelStore.defaultStore().resolve(model);
            if (xllm.speech.CifAsrModel.isCheckpoint(checkpoint)) {
                try (xllm.speech.CifAsrModel asr = xllm.speech.CifAsrModel.load(checkpoint)) {
                    AsrEvaluation.run(entry -> {
                        try {
                            return asr.transcribe(entry.audio());
                        } catch (java.io.IOException e) {
                            throw new java.io.UncheckedIOException(e);
                        }
                    }, data, entries, out);
                }
                return 0;
            }
            try (NDManager manager = NDManager.newBaseManager(); XLlm xllm = XLlm.load(checkpoint, manager)) {
                xllm.interfaceOf(Modality.SPEECH);
                boolean withImages = entries.stream().anyMatch(e -> e.image() != null);
                out.println("S: speech alone, asked \"" + PromptTemplate.ASR_INSTRUCTION + "\"");
                AsrEvaluation.Result speech = AsrEvaluation.run(entry -> transcribe(xllm, entry, false), data, entries, out);
                if (withImages) {
                    xllm.interfaceOf(Modality.IMAGE);
                    out.println();
                    out.println("S+V: speech with its image, asked \"" + PromptTemplate.MULTIMODAL_ASR_INSTRUCTION + "\"");
                    AsrEvaluation.Result both = AsrEvaluation.run(entry -> transcribe(xllm, entry, true), data, entries, out);
                    out.printf(java.util.Locale.ROOT, "%nmultimodal ASR: CER S %.2f%%, S+V %.2f%% (%d utterances)%n",
                            100 * speech.summary().cer(), 100 * both.summary().cer(), entries.size());
                }
            }
            return 0;
        }
    }
}
