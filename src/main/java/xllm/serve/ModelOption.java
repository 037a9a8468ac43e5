package xllm.serve;

import ai.djl.ndarray.NDManager;
import picocli.CommandLine.Option;
import xllm.hub.ModelStore;
import xllm.llm.LanguageModel;

import java.io.IOException;
import java.nio.file.Path;

/** The {@code --model} flag: a model name from the cache ({@code ./xllm models list}) or an explicit path. */
final class ModelOption {

    static final String DEFAULT_MODEL = "smollm2-135m-instruct";

    @Option(names = {"-m", "--model"}, defaultValue = DEFAULT_MODEL,
            description = "Model name in the cache (see `./xllm models list`), or a path to a GGUF file, a Hugging Face "
                    + "directory or an X-LLM checkpoint directory. A bare name is always looked up in the cache; write a path "
                    + "with a '/' (./name, runs/x/final) (default ${DEFAULT-VALUE}).")
    String model;

    LanguageModel open(NDManager manager) throws IOException {
        Path path = ModelStore.defaultStore().resolve(model);
        long start = System.nanoTime();
        LanguageModel lm = LanguageModel.open(path, manager);
        System.err.printf("loaded %s (%,d parameters) in %.1f s%n", path.getFileName(), lm.model().parameterCount(),
                (System.nanoTime() - start) / 1e9);
        return lm;
    }
}
