package xllm.train;

import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import xllm.data.ConversationSample;
import xllm.data.ContentKeys;
import xllm.data.FeatureCache;
import xllm.model.Features;
import xllm.model.ImageInterface;
import xllm.tensor.TrainableParameter;
import xllm.x2l.QFormerPretraining;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Stage 1 of the image interface ({@code convert-qformer}): BLIP-2 stage-1 pre-training of the Q-Former against the
 * frozen image encoder on image-caption pairs, loss = ITC + ITM + ITG ({@link QFormerPretraining}); no LLM. A
 * sample's caption is its answer; from manifests whose lines carry a {@code task} field (the synthetic scenes) only
 * {@code caption} and {@code describe} samples are used ({@link #readCaptions}). Captions are tokenised by the BERT
 * checkpoint's WordPiece tokenizer ({@code tokenizer.json}) with [CLS] … [SEP] and cut to {@value #MAX_TEXT_TOKENS}
 * tokens (LAVIS {@code max_txt_len}). The frozen encoder's outputs can come from a {@link FeatureCache}, as in
 * {@link InstructionTask}.
 *
 * <p>Parameter names: the Q-Former under {@value #QFORMER_PREFIX} (what stage 2 loads with {@code initFrom}), the
 * stage-1-only text side and heads under {@value #PRETRAINING_PREFIX} (stage 2 leaves them out with
 * {@code initSkip: ["qformerPretraining.**"]}).
 */
public final class QFormerPretrainTask implements TrainingTask<ConversationSample, QFormerPretrainTask.Batch> {

    public static final String QFORMER_PREFIX = "imageInterface.qformer.";
    public static final String PRETRAINING_PREFIX = "qformerPretraining.";
    public static final int MAX_TEXT_TOKENS = 32;
    /** Manifest {@code task} values whose answers are captions. */
    public static final Set<String> CAPTION_TASKS = Set.of("caption", "describe");

    /**
     * A prepared micro-batch: per sample the image's pixels or cached encoder features ({@code cached}), the caption
     * tokens right-padded with 0 to one width, their lengths, and the seed of the hard-negative sampling.
     */
    public record Batch(List<Features> inputs, boolean cached, long[][] tokenIds, int[] lengths, long seed) {}

    private final ImageInterface images;        // the frozen encoder side only: prepare, encode, positions
    private final QFormerPretraining model;
    private final HuggingFaceTokenizer tokenizer;
    private final List<ConversationSample> train;
    private final List<ConversationSample> eval;
    private final FeatureCache cache;           // frozen encoder outputs by image content, or null
    private final ContentKeys contentKeys = new ContentKeys();

    /**
     * @param images    supplies the frozen image encoder (its adapter and parameters are not used here)
     * @param tokenizer the BERT checkpoint's {@code tokenizer.json} (or its directory)
     */
    public QFormerPretrainTask(ImageInterface images, QFormerPretraining model, Path tokenizer,
                               List<ConversationSample> train, List<ConversationSample> eval, FeatureCache cache)
            throws IOException {
        this.images = images;
        this.model = model;
        this.train = train;
        this.eval = eval;
        this.cache = cache;
        for (List<ConversationSample> samples : List.of(train, eval)) {
            for (ConversationSample s : samples) {
                if (s.image() == null) throw new IllegalArgumentException("sample '" + s.id() + "' has no image");
            }
        }
        Path json = Files.isDirectory(tokenizer) ? tokenizer.resolve("tokenizer.json") : tokenizer;
        Map<String, String> options = new HashMap<>();
        options.put("addSpecialTokens", "true");
        options.put("truncation", "false"); // cut below, keeping [SEP]
        options.put("padding", "false");
        try (var in = Files.newInputStream(json)) {
            this.tokenizer = HuggingFaceTokenizer.newInstance(in, options);
        } catch (IOException | RuntimeException e) {
            throw new IOException(json + ": cannot build the BERT tokenizer: " + e.getMessage(), e);
        }
    }

    /**
     * The image-caption samples of a manifest: every sample when its lines carry no {@code task} field, else those
     * whose task is one of {@link #CAPTION_TASKS}; an error names the manifest when none is left.
     */
    public static List<ConversationSample> readCaptions(Path manifest) throws IOException {
        Map<String, String> taskById = new HashMap<>();
        ObjectMapper json = new ObjectMapper();
        try (BufferedReader reader = Files.newBufferedReader(manifest, StandardCharsets.UTF_8)) {
            String line;
            while ((line = reader.readLine()) != null) {
                if (line.isBlank()) continue;
                JsonNode node = json.readTree(line); // malformed lines are reported by readManifest below
                if (node.has("task")) taskById.put(node.path("id").asText(), node.get("task").asText());
            }
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            ConversationSample.readManifest(manifest); // throws with file and line
            throw e;
        }
        List<ConversationSample> captions = new ArrayList<>();
        for (ConversationSample s : ConversationSample.readManifest(manifest)) {
            String task = taskById.get(s.id());
            if (task == null || CAPTION_TASKS.contains(task)) captions.add(s);
        }
        if (captions.isEmpty()) {
            throw new IOException(manifest + ": no image-caption samples (task " + CAPTION_TASKS + " or no task field)");
        }
        return captions;
    }

    /** Runs the frozen encoder over every image missing from the cache; returns how many were computed. */
    public int fillCache(NDManager manager) throws IOException {
        Map<String, Path> byKey = new LinkedHashMap<>();
        for (List<ConversationSample> samples : List.of(train, eval)) for (ConversationSample s : samples) byKey.put(cacheKey(s), s.image());
        return InstructionTask.fillCache(cache, images, byKey, manager);
    }

    /** Keyed by content, as {@link InstructionTask}: a regenerated image at the same path is encoded again. */
    private String cacheKey(ConversationSample s) throws IOException {
        return contentKeys.of(s.image());
    }

    /** [CLS] caption [SEP], at most {@value #MAX_TEXT_TOKENS} tokens (the cut keeps the final [SEP]). */
    public long[] tokenize(String caption) {
        long[] ids = tokenizer.encode(caption).getIds();
        if (ids.length <= MAX_TEXT_TOKENS) return ids;
        long[] cut = Arrays.copyOf(ids, MAX_TEXT_TOKENS);
        cut[MAX_TEXT_TOKENS - 1] = ids[ids.length - 1];
        return cut;
    }

    @Override
    public List<TrainableParameter> parameters() {
        return model.parameters(QFORMER_PREFIX, PRETRAINING_PREFIX);
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
        List<Features> inputs = new ArrayList<>();
        long[][] tokens = new long[samples.size()][];
        int[] lengths = new int[samples.size()];
        int width = 0;
        for (int i = 0; i < samples.size(); i++) {
            ConversationSample s = samples.get(i);
            if (cache != null) {
                inputs.add(InstructionTask.cached(cache, cacheKey(s), s.image()));
            } else {
                inputs.add(images.prepare(s.image()));
            }
            tokens[i] = tokenize(s.answer());
            lengths[i] = tokens[i].length;
            width = Math.max(width, lengths[i]);
        }
        for (int i = 0; i < tokens.length; i++) tokens[i] = Arrays.copyOf(tokens[i], width); // pad with 0 ([PAD])
        return new Batch(inputs, cache != null, tokens, lengths, seed);
    }

    @Override
    public NDArray loss(Batch batch, NDManager scope) {
        return losses(batch, scope).total();
    }

    /** The three objectives of a prepared batch; arrays belong to {@code scope}. */
    public QFormerPretraining.Losses losses(Batch batch, NDManager scope) {
        List<Features> encoded = batch.cached() ? batch.inputs() : images.encode(batch.inputs(), scope); // frozen
        NDArray features = images.positioned(Features.stack(encoded, scope));
        return model.losses(features, batch.tokenIds(), batch.lengths(), batch.seed());
    }

    public QFormerPretraining model() {
        return model;
    }

    /** The task owns the tokenizer and the cache it was given. */
    @Override
    public void close() {
        tokenizer.close();
        if (cache != null) {
            try {
                cache.close();
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }
    }

    @Override
    public JsonNode describe() {
        ObjectNode node = new ObjectMapper().createObjectNode();
        node.put("imageEncoder", images.config().encoder().identity());
        node.put("objectives", "BLIP-2 stage 1: ITC + ITM + ITG (label smoothing " + QFormerPretraining.LABEL_SMOOTHING + ")");
        node.put("textVocabulary", model.text().vocabulary() + 1);
        return node;
    }
}
