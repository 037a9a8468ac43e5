package xllm.train;

import ai.djl.ndarray.NDManager;
import xllm.data.ConversationSample;
import xllm.data.FeatureCache;
import xllm.hub.ModelStore;
import xllm.llm.LanguageModel;
import xllm.model.ImageInterface;
import xllm.model.Modality;
import xllm.model.ModalityInterface;
import xllm.model.SpeechInterface;
import xllm.model.VideoInterface;
import xllm.model.XLlm;
import xllm.x2l.BertCheckpoint;
import xllm.x2l.QFormer;
import xllm.x2l.QFormerConfig;
import xllm.x2l.QFormerPretraining;
import xllm.x2l.QFormerText;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;

/**
 * Builds the {@link TrainingTask} a recipe describes: loads the frozen parts it names and creates the interfaces with
 * their trainable parameters. Stages 2 and 3 assemble one {@link XLlm} with the recipe's interfaces.
 */
public final class StageAssembly {

    private StageAssembly() {}

    public static TrainingTask<?, ?> assemble(StageConfig config, NDManager manager) throws IOException {
        if (config.stage() == StageConfig.Stage.CONVERT_ASR) return AsrTask.create(config, manager);
        if (config.stage() == StageConfig.Stage.CONVERT_QFORMER) return qformerPretraining(config, manager);
        XLlm model = model(config, manager);
        List<InstructionTask.Sample> train, eval;
        Map<Modality, FeatureCache> caches = new EnumMap<>(Modality.class);
        try {
            train = InstructionTask.readManifest(config.data().train());
            eval = config.data().eval() == null ? List.of() : InstructionTask.readManifest(config.data().eval());
            if (config.featureCache()) {
                // Frozen encoder outputs, keyed by each encoder's fingerprint: a changed encoder reads (and fills) a new cache.
                for (Modality m : model.modalities()) {
                    caches.put(m, FeatureCache.open(config.output().resolve("feature-cache"), InstructionTask.cacheName(m),
                            model.interfaceOf(m).fingerprint()));
                }
            }
        } catch (IOException | RuntimeException e) {
            for (FeatureCache c : caches.values()) c.close();
            model.close();
            throw e;
        }
        InstructionTask task = new InstructionTask(model, train, eval, caches);
        if (!caches.isEmpty()) {
            int computed = task.fillCaches(manager);
            System.err.printf("feature caches under %s: %d computed%n", config.output().resolve("feature-cache"), computed);
        }
        return task;
    }

    /**
     * The X-LLM a recipe describes: its frozen LLM and, for each of {@code model.interfaces}, the interface at
     * {@code model.size}, its Q-Former / C-Former started from {@code model.bertInit} when given (StageRunner then
     * applies initFrom, or a resumed checkpoint, over it).
     */
    public static XLlm model(StageConfig config, NDManager manager) throws IOException {
        StageConfig.Model spec = config.model();
        if (spec.llm() == null) throw new IllegalArgumentException(config.recipe() + ": model.llm is required for stage "
                + config.stage().id());
        String size = StageConfig.idOf(spec.size());
        boolean random = "random".equals(spec.visionEncoder());
        if (random && spec.size() != StageConfig.ModelSize.TINY) {
            throw new IllegalArgumentException(config.recipe() + ": model.visionEncoder: 'random' is the tiny test "
                    + "encoder; use it with model.size: tiny");
        }
        if (random && spec.bertInit() != null && !spec.interfaces().contains(StageConfig.Interface.SPEECH)) {
            throw new IllegalArgumentException(config.recipe() + ": model.bertInit initialises a Q-Former; the tiny "
                    + "'random' image interface has none");
        }
        Path bert = spec.bertInit() == null ? null : ModelStore.defaultStore().resolve(spec.bertInit());
        LanguageModel llm = LanguageModel.open(ModelStore.defaultStore().resolve(spec.llm()), manager);
        List<ModalityInterface> interfaces = new ArrayList<>();
        try {
            int width = llm.model().config().hiddenSize();
            QFormerConfig qformer = random ? null : ImageInterface.qformerConfig(size); // the tiny patch encoder has none
            for (StageConfig.Interface kind : spec.interfaces()) {
                interfaces.add(switch (kind) {
                    case IMAGE -> ImageInterface.create(spec.visionEncoder(), qformer, random ? null : bert, width,
                            config.seed(), manager);
                    case VIDEO -> {
                        if (spec.videoFrames() < 1 || spec.videoFrames() > VideoInterface.MAX_FRAMES) {
                            throw new IllegalArgumentException(config.recipe() + ": model.videoFrames must be in 1.."
                                    + VideoInterface.MAX_FRAMES + ", got " + spec.videoFrames());
                        }
                        yield VideoInterface.create(spec.visionEncoder(), spec.videoFrames(), qformer, random ? null : bert,
                                width, config.seed(), manager);
                    }
                    case SPEECH -> {
                        if (spec.speechEncoder() == null) {
                            throw new IllegalArgumentException(config.recipe() + ": model.speechEncoder (a convert-asr "
                                    + "checkpoint dir) is required with the speech interface");
                        }
                        yield SpeechInterface.create(spec.speechEncoder(), SpeechInterface.cformerConfig(size), bert, width,
                                config.seed(), manager);
                    }
                });
            }
            return new XLlm(llm, interfaces);
        } catch (IOException | RuntimeException e) {
            interfaces.forEach(ModalityInterface::close);
            llm.close();
            throw e;
        }
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
        ImageInterface images = ImageInterface.create(model.visionEncoder(), null, null, 1, config.seed(), manager);
        long featureWidth = images.config().encoder().featureShape().get(1);
        QFormerConfig qformerConfig = ImageInterface.qformerConfig(StageConfig.idOf(model.size()))
                .withEncoderHiddenSize(Math.toIntExact(featureWidth));
        QFormerPretraining pretraining;
        try (BertCheckpoint checkpoint = BertCheckpoint.open(bert, qformerConfig)) {
            pretraining = QFormerPretraining.initialise(
                    QFormer.initialiseFromBert(checkpoint, qformerConfig, config.seed(), manager),
                    QFormerText.initialiseFromBert(checkpoint, qformerConfig, config.seed() + 1, manager),
                    QFormerPretraining.DEFAULT_EMBED_DIM, config.seed() + 2, manager);
        }
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
