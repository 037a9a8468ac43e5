package xllm.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import xllm.hub.ModelStore;
import xllm.llm.Generator;
import xllm.llm.LanguageModel;
import xllm.train.Checkpoint;
import xllm.train.StageConfig;
import xllm.train.StageRunner;
import xllm.tensor.TrainableParameter;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Answers questions about an image, a video or an utterance with a trained X2L interface: opens a training checkpoint
 * (its recipe names the frozen LLM and encoders; its tensors are the interface's trained parameters), then generates
 * from the paper's prompt {@code <Image>{image}</Image>Question: {question}\n Answer:} (or {@code <Video>},
 * {@code <Speech>}), exactly as the interface was trained.
 */
public final class MediaChat implements AutoCloseable {

    private final LanguageModel llm;
    private final ImageInterface image;    // image or video interface, or null
    private final SpeechInterface speech;  // speech interface, or null
    private final ImagePrompt template;
    private final SpokenTurn spokenTurn;

    private MediaChat(LanguageModel llm, ImageInterface image, SpeechInterface speech) {
        this.llm = llm;
        this.image = image;
        this.speech = speech;
        this.template = new ImagePrompt(llm.tokenizer(), modality());
        this.spokenTurn = speech == null ? null : new SpokenTurn(llm);
    }

    /** A training checkpoint dir; a Hugging Face model dir also holds model.safetensors + config.json, but no provenance. */
    public static boolean isCheckpoint(Path path) {
        return Files.isDirectory(path) && Files.exists(path.resolve(Checkpoint.MODEL)) && Files.exists(path.resolve(Checkpoint.CONFIG))
                && Files.exists(path.resolve(Checkpoint.PROVENANCE));
    }

    /** Refuses a frame count for {@link #open(Path, int, NDManager)} outside 0..{@link StageAssembly#MAX_VIDEO_FRAMES}. */
    public static void requireVideoFrames(int videoFrames) {
        if (videoFrames < 0 || videoFrames > StageAssembly.MAX_VIDEO_FRAMES) {
            throw new IllegalArgumentException("frames per video must be in 1.." + StageAssembly.MAX_VIDEO_FRAMES
                    + " (0: the training recipe's), got " + videoFrames + " (--frames)");
        }
    }

    public static MediaChat open(Path checkpointDir, NDManager manager) throws IOException {
        return open(checkpointDir, 0, manager);
    }

    /**
     * As {@link #open(Path, NDManager)}; for a video checkpoint, {@code videoFrames} > 0 samples that many frames per
     * video instead of the training recipe's count (each frame is encoded alone, so T may differ from training).
     */
    public static MediaChat open(Path checkpointDir, int videoFrames, NDManager manager) throws IOException {
        requireVideoFrames(videoFrames);
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
            int width = llm.model().config().hiddenSize();
            boolean speaks = config.model().interfaces().equals(List.of(StageConfig.Interface.SPEECH));
            ImageInterface image = speaks ? null : StageAssembly.imageInterface(config, width, manager);
            if (image != null) requireSameFeatures(checkpoint, image, checkpointDir);
            SpeechInterface speech = speaks ? StageAssembly.speechInterface(config, width, manager) : null;
            Map<String, TrainableParameter> byName = new HashMap<>();
            for (TrainableParameter p : speaks ? speech.parameters() : image.parameters()) byName.put(p.name(), p);
            StageRunner.assign(byName, checkpoint.model(), Map.of(), checkpointDir.resolve(Checkpoint.MODEL), Set.of());
            return new MediaChat(llm, image, speech);
        } catch (IOException | RuntimeException e) {
            llm.close();
            throw e;
        }
    }

    /**
     * A checkpoint records the interface it was trained with ({@code config.json} model.imageInterface). One trained
     * before the CNN tokens got 2-D positions (docs/interfaces.md) would read features it never saw and answer
     * wrongly without any sign; it is refused instead.
     */
    private static void requireSameFeatures(Checkpoint checkpoint, ImageInterface image, Path checkpointDir)
            throws IOException {
        String recorded = checkpoint.config().path("model").path("imageInterface").asText("");
        boolean positionsNow = image.describe().contains("positions");
        if (!recorded.isEmpty() && positionsNow && !recorded.contains("positions")) {
            throw new IOException(checkpointDir.resolve(Checkpoint.CONFIG) + ": trained on image features without the "
                    + "2-D positions the interface now adds (a checkpoint from before 2026-11-27); retrain it, or "
                    + "continue it with initFrom (docs/interfaces.md, Positions)");
        }
    }

    /** Fails with a message naming the checkpoint when it was trained for the other modality. */
    public void requireModality(String wanted, Path checkpoint) {
        if (!modality().equals(wanted)) {
            String have = flag(modality());
            throw new IllegalArgumentException(checkpoint + " has a " + have + " interface; it cannot answer about "
                    + (wanted.equals("Speech") ? "audio" : "a " + flag(wanted)) + " (use --" + have + ")");
        }
    }

    /** The command-line word of a modality: image, video, audio. */
    public static String flag(String modality) {
        return modality.equals("Speech") ? "audio" : modality.toLowerCase(java.util.Locale.ROOT);
    }

    /** "Image", "Video" or "Speech": what {@link #answer} takes. */
    public String modality() {
        return speech != null ? "Speech" : image.tag();
    }

    /**
     * Generates the answer to {@code question} about {@code media}: an image, video or WAV file as the checkpoint
     * takes. With a WAV and a blank question the speech is the question: it becomes the user's turn of the chat
     * template ({@link SpokenTurn}) and the LLM answers what was said.
     */
    public Generator.Completion answer(Path media, String question, Generator.Options options,
                                       Generator.StreamListener listener) throws IOException {
        float[] pixels = speech == null ? image.preprocess(media) : null;
        float[][] fbank = speech == null ? null : speech.features(media);
        try (NDManager scope = llm.model().manager().newSubManager()) {
            NDArray vectors;
            if (speech != null) {
                List<float[]> fired = speech.fire(java.util.Collections.singletonList(fbank), scope);
                vectors = speech.adapt(fired, new long[1], scope).get(0);                  // (L, D), L fired tokens
            } else {
                NDArray features = image.encode(scope.create(pixels, ImageInstructionTask.batchShape(1, image.inputShape())));
                vectors = image.adapt(features).get(0);                                   // (Q, D) or (T·Q, D)
            }
            boolean spoken = speech != null && question.isBlank();
            long[] before = spoken ? spokenTurn.before() : template.beforeImage();
            long[] after = spoken ? spokenTurn.after() : template.afterImage(question);
            PromptBatch prompt = PromptBatch.build(llm.model(), List.of(List.of(Segment.Text.prompt(before),
                    new Segment.Embeddings(vectors), Segment.Text.prompt(after))), PromptBatch.Padding.LEFT, scope);
            return llm.generator().generateFromEmbeddings(prompt.embeddings(), prompt.valid(),
                    List.of(ImagePrompt.concat(before, after)),
                    options, listener).get(0);
        }
    }

    @Override
    public void close() {
        if (speech != null) speech.close();
        llm.close();
    }
}
