package xllm.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import xllm.hub.ModelStore;
import xllm.llm.Generator;
import xllm.llm.LanguageModel;
import xllm.train.Checkpoint;
import xllm.train.StageConfig;
import xllm.train.StageRunner;
import xllm.train.TrainableParameter;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Answers questions about an image with a trained image interface: opens a training checkpoint (its recipe names
 * the frozen LLM and encoder; its tensors are the interface's trained parameters), then generates from the paper's
 * prompt {@code <Image>{image}</Image>Question: {question}\n Answer:}, exactly as the interface was trained.
 */
public final class ImageChat implements AutoCloseable {

    private final LanguageModel llm;
    private final ImageInterface image;
    private final ImagePrompt template;

    private ImageChat(LanguageModel llm, ImageInterface image) {
        this.llm = llm;
        this.image = image;
        this.template = new ImagePrompt(llm.tokenizer(), image.tag());
    }

    public static boolean isCheckpoint(Path path) {
        return Files.isDirectory(path) && Files.exists(path.resolve(Checkpoint.MODEL)) && Files.exists(path.resolve(Checkpoint.CONFIG));
    }

    public static ImageChat open(Path checkpointDir, NDManager manager) throws IOException {
        return open(checkpointDir, 0, manager);
    }

    /**
     * As {@link #open(Path, NDManager)}; for a video checkpoint, {@code videoFrames} > 0 samples that many frames per
     * video instead of the training recipe's count (each frame is encoded alone, so T may differ from training).
     */
    public static ImageChat open(Path checkpointDir, int videoFrames, NDManager manager) throws IOException {
        Checkpoint checkpoint = Checkpoint.load(checkpointDir);
        if (checkpoint.config() == null || !checkpoint.config().path("recipe").isTextual()) {
            throw new IOException(checkpointDir.resolve(Checkpoint.CONFIG) + ": no 'recipe' (not an xllm training checkpoint)");
        }
        Path recipe = Files.createTempFile("xllm-recipe-", ".yaml");
        StageConfig config;
        try {
            Files.writeString(recipe, checkpoint.config().get("recipe").asText());
            config = StageConfig.load(recipe, videoFrames > 0 ? List.of("model.videoFrames=" + videoFrames) : List.of(), false);
        } finally {
            Files.deleteIfExists(recipe);
        }
        LanguageModel llm = LanguageModel.open(ModelStore.defaultStore().resolve(config.model().llm()), manager);
        try {
            ImageInterface image = StageAssembly.imageInterface(config, llm.model().config().hiddenSize(), manager);
            Map<String, TrainableParameter> byName = new HashMap<>();
            for (TrainableParameter p : image.parameters()) byName.put(p.name(), p);
            StageRunner.assign(byName, checkpoint.model(), Map.of(), checkpointDir.resolve(Checkpoint.MODEL), Set.of());
            return new ImageChat(llm, image);
        } catch (IOException | RuntimeException e) {
            llm.close();
            throw e;
        }
    }

    /** Fails with a message naming the checkpoint when it was trained for the other modality. */
    public void requireModality(String wanted, Path checkpoint) {
        if (!image.tag().equals(wanted)) {
            throw new IllegalArgumentException(checkpoint + " has a " + image.tag().toLowerCase(java.util.Locale.ROOT)
                    + " interface; it cannot answer about a " + wanted.toLowerCase(java.util.Locale.ROOT) + " (use --"
                    + image.tag().toLowerCase(java.util.Locale.ROOT) + ")");
        }
    }

    /** "Image" or "Video": what {@link #answer} takes. */
    public String modality() {
        return image.tag();
    }

    /** Generates the answer to {@code question} about {@code imageFile} (a video file for a video checkpoint). */
    public Generator.Completion answer(Path imageFile, String question, Generator.Options options,
                                       Generator.StreamListener listener) throws IOException {
        float[] pixels = image.preprocess(imageFile);
        try (NDManager scope = llm.model().manager().newSubManager()) {
            NDArray features = image.encode(scope.create(pixels, ImageInstructionTask.batchShape(1, image.inputShape())));
            NDArray vectors = image.adapt(features).get(0);                               // (Q, D)
            long[] before = template.beforeImage();
            long[] after = template.afterImage(question);
            PromptBatch prompt = PromptBatch.build(llm.model(), List.of(List.of(Segment.Text.prompt(before),
                    new Segment.Embeddings(vectors), Segment.Text.prompt(after))), PromptBatch.Padding.LEFT, scope);
            return llm.generator().generateFromEmbeddings(prompt.embeddings(), prompt.valid(),
                    List.of(ImagePrompt.concat(before, after)),
                    options, listener).get(0);
        }
    }

    @Override
    public void close() {
        llm.close();
    }
}
