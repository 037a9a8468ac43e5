package xllm.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import xllm.hub.ModelStore;
import xllm.llm.Generator;
import xllm.llm.LanguageModel;
import xllm.tensor.HostTensor;
import xllm.train.Checkpoint;
import xllm.train.StageConfig;
import xllm.train.TrainableParameter;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Answers questions about an image with a trained image interface: opens a training checkpoint (its recipe names
 * the frozen LLM and encoder; its tensors are the interface's trained parameters), then generates from the paper's
 * prompt {@code <Image>{image}</Image>Question: {question}\n Answer:}, exactly as the interface was trained.
 */
public final class ImageChat implements AutoCloseable {

    private final LanguageModel llm;
    private final ImageInterface image;
    private final long[] imageOpen;
    private final long[] imageClose;

    private ImageChat(LanguageModel llm, ImageInterface image) {
        this.llm = llm;
        this.image = image;
        this.imageOpen = llm.tokenizer().encode("<Image>");
        this.imageClose = llm.tokenizer().encode("</Image>");
    }

    public static boolean isCheckpoint(Path path) {
        return Files.isDirectory(path) && Files.exists(path.resolve(Checkpoint.MODEL)) && Files.exists(path.resolve(Checkpoint.CONFIG));
    }

    public static ImageChat open(Path checkpointDir, NDManager manager) throws IOException {
        Checkpoint checkpoint = Checkpoint.load(checkpointDir);
        if (checkpoint.config() == null || !checkpoint.config().path("recipe").isTextual()) {
            throw new IOException(checkpointDir.resolve(Checkpoint.CONFIG) + ": no 'recipe' (not an xllm training checkpoint)");
        }
        Path recipe = Files.createTempFile("xllm-recipe-", ".yaml");
        StageConfig config;
        try {
            Files.writeString(recipe, checkpoint.config().get("recipe").asText());
            config = StageConfig.load(recipe, List.of(), false);
        } finally {
            Files.deleteIfExists(recipe);
        }
        LanguageModel llm = LanguageModel.open(ModelStore.defaultStore().resolve(config.model().llm()), manager);
        try {
            ImageInterface image = StageAssembly.imageInterface(config, llm.model().config().hiddenSize(), manager);
            Map<String, TrainableParameter> byName = new HashMap<>();
            for (TrainableParameter p : image.parameters()) byName.put(p.name(), p);
            for (Map.Entry<String, HostTensor> entry : checkpoint.model().entrySet()) {
                TrainableParameter target = byName.get(entry.getKey());
                if (target == null || !Arrays.equals(entry.getValue().shape(), target.value().getShape().getShape())) {
                    throw new IOException(checkpointDir.resolve(Checkpoint.MODEL) + ": tensor '" + entry.getKey()
                            + "' does not fit the interface the recipe describes");
                }
                float[] values = entry.getValue().toFloats();
                ByteBuffer bytes = ByteBuffer.allocateDirect(values.length * 4).order(ByteOrder.nativeOrder());
                bytes.asFloatBuffer().put(values);
                target.value().set(bytes);
            }
            return new ImageChat(llm, image);
        } catch (IOException | RuntimeException e) {
            llm.close();
            throw e;
        }
    }

    /** Generates the answer to {@code question} about {@code imageFile}. */
    public Generator.Completion answer(Path imageFile, String question, Generator.Options options,
                                       Generator.StreamListener listener) throws IOException {
        float[] pixels = image.preprocess(imageFile);
        try (NDManager scope = llm.model().manager().newSubManager()) {
            NDArray features = image.encode(scope.create(pixels, ImageInstructionTask.batchShape(1, image.inputShape())));
            NDArray vectors = image.adapt(features).get(0);                               // (Q, D)
            long[] question_ids = llm.tokenizer().encode(ImageInstructionTask.questionText(question));
            long[] after = new long[imageClose.length + question_ids.length];
            System.arraycopy(imageClose, 0, after, 0, imageClose.length);
            System.arraycopy(question_ids, 0, after, imageClose.length, question_ids.length);
            PromptBatch prompt = PromptBatch.build(llm.model(), List.of(List.of(Segment.Text.prompt(imageOpen),
                    new Segment.Embeddings(vectors), Segment.Text.prompt(after))), PromptBatch.Padding.LEFT, scope);
            long[] textIds = new long[imageOpen.length + after.length];
            System.arraycopy(imageOpen, 0, textIds, 0, imageOpen.length);
            System.arraycopy(after, 0, textIds, imageOpen.length, after.length);
            return llm.generator().generateFromEmbeddings(prompt.embeddings(), prompt.valid(), List.of(textIds),
                    options, listener).get(0);
        }
    }

    @Override
    public void close() {
        llm.close();
    }
}
