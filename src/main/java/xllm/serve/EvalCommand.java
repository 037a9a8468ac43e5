package xllm.serve;

import ai.djl.ndarray.NDManager;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import xllm.eval.ImageQaEvaluation;
import xllm.hub.ModelStore;
import xllm.model.ImageChat;

import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.Callable;

/** {@code ./xllm eval ...}: evaluations that print a per-task table. */
@Command(name = "eval", mixinStandardHelpOptions = true, description = "Evaluate a trained model.",
        subcommands = {EvalCommand.Image.class})
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
}
