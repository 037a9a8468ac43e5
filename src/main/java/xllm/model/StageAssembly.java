package xllm.model;

import ai.djl.ndarray.NDManager;
import xllm.data.ConversationSample;
import xllm.hub.ModelStore;
import xllm.llm.LanguageModel;
import xllm.train.StageConfig;
import xllm.train.TrainingTask;

import java.io.IOException;
import java.util.List;

/**
 * Builds the {@link TrainingTask} a recipe describes: loads the frozen parts it names and creates the interfaces
 * with their trainable parameters. Recipes whose components are not built yet fail here with a message saying so.
 */
public final class StageAssembly {

    private StageAssembly() {}

    public static TrainingTask<?, ?> assemble(StageConfig config, NDManager manager) throws IOException {
        StageConfig.Model model = config.model();
        boolean tinyImage = config.stage() == StageConfig.Stage.ALIGN_IMAGE
                && model.interfaces().equals(List.of(StageConfig.Interface.IMAGE))
                && model.size() == StageConfig.ModelSize.TINY && "random".equals(model.visionEncoder());
        if (!tinyImage) {
            throw new IllegalArgumentException(config.recipe() + ": stage " + config.stage().id() + " with interfaces "
                    + model.interfaces() + ", size " + model.size() + " and vision encoder '" + model.visionEncoder()
                    + "' needs components xllm does not have yet (this build trains the tiny patch image interface: "
                    + "align-image, size tiny, visionEncoder random)");
        }
        LanguageModel llm = LanguageModel.open(ModelStore.defaultStore().resolve(model.llm()), manager);
        PatchImageInterface image = new PatchImageInterface(llm.model().config().hiddenSize(), config.seed(), manager);
        List<ConversationSample> train = ConversationSample.readManifest(config.data().train());
        List<ConversationSample> eval = config.data().eval() == null ? List.of()
                : ConversationSample.readManifest(config.data().eval());
        if (!config.featureCache()) return new ImageInstructionTask(llm, image, train, eval);
        // Frozen encoder outputs, keyed by the encoder's fingerprint: a changed encoder reads (and fills) a new cache.
        xllm.train.FeatureCache cache = xllm.train.FeatureCache.open(config.output().resolve("feature-cache"),
                "patch-image", image.fingerprint());
        ImageInstructionTask task = new ImageInstructionTask(llm, image, train, eval, cache);
        int computed = task.fillCache(manager);
        System.err.printf("feature cache %s: %d computed, %d cached%n", cache.directory(), computed, cache.size() - computed);
        return task;
    }
}
