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

    /**
     * The image interface a recipe describes: {@code visionEncoder: random} with size tiny is the 8×8 patch test
     * interface; a model-store name or path of EfficientNet-Lite0 weights gives encoder → Q-Former → adapter, the
     * Q-Former initialised from {@code model.bertInit} when the recipe names one.
     */
    public static ImageInterface imageInterface(StageConfig config, int llmWidth, NDManager manager) throws IOException {
        StageConfig.Model model = config.model();
        if ("random".equals(model.visionEncoder())) {
            if (model.size() != StageConfig.ModelSize.TINY) {
                throw new IllegalArgumentException(config.recipe() + ": model.visionEncoder: 'random' is the tiny test "
                        + "encoder; use it with model.size: tiny");
            }
            if (model.bertInit() != null) {
                throw new IllegalArgumentException(config.recipe() + ": model.bertInit initialises a Q-Former; the tiny "
                        + "'random' image interface has none");
            }
            return new PatchImageInterface(llmWidth, config.seed(), manager);
        }
        // bertInit first; StageRunner then applies initFrom (or a resumed checkpoint) over it
        java.nio.file.Path bert = model.bertInit() == null ? null : ModelStore.defaultStore().resolve(model.bertInit());
        return QFormerImageInterface.create(ModelStore.defaultStore().resolve(model.visionEncoder()),
                StageConfig.idOf(model.size()), bert, llmWidth, config.seed(), manager);
    }

    public static TrainingTask<?, ?> assemble(StageConfig config, NDManager manager) throws IOException {
        StageConfig.Model model = config.model();
        boolean imageStage = config.stage() == StageConfig.Stage.ALIGN_IMAGE
                && model.interfaces().equals(List.of(StageConfig.Interface.IMAGE));
        if (!imageStage) {
            throw new IllegalArgumentException(config.recipe() + ": stage " + config.stage().id() + " with interfaces "
                    + model.interfaces() + " needs components xllm does not have yet (this build trains align-image)");
        }
        LanguageModel llm = LanguageModel.open(ModelStore.defaultStore().resolve(model.llm()), manager);
        ImageInterface image;
        try {
            image = imageInterface(config, llm.model().config().hiddenSize(), manager);
        } catch (IOException | RuntimeException e) {
            llm.close();
            throw e;
        }
        List<ConversationSample> train = ConversationSample.readManifest(config.data().train());
        List<ConversationSample> eval = config.data().eval() == null ? List.of()
                : ConversationSample.readManifest(config.data().eval());
        if (!config.featureCache()) return new ImageInstructionTask(llm, image, train, eval);
        // Frozen encoder outputs, keyed by the encoder's fingerprint: a changed encoder reads (and fills) a new cache.
        xllm.train.FeatureCache cache = xllm.train.FeatureCache.open(config.output().resolve("feature-cache"),
                "image-encoder", image.fingerprint());
        ImageInstructionTask task = new ImageInstructionTask(llm, image, train, eval, cache);
        int computed = task.fillCache(manager);
        System.err.printf("feature cache %s: %d computed, %d cached%n", cache.directory(), computed, cache.size() - computed);
        return task;
    }
}
