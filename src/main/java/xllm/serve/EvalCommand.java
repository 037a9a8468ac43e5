package xllm.serve;

import ai.djl.ndarray.NDManager;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import xllm.eval.AsrEvaluation;
import xllm.eval.ImageQaEvaluation;
import xllm.hub.ModelStore;
import xllm.model.ImageChat;

import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.Callable;

/** {@code ./xllm eval ...}: evaluations that print a per-task table. */
@Command(name = "eval", mixinStandardHelpOptions = true, description = "Evaluate a trained model.",
        subcommands = {EvalCommand.Image.class, EvalCommand.Asr.class})
public final class EvalCommand implements Runnable {

    @Override
    public void run() {
        picocli.CommandLine.usage(this, System.out);
    }

    @Command(name = "image", mixinStandardHelpOptions = true,
            description = "Exact-match accuracy of greedy answers on an image-question manifest (per task and language).")
    static final class Image implements Callable<Integer> {
        @Option(names = {"-m", "--model"}, required = true, description = "Training checkpoint directory.") String model;
        @Option(names = "--data", required = true, description = "JSONL manifest (LLaVA style).") Path data;
        @Option(names = "--limit", defaultValue = "0", description = "Evaluate only the first N samples (0 = all).") int limit;
        @Option(names = "--show-errors", description = "Print each wrong answer on stderr.") boolean showErrors;

        @Override
        public Integer call() throws Exception {
            Path checkpoint = ModelStore.defaultStore().resolve(model);
            try (NDManager manager = NDManager.newBaseManager(); ImageChat chat = ImageChat.open(checkpoint, manager)) {
                Map<String, ImageQaEvaluation.Score> scores = ImageQaEvaluation.run(chat, data, limit,
                        showErrors ? System.err : null);
                System.out.printf("%-16s %8s %8s %9s%n", "task", "correct", "total", "accuracy");
                scores.forEach((task, s) -> System.out.printf("%-16s %8d %8d %8.1f%%%n", task, s.correct(), s.total(),
                        100 * s.accuracy()));
            }
            return 0;
        }
    }

    /**
     * {@code ./xllm eval asr}: CER / WER of recognised text on an ASR manifest ({@link AsrEvaluation}). Today it
     * scores stored hypotheses ({@code --hyp}); a {@code --model} recognizer plugs into the same
     * {@link AsrEvaluation#run} once the ASR model exists.
     */
    @Command(name = "asr", mixinStandardHelpOptions = true,
            description = {"CER and WER (with substitution / deletion / insertion counts) of hypotheses against an ASR "
                    + "manifest {\"id\",\"audio\",\"text\"}: a per-utterance table, then corpus totals per language.",
                    "Text is normalised first: NFKC (full-width to half-width), lower case, punctuation (CJK included) "
                            + "removed, spaces between CJK characters removed."})
    static final class Asr implements Callable<Integer> {
        @picocli.CommandLine.Spec picocli.CommandLine.Model.CommandSpec spec;
        @Option(names = "--data", required = true, description = "ASR manifest (JSONL).") Path data;
        @Option(names = "--hyp", required = true, description = "Hypotheses: JSONL of {\"id\", \"text\"}.") Path hypotheses;
        @Option(names = "--limit", defaultValue = "0", description = "Score only the first N utterances (0 = all).") int limit;

        @Override
        public Integer call() throws Exception {
            AsrEvaluation.run(AsrEvaluation.hypothesesFrom(data, hypotheses), data, limit, spec.commandLine().getOut());
            return 0;
        }
    }
}
