package xllm.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import xllm.data.ConversationSample;
import xllm.llm.LanguageModel;
import xllm.tensor.TrainableParameter;
import xllm.train.TrainingTask;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Stage-2 style image instruction training: each sample's image goes through the image interface, its embeddings
 * are spliced into the paper's prompt template {@code <Image>{image}</Image>Question: {q}\n Answer:} and the frozen
 * LLM is trained (through the interface only) to produce {@code " {answer}"} followed by its end-of-sequence token.
 */
public final class ImageInstructionTask implements TrainingTask<ConversationSample, ImageInstructionTask.Batch> {

    /**
     * A prepared micro-batch: per sample either the image's patch values (encoder runs in the step) or its cached
     * encoder features ({@code cached} true), and the token ids around the image.
     */
    public record Batch(float[][] inputs, boolean cached, List<long[]> before, List<long[]> after, List<long[]> answers) {}

    private final LanguageModel llm;
    private final ImageInterface imageInterface;
    private final List<ConversationSample> train;
    private final List<ConversationSample> eval;
    private final xllm.data.FeatureCache cache; // frozen encoder outputs by sample id, or null
    private final ImagePrompt template;
    private final ContentKeys contentKeys = new ContentKeys();

    public ImageInstructionTask(LanguageModel llm, ImageInterface imageInterface, List<ConversationSample> train,
                                List<ConversationSample> eval) {
        this(llm, imageInterface, train, eval, null);
    }

    /** With a feature cache: the frozen encoder's outputs are computed once per sample and then read from it. */
    public ImageInstructionTask(LanguageModel llm, ImageInterface imageInterface, List<ConversationSample> train,
                                List<ConversationSample> eval, xllm.data.FeatureCache cache) {
        this.llm = llm;
        this.cache = cache;
        this.imageInterface = imageInterface;
        this.train = train;
        this.eval = eval;
        this.template = new ImagePrompt(llm.tokenizer(), imageInterface.tag());
        for (ConversationSample s : train) media(s);
        for (ConversationSample s : eval) media(s);
    }

    /** Images encoded per forward pass while filling the cache. */
    static final int CACHE_FILL_BATCH = 16;

    /**
     * Runs the frozen encoder over every image missing from the cache, in batches (pixels decoded in parallel),
     * with a progress bar on stderr; returns how many were computed.
     */
    public int fillCache(NDManager manager) throws IOException {
        java.util.Map<String, Path> byKey = new java.util.LinkedHashMap<>();
        for (ConversationSample s : train) byKey.put(cacheKey(s), media(s));
        for (ConversationSample s : eval) byKey.put(cacheKey(s), media(s));
        return fillCache(cache, imageInterface, byKey, manager);
    }

    /**
     * Encodes every file of {@code byKey} (cache key → image or video) missing from {@code cache}, in batches of
     * {@value #CACHE_FILL_BATCH} (pixels decoded in parallel), with a progress bar; returns how many were computed.
     */
    static int fillCache(xllm.data.FeatureCache cache, ImageInterface imageInterface, java.util.Map<String, Path> byKey,
                         NDManager manager) throws IOException {
        int missing = 0;
        for (String key : byKey.keySet()) if (!cache.contains(key)) missing++;
        xllm.data.ProgressBar progress = missing == 0 ? null
                : xllm.data.ProgressBar.stderr(missing, imageInterface.tag().toLowerCase(java.util.Locale.ROOT));
        return cache.fill(new ArrayList<>(byKey.keySet()), keys -> {
            float[][] pixels = keys.parallelStream().map(key -> {
                try {
                    return imageInterface.preprocess(byKey.get(key));
                } catch (IOException e) {
                    throw new java.io.UncheckedIOException(e);
                }
            }).toArray(float[][]::new);
            int width = pixels[0].length;
            float[] flat = new float[pixels.length * width];
            for (int i = 0; i < pixels.length; i++) System.arraycopy(pixels[i], 0, flat, i * width, width);
            try (NDManager scope = manager.newSubManager()) {
                NDArray features = imageInterface.encode(scope.create(flat, batchShape(pixels.length, imageInterface.inputShape())));
                float[] values = features.toFloatArray();
                int per = values.length / pixels.length;
                List<float[]> out = new ArrayList<>(pixels.length);
                for (int i = 0; i < pixels.length; i++) out.add(java.util.Arrays.copyOfRange(values, i * per, (i + 1) * per));
                return out;
            }
        }, imageInterface.featureShape(), CACHE_FILL_BATCH, progress);
    }

    static Shape batchShape(int batch, long[] item) {
        long[] shape = new long[item.length + 1];
        shape[0] = batch;
        System.arraycopy(item, 0, shape, 1, item.length);
        return new Shape(shape);
    }

    /** The sample's image, or its video for the video interface; a sample without it is an error naming it. */
    private Path media(ConversationSample s) {
        boolean video = imageInterface.tag().equals("Video");
        Path path = video ? s.video() : s.image();
        if (path == null) {
            throw new IllegalArgumentException("sample '" + s.id() + "' has no \"" + (video ? "video" : "image") + "\" file");
        }
        return path;
    }

    private String cacheKey(ConversationSample s) throws IOException {
        return contentKeys.of(media(s));
    }

    @Override
    public List<TrainableParameter> parameters() {
        return imageInterface.parameters();
    }

    @Override
    public List<ConversationSample> trainSamples() {
        return train;
    }

    @Override
    public List<ConversationSample> evalSamples() {
        return eval;
    }

    @Override
    public Batch prepare(List<ConversationSample> samples, boolean training, long seed) throws IOException {
        float[][] inputs = new float[samples.size()][];
        List<long[]> before = new ArrayList<>(), after = new ArrayList<>(), answers = new ArrayList<>();
        for (int i = 0; i < samples.size(); i++) {
            ConversationSample s = samples.get(i);
            if (cache != null) {
                Path file = media(s);
                inputs[i] = cache.get(cacheKey(s), imageInterface.featureShape()).orElseThrow(() -> new IOException(
                        "feature cache " + cache.directory() + " has no entry for " + file + " (fillCache first)"));
            } else {
                inputs[i] = imageInterface.preprocess(media(s));
            }
            before.add(template.beforeImage());
            after.add(template.afterImage(s.question()));
            answers.add(answerIds(llm, s.answer()));
        }
        return new Batch(inputs, cache != null, before, after, answers);
    }

    /** The trained answer: " " + answer, then the LLM's end-of-sequence token so generation learns to stop. */
    static long[] answerIds(LanguageModel llm, String answer) {
        return endingTurn(llm, " " + answer);
    }

    /** {@code text}'s tokens, then the LLM's end-of-sequence token (a trained answer stops there). */
    static long[] endingTurn(LanguageModel llm, String text) {
        long[] ids = llm.tokenizer().encode(text);
        List<Long> eosIds = llm.model().config().eosTokenIds();
        if (eosIds.isEmpty()) return ids;
        long[] out = java.util.Arrays.copyOf(ids, ids.length + 1);
        out[ids.length] = eosIds.get(0);
        return out;
    }

    @Override
    public NDArray loss(Batch batch, NDManager scope) {
        return prompt(batch, scope, true).answerLoss(llm.model());
    }

    /** The spliced prompt rows; with {@code withAnswers} false, left-padded for generation. */
    public PromptBatch prompt(Batch batch, NDManager scope, boolean withAnswers) {
        int size = batch.inputs().length;
        int width = batch.inputs()[0].length;
        float[] flat = new float[size * width];
        for (int i = 0; i < size; i++) System.arraycopy(batch.inputs()[i], 0, flat, i * width, width);
        NDArray features = batch.cached()
                ? scope.create(flat, batchShape(size, imageInterface.featureShape()))
                : imageInterface.encode(scope.create(flat, batchShape(size, imageInterface.inputShape()))); // frozen
        NDArray images = imageInterface.adapt(features);                                      // (B, Q, D)
        List<List<Segment>> rows = new ArrayList<>();
        for (int i = 0; i < size; i++) {
            List<Segment> row = new ArrayList<>(List.of(Segment.Text.prompt(batch.before().get(i)),
                    new Segment.Embeddings(images.get(i)), Segment.Text.prompt(batch.after().get(i))));
            if (withAnswers) row.add(Segment.Text.answer(batch.answers().get(i)));
            rows.add(row);
        }
        return PromptBatch.build(llm.model(), rows, withAnswers ? PromptBatch.Padding.RIGHT : PromptBatch.Padding.LEFT, scope);
    }

    /** Frozen tensors the task uses (tests check they never change). */
    public List<NDArray> frozenTensorsForTest() {
        List<NDArray> frozen = new ArrayList<>(imageInterface.frozenTensors());
        frozen.add(llm.model().tokenEmbedding());
        return frozen;
    }

    public LanguageModel llm() {
        return llm;
    }

    /** The task owns the LLM and the cache it was given. */
    @Override
    public void close() {
        llm.close();
        if (cache != null) {
            try {
                cache.close();
            } catch (IOException e) {
                throw new java.io.UncheckedIOException(e);
            }
        }
    }

    @Override
    public JsonNode describe() {
        ObjectNode node = new ObjectMapper().createObjectNode();
        node.put("llm", llm.source().toString());
        node.put("imageInterface", imageInterface.describe());
        String tag = imageInterface.tag();
        node.put("promptTemplate", "<" + tag + ">{" + tag.toLowerCase(java.util.Locale.ROOT) + "}</" + tag
                + ">Question: {instruction}\\n Answer:");
        return node;
    }
}
