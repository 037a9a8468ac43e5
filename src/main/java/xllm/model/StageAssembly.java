package xllm.model;

import ai.djl.ndarray.NDManager;
import xllm.data.ConversationSample;
import xllm.hub.ModelStore;
import xllm.llm.LanguageModel;
import xllm.train.StageConfig;
import xllm.train.TrainingTask;

import xllm.data.FeatureCache;
import xllm.vision.EfficientNetLite0;
import xllm.x2l.BertCheckpoint;
import xllm.x2l.QFormer;
import xllm.x2l.QFormerConfig;
import xllm.x2l.QFormerPretraining;
import xllm.x2l.QFormerText;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * Builds the {@link TrainingTask} a recipe describes: loads the frozen parts it names and creates the interfaces
 * with their trainable parameters. Recipes whose components are not built yet fail here with a message saying so.
 */
public final class StageAssembly {

    /**
     * Most frames a video may be sampled into: T × 32 query tokens go into the prompt, so 64 frames are already
     * 2,048 tokens (the paper samples 5 in training, up to 10 at inference); more only exhausts memory.
     */
    public static final int MAX_VIDEO_FRAMES = 64;

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
        boolean video = model.interfaces().equals(List.of(StageConfig.Interface.VIDEO));
        if (video && (model.videoFrames() < 1 || model.videoFrames() > MAX_VIDEO_FRAMES)) {
            throw new IllegalArgumentException(config.recipe() + ": model.videoFrames must be in 1.." + MAX_VIDEO_FRAMES
                    + ", got " + model.videoFrames());
        }
        // bertInit first; StageRunner then applies initFrom (or a resumed checkpoint) over it
        Path bert = model.bertInit() == null ? null : ModelStore.defaultStore().resolve(model.bertInit());
        return QFormerImageInterface.create(ModelStore.defaultStore().resolve(model.visionEncoder()),
                StageConfig.idOf(model.size()), bert, llmWidth, config.seed(), video ? model.videoFrames() : 0, manager);
    }

    public static TrainingTask<?, ?> assemble(StageConfig config, NDManager manager) throws IOException {
        StageConfig.Model model = config.model();
        if (config.stage() == StageConfig.Stage.CONVERT_ASR) return xllm.model.AsrTask.create(config, manager);
        if (config.stage() == StageConfig.Stage.ALIGN_SPEECH
                && model.interfaces().equals(List.of(StageConfig.Interface.SPEECH))) {
            return speechTask(config, manager);
        }
        if (config.stage() == StageConfig.Stage.CONVERT_QFORMER) return qformerPretraining(config, manager);
        boolean imageStage = config.stage() == StageConfig.Stage.ALIGN_IMAGE
                && model.interfaces().equals(List.of(StageConfig.Interface.IMAGE));
        boolean videoStage = config.stage() == StageConfig.Stage.ALIGN_VIDEO
                && model.interfaces().equals(List.of(StageConfig.Interface.VIDEO));
        if (!imageStage && !videoStage) {
            throw new IllegalArgumentException(config.recipe() + ": stage " + config.stage().id() + " with interfaces "
                    + model.interfaces() + " needs components xllm does not have yet (this build trains convert-asr, "
                    + "convert-qformer, align-image, align-video and align-speech)");
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
        xllm.data.FeatureCache cache = xllm.data.FeatureCache.open(config.output().resolve("feature-cache"),
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
        xllm.data.FeatureCache cache = null;
        try {
            train = SpeechInstructionTask.readManifest(config.data().train());
            eval = config.data().eval() == null ? List.of() : SpeechInstructionTask.readManifest(config.data().eval());
            if (config.featureCache()) {
                cache = xllm.data.FeatureCache.open(config.output().resolve("feature-cache"), "speech-encoder",
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

    /**
     * {@code convert-qformer}: the frozen image encoder, a Q-Former and its stage-1 text side and heads initialised
     * from {@code model.bertInit} (required: it also supplies the tokenizer and the vocabulary), BLIP-2 stage-1
     * objectives on the manifests' image-caption samples. {@code visionEncoder: random} (size tiny) gives the patch
     * test encoder; the Q-Former cross-attends to whatever width the encoder produces.
     */
    static QFormerPretrainTask qformerPretraining(StageConfig config, NDManager manager) throws IOException {
        StageConfig.Model model = config.model();
        if (model.bertInit() == null) {
            throw new IllegalArgumentException(config.recipe() + ": stage convert-qformer needs model.bertInit (a BERT "
                    + "checkpoint with tokenizer.json: the text side's vocabulary and initialisation)");
        }
        Path bert = ModelStore.defaultStore().resolve(model.bertInit());
        Path bertDir = Files.isDirectory(bert) ? bert : bert.toAbsolutePath().getParent();
        boolean random = "random".equals(model.visionEncoder());
        if (random && model.size() != StageConfig.ModelSize.TINY) {
            throw new IllegalArgumentException(config.recipe() + ": model.visionEncoder: 'random' is the tiny test "
                    + "encoder; use it with model.size: tiny");
        }
        ImageInterface encoder = random ? new PatchImageInterface(1, config.seed(), manager) : null;
        long featureWidth = random ? encoder.featureShape()[1] : EfficientNetLite0.FEATURE_CHANNELS;
        QFormerConfig qformerConfig = QFormerImageInterface.qformerConfig(StageConfig.idOf(model.size()))
                .withEncoderHiddenSize(Math.toIntExact(featureWidth));
        QFormerPretraining pretraining;
        try (BertCheckpoint checkpoint = BertCheckpoint.open(bert, qformerConfig)) {
            pretraining = QFormerPretraining.initialise(
                    QFormer.initialiseFromBert(checkpoint, qformerConfig, config.seed(), manager),
                    QFormerText.initialiseFromBert(checkpoint, qformerConfig, config.seed() + 1, manager),
                    QFormerPretraining.DEFAULT_EMBED_DIM, config.seed() + 2, manager);
        }
        ImageInterface images = random ? encoder : QFormerImageInterface.withoutAdapter(
                ModelStore.defaultStore().resolve(model.visionEncoder()), pretraining.qformer(), manager);
        List<ConversationSample> train = QFormerPretrainTask.readCaptions(config.data().train());
        List<ConversationSample> eval = config.data().eval() == null ? List.of()
                : QFormerPretrainTask.readCaptions(config.data().eval());
        FeatureCache cache = config.featureCache()
                ? FeatureCache.open(config.output().resolve("feature-cache"), "image-encoder", images.fingerprint()) : null;
        QFormerPretrainTask task = new QFormerPretrainTask(images, pretraining, bertDir, train, eval, cache);
        if (cache != null) {
            int computed = task.fillCache(manager);
            System.err.printf("feature cache %s: %d computed, %d cached%n", cache.directory(), computed, cache.size() - computed);
        }
        return task;
    }
}
