package xllm.serve;

import ai.djl.ndarray.NDManager;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import xllm.train.StageAssembly;
import xllm.train.StageConfig;
import xllm.train.StageRunner;
import xllm.train.TrainingTask;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;

/** {@code ./xllm train RECIPE [key=value ...]}: runs one training stage from its YAML recipe. */
@Command(name = "train", mixinStandardHelpOptions = true,
        description = {"Run one training stage from a YAML recipe (recipes/*.yaml, format in docs/recipes.md).",
                "Overrides: dotted keys, e.g. steps=100 schedule.initLr=3e-4 'trainable=[a.*, b.**]'.",
                "Writes <output>/metrics.jsonl, <output>/loss.png and atomic checkpoints under <output>/checkpoints/."},
        footerHeading = "%nRecipe fields:%n")
public final class TrainCommand implements Callable<Integer> {

    @Parameters(index = "0", paramLabel = "RECIPE", description = "Recipe file (YAML or JSON).")
    Path recipe;

    @Parameters(index = "1..*", paramLabel = "KEY=VALUE", description = "Overrides of recipe keys.")
    List<String> overrides = new ArrayList<>();

    @Option(names = "--resume", description = "Continue from the newest complete checkpoint in the run directory.")
    boolean resume;

    @Override
    public Integer call() throws Exception {
        StageConfig config = StageConfig.load(recipe, overrides);
        config.prepareOutput(); // before assembly: an unwritable run dir fails in a second, not after the run
        try (NDManager manager = NDManager.newBaseManager();
             TrainingTask<?, ?> task = StageAssembly.assemble(config, manager)) {
            new StageRunner(config, System.err).run(task, resume);
        }
        return 0;
    }

    /** The footer lists every recipe field (picocli substitutes it into "%s"). */
    static String footer() {
        return StageConfig.describeFields();
    }
}
