package xllm.model;

import ai.djl.ndarray.NDManager;
import xllm.data.ConversationSample;
import xllm.hub.ModelStore;
import xllm.llm.LanguageModel;
import xllm.train.StageConfig;
import xllm.train.TrainingTask;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;

/**
 * Builds the {@link TrainingTask} a recipe describes: loads the frozen parts it names and creates the interfaces
 * with their trainable parameters. Recipes whose components are not built yet fail here with a message saying so.
 */
public final class StageAssembly {

    private StageAssembly() {}

    /**
     * The image interface a recipe describes: {@code visionEncoder: random} with size tiny is the 8×8 patch test
     * interface; a model-store name or path of EfficientNet-Lite0 weights gives encoder → Q-Former → adapter.
     */
    public static ImageInterface imageInterface(StageConfig config, int llmWidth, NDManager manager) throws IOException {
        StageConfig.Model model = config.model();
        if ("random".equals(model.visionEncoder())) {
            if (model.size() != StageConfig.ModelSize.TINY) {
                throw new IllegalArgumentException(config.recipe() + ": model.visionEncoder: 'random' is the tiny test "
                        + "encoder; use it with model.size: tiny");
            }
            return new PatchImageInterface(llmWidth, config.seed(), manager);
        }
        boolean video = model.interfaces().equals(List.of(StageConfig.Interface.VIDEO));
        if (video && model.videoFrames() < 1) {
            throw new IllegalArgumentException(config.recipe() + ": model.videoFrames must be >= 1, got " + model.videoFrames());
        }
        return QFormerImageInterface.create(ModelStore.defaultStore().resolve(model.visionEncoder()),
                StageConfig.idOf(model.size()), llmWidth, config.seed(), video ? model.videoFrames() : 0, manager);
    }

    public static TrainingTask<?, ?> assemble(StageConfig config, NDManager manager) throws IOException {
        StageConfig.Model model = config.model();
        if (config.stage() == StageConfig.Stage.CONVERT_ASR) return xllm.speech.AsrTask.create(config, manager);
        if (config.stage() == StageConfig.Stage.ALIGN_SPEECH
                && model.interfaces().equals(List.of(StageConfig.Interface.SPEECH))) {
            return speechTask(config, manager);
        }
        boolean imageStage = config.stage() == StageConfig.Stage.ALIGN_IMAGE
                && model.interfaces().equals(List.of(StageConfig.Interface.IMAGE));
        boolean videoStage = config.stage() == StageConfig.Stage.ALIGN_VIDEO
                && model.interfaces().equals(List.of(StageConfig.Interface.VIDEO));
        if (!imageStage && !videoStage) {
            throw new IllegalArgumentException(config.recipe() + ": stage " + config.stage().id() + " with interfaces "
                    + model.interfaces() + " needs components xllm does not have yet (this build trains convert-asr, "
                    + "align-image, align-video and align-speech)");
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
                videoStage ? "video-encoder" : "image-encoder", image.fingerprint());
        ImageInstructionTask task = new ImageInstructionTask(llm, image, train, eval, cache);
        int computed = task.fillCache(manager);
        System.err.printf("feature cache %s: %d computed, %d cached%n", cache.directory(), computed, cache.size() - computed);
        return task;
    }

    /** The speech interface a recipe describes: frozen encoder + CIF of {@code model.speechEncoder}, C-Former, S-Adapter. */
    public static SpeechInterface speechInterface(StageConfig config, int llmWidth, NDManager manager) throws IOException {
        StageConfig.Model model = config.model();
        if (model.speechEncoder() == null) {
            throw new IllegalArgumentException(config.recipe() + ": model.speechEncoder (a convert-asr checkpoint dir) is "
                    + "required with the speech interface");
        }
        Path bert = model.bertInit() == null ? null : ModelStore.defaultStore().resolve(model.bertInit());
        return SpeechInterface.create(ModelStore.defaultStore().resolve(model.speechEncoder()),
                StageConfig.idOf(model.size()), bert, llmWidth, config.seed(), manager);
    }

    private static TrainingTask<?, ?> speechTask(StageConfig config, NDManager manager) throws IOException {
        LanguageModel llm = LanguageModel.open(ModelStore.defaultStore().resolve(config.model().llm()), manager);
        SpeechInterface speech;
        try {
            speech = speechInterface(config, llm.model().config().hiddenSize(), manager);
        } catch (IOException | RuntimeException e) {
            llm.close();
            throw e;
        }
        List<SpeechInstructionTask.Sample> train, eval;
        xllm.train.FeatureCache cache = null;
        try {
            train = SpeechInstructionTask.readManifest(config.data().train());
            eval = config.data().eval() == null ? List.of() : SpeechInstructionTask.readManifest(config.data().eval());
            if (config.featureCache()) {
                cache = xllm.train.FeatureCache.open(config.output().resolve("feature-cache"), "speech-encoder",
                        speech.fingerprint());
            }
        } catch (IOException | RuntimeException e) {
            speech.close();
            llm.close();
            throw e;
        }
        SpeechInstructionTask task = new SpeechInstructionTask(llm, speech, train, eval, cache);
        if (cache != null) {
            int computed = task.fillCache(manager);
            System.err.printf("feature cache %s: %d computed, %d cached%n", cache.directory(), computed, cache.size() - computed);
        }
        return task;
    }
}
