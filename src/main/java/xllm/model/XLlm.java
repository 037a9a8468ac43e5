package xllm.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.json.JsonMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import xllm.hub.ModelStore;
import xllm.llm.Generator;
import xllm.llm.LanguageModel;
import xllm.tensor.HostTensor;
import xllm.tensor.ParameterAssignment;
import xllm.tensor.Safetensors;
import xllm.tensor.TrainableParameter;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.HashSet;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * X-LLM as one model (paper Fig. 1): a frozen decoder LLM, the X2L interfaces it was built with (image, video,
 * speech, any subset) and the prompt template that splices their outputs into the LLM's input embeddings. Training
 * ({@code xllm.train}) computes {@link #loss} on its conversations; chat, generate, eval and the server call
 * {@link #generate}. A checkpoint is one directory: {@code config.json} ({@link XLlmConfig} under {@code "model"})
 * and {@code model.safetensors} (every interface parameter).
 */
public final class XLlm implements AutoCloseable {

    public static final String CONFIG = "config.json";
    public static final String MODEL = "model.safetensors";

    private static final ObjectMapper JSON = JsonMapper.builder()
            .enable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES)
            .enable(DeserializationFeature.FAIL_ON_NULL_FOR_PRIMITIVES)
            .build();

    private final LanguageModel llm;
    private final Map<Modality, ModalityInterface> interfaces;
    private final PromptTemplate template;

    /** Takes ownership of the LLM and the interfaces (closed with this model). */
    public XLlm(LanguageModel llm, List<? extends ModalityInterface> interfaces) {
        this.llm = llm;
        this.interfaces = new EnumMap<>(Modality.class);
        int width = llm.model().config().hiddenSize();
        for (ModalityInterface x : interfaces) {
            if (this.interfaces.put(x.modality(), x) != null) {
                throw new IllegalArgumentException("two " + x.modality().id() + " interfaces");
            }
            if (x.config().llmWidth() != width) {
                throw new IllegalArgumentException("the " + x.modality().id() + " interface produces width "
                        + x.config().llmWidth() + ", the LLM's embeddings have " + width);
            }
        }
        this.template = new PromptTemplate(llm);
    }

    /** A directory holding an X-LLM checkpoint (or an old single-modality one, which {@link #load} explains). */
    public static boolean isCheckpoint(Path path) {
        return Files.isDirectory(path) && Files.exists(path.resolve(MODEL)) && Files.exists(path.resolve(CONFIG))
                && Files.exists(path.resolve("provenance.json"));
    }

    public static XLlm load(Path checkpoint, NDManager manager) throws IOException {
        return load(checkpoint, 0, manager);
    }

    /**
     * Opens a checkpoint: reads its architecture record, rebuilds the LLM and each interface from it, checks every
     * recorded field against what was built (a changed encoder file, width or shape is named, not silently used),
     * then loads the trained tensors strictly (every parameter present, no unknown tensor, shapes equal).
     *
     * @param videoFrames frames sampled per video at inference; 0 = the recorded count
     */
    public static XLlm load(Path checkpoint, int videoFrames, NDManager manager) throws IOException {
        Path configFile = checkpoint.resolve(CONFIG);
        XLlmConfig config = readConfigFile(configFile);
        LanguageModel llm = LanguageModel.open(ModelStore.defaultStore().resolve(config.llm()), manager);
        List<ModalityInterface> built = new ArrayList<>();
        try {
            for (Modality m : Modality.values()) {
                InterfaceConfig recorded = config.of(m);
                if (recorded == null) continue;
                built.add(switch (m) {
                    case IMAGE -> ImageInterface.create((InterfaceConfig.Image) recorded, manager);
                    case VIDEO -> VideoInterface.create((InterfaceConfig.Video) recorded, manager);
                    case SPEECH -> SpeechInterface.create((InterfaceConfig.Speech) recorded, manager);
                });
            }
            XLlm model = new XLlm(llm, built);
            requireSameArchitecture(JSON.valueToTree(config), JSON.valueToTree(model.config()), configFile);
            model.loadTensors(checkpoint.resolve(MODEL));
            if (videoFrames > 0 && model.interfaces.get(Modality.VIDEO) instanceof VideoInterface video) {
                model.interfaces.put(Modality.VIDEO, video.withFrames(videoFrames));
            }
            return model;
        } catch (IOException | RuntimeException e) {
            built.forEach(ModalityInterface::close);
            llm.close();
            throw e;
        }
    }

    /**
     * Loads every parameter from a safetensors file, strictly: each must be there with its shape, and a tensor that
     * matches no parameter is an error naming it.
     */
    public void loadTensors(Path weights) throws IOException {
        Map<String, TrainableParameter> byName = new LinkedHashMap<>();
        for (TrainableParameter p : parameters()) byName.put(p.name(), p);
        try (Safetensors file = Safetensors.open(weights)) {
            Map<String, HostTensor> tensors = new LinkedHashMap<>();
            for (String name : file.names()) tensors.put(name, file.get(name));
            ParameterAssignment.assign(byName, tensors, Map.of(), weights, byName.keySet());
        }
    }

    /** A checkpoint directory's architecture record ({@link #load} reads it first; commands check input against it). */
    public static XLlmConfig readConfig(Path checkpoint) throws IOException {
        return readConfigFile(checkpoint.resolve(CONFIG));
    }

    /** config.json's model record; an old single-modality checkpoint is refused with the command that converts it. */
    static XLlmConfig readConfigFile(Path configFile) throws IOException {
        if (!Files.isRegularFile(configFile)) throw new IOException(configFile + ": not found (not a checkpoint directory)");
        JsonNode root;
        try {
            root = JSON.readTree(configFile.toFile());
        } catch (IOException e) {
            throw new IOException(configFile + ": malformed JSON: " + e.getMessage(), e);
        }
        JsonNode model = root == null ? null : root.path("model");
        if (model == null || !XLlmConfig.TYPE.equals(model.path("type").asText())) {
            if (root != null && root.path("recipe").isTextual()) {
                Path dir = configFile.toAbsolutePath().getParent();
                throw new IOException(configFile + ": a single-modality checkpoint from before xllm's one-model format "
                        + "(its architecture is a recipe string); convert it once with `./xllm upgrade-checkpoint " + dir
                        + "`, which writes the typed config.json next to the same tensors");
            }
            throw new IOException(configFile + ": model.type is '" + (model == null ? "" : model.path("type").asText())
                    + "', expected '" + XLlmConfig.TYPE + "' (not an X-LLM checkpoint)");
        }
        try {
            return JSON.treeToValue(model, XLlmConfig.class);
        } catch (IOException | IllegalArgumentException e) {
            throw new IOException(configFile + ": bad model record: " + e.getMessage(), e);
        }
    }

    /** Field by field: the first recorded value that differs from the rebuilt model's is named with both values. */
    static void requireSameArchitecture(JsonNode recorded, JsonNode rebuilt, Path configFile) throws IOException {
        String difference = firstDifference("model", recorded, rebuilt);
        if (difference != null) throw new IOException(configFile + ": " + difference);
    }

    private static String firstDifference(String path, JsonNode recorded, JsonNode rebuilt) {
        if (recorded.isObject() && rebuilt.isObject()) {
            Set<String> names = new HashSet<>();
            recorded.fieldNames().forEachRemaining(names::add);
            rebuilt.fieldNames().forEachRemaining(names::add);
            for (String name : names.stream().sorted().toList()) {
                String d = firstDifference(path + "." + name, recorded.path(name), rebuilt.path(name));
                if (d != null) return d;
            }
            return null;
        }
        if (recorded.isArray() && rebuilt.isArray() && recorded.size() == rebuilt.size()) {
            Iterator<JsonNode> a = recorded.elements(), b = rebuilt.elements();
            for (int i = 0; a.hasNext(); i++) {
                String d = firstDifference(path + "[" + i + "]", a.next(), b.next());
                if (d != null) return d;
            }
            return null;
        }
        boolean same = recorded.isNumber() && rebuilt.isNumber() ? recorded.asDouble() == rebuilt.asDouble()
                : recorded.equals(rebuilt) || (recorded.isMissingNode() && rebuilt.isNull())
                        || (recorded.isNull() && rebuilt.isMissingNode());
        return same ? null : path + " is recorded as " + recorded + " but the model built from it has " + rebuilt
                + " (the files it names changed since training; retrain, or restore them)";
    }

    /** The architecture record this model writes into config.json. */
    public XLlmConfig config() {
        return new XLlmConfig(XLlmConfig.TYPE, llm.source().toString(), llm.model().config().hiddenSize(),
                (InterfaceConfig.Image) recordOf(Modality.IMAGE), (InterfaceConfig.Video) recordOf(Modality.VIDEO),
                (InterfaceConfig.Speech) recordOf(Modality.SPEECH), PromptTemplate.TEXT);
    }

    /** config.json's contents: {@code {"model": config()}}. */
    public ObjectNode configJson() {
        ObjectNode root = JSON.createObjectNode();
        root.set("model", JSON.valueToTree(config()));
        return root;
    }

    private InterfaceConfig recordOf(Modality m) {
        ModalityInterface x = interfaces.get(m);
        return x == null ? null : x.config();
    }

    public LanguageModel llm() {
        return llm;
    }

    /** The modalities this model reads, in prompt order. */
    public Set<Modality> modalities() {
        return interfaces.keySet();
    }

    /** The interface of {@code m}; an error saying which interfaces the model has when it lacks it. */
    public ModalityInterface interfaceOf(Modality m) {
        ModalityInterface x = interfaces.get(m);
        if (x == null) {
            throw new IllegalArgumentException("this model has no " + m.id() + " interface (it reads "
                    + (interfaces.isEmpty() ? "text only" : interfaces.keySet().stream().map(Modality::flag)
                    .map(f -> "--" + f).toList()) + ")");
        }
        return x;
    }

    /** Every interface parameter, named as in checkpoints. */
    public List<TrainableParameter> parameters() {
        List<TrainableParameter> all = new ArrayList<>();
        for (ModalityInterface x : interfaces.values()) all.addAll(x.parameters());
        return all;
    }

    /** Frozen tensors (the encoders' and the LLM's token embedding), for tests that check they never change. */
    public List<NDArray> frozenTensors() {
        List<NDArray> frozen = new ArrayList<>();
        for (ModalityInterface x : interfaces.values()) frozen.addAll(x.frozenTensors());
        frozen.add(llm.model().tokenEmbedding());
        return frozen;
    }

    /** Step 1 for one file: prepare it and run the frozen encoder; the result can be kept (chat history, caches). */
    public Features encode(Modality m, Path media) throws IOException {
        ModalityInterface x = interfaceOf(m);
        Features prepared = x.prepare(media);
        try (NDManager scope = llm.model().manager().newSubManager()) {
            return x.encode(List.of(prepared), scope).get(0);
        }
    }

    /**
     * The spliced prompt rows of a batch of conversations, as numbered steps:
     * <ol>
     *   <li>each medium not yet encoded goes through its frozen encoder (batched per modality);
     *   <li>each interface adapts its media to (L_i, D) LLM embeddings (batched per modality);
     *   <li>the template splices them with the text, turn by turn.
     * </ol>
     * Answers are trained segments with {@code trainAnswers} (right padding), else history text (left padding).
     */
    public PromptBatch prompt(List<List<Turn>> rows, boolean trainAnswers, NDManager scope) {
        return splice(rows, trainAnswers, scope).batch();
    }

    /** The batch and, per row, the token ids of its text (the repetition penalty's history). */
    private record Spliced(PromptBatch batch, List<long[]> textIds) {}

    private Spliced splice(List<List<Turn>> rows, boolean trainAnswers, NDManager scope) {
        // Steps 1 and 2, one batch per modality over every turn of every row.
        List<List<Map<Modality, NDArray>>> vectors = new ArrayList<>();
        for (List<Turn> row : rows) {
            List<Map<Modality, NDArray>> perTurn = new ArrayList<>();
            for (int i = 0; i < row.size(); i++) perTurn.add(new EnumMap<>(Modality.class));
            vectors.add(perTurn);
        }
        for (Modality m : Modality.values()) {
            List<int[]> where = new ArrayList<>();
            List<Turn.Medium> media = new ArrayList<>();
            for (int r = 0; r < rows.size(); r++) {
                for (int t = 0; t < rows.get(r).size(); t++) {
                    Turn.Medium medium = rows.get(r).get(t).media().get(m);
                    if (medium == null) continue;
                    where.add(new int[] {r, t});
                    media.add(medium);
                }
            }
            if (media.isEmpty()) continue;
            ModalityInterface x = interfaceOf(m);
            List<Features> encoded = encodeMissing(x, media, scope);                       // 1. frozen encoder
            List<NDArray> adapted = x.adapt(encoded, scope);                             // 2. interface
            for (int k = 0; k < where.size(); k++) vectors.get(where.get(k)[0]).get(where.get(k)[1]).put(m, adapted.get(k));
        }
        // Step 3: splice.
        List<List<Segment>> segments = new ArrayList<>();
        List<long[]> textIds = new ArrayList<>();
        for (int r = 0; r < rows.size(); r++) {
            PromptTemplate.Row row = template.row(rows.get(r), vectors.get(r), trainAnswers);
            segments.add(row.segments());
            textIds.add(row.textIds());
        }
        return new Spliced(PromptBatch.build(llm.model(), segments, trainAnswers ? PromptBatch.Padding.RIGHT
                : PromptBatch.Padding.LEFT, scope), textIds);
    }

    private static List<Features> encodeMissing(ModalityInterface x, List<Turn.Medium> media, NDManager scope) {
        List<Features> prepared = new ArrayList<>();
        for (Turn.Medium m : media) if (!m.encoded()) prepared.add(m.data());
        Iterator<Features> fresh = prepared.isEmpty() ? null : x.encode(prepared, scope).iterator();
        List<Features> out = new ArrayList<>();
        for (Turn.Medium m : media) out.add(m.encoded() ? m.data() : fresh.next());
        return out;
    }

    /** Steps 1–3, then 4: the frozen LLM's mean cross-entropy over every answer token of the batch. */
    public NDArray loss(List<List<Turn>> rows, NDManager scope) {
        return prompt(rows, true, scope).answerLoss(llm.model());
    }

    /**
     * Steps 1–3, then 4: the frozen LLM generates each row's answer to its last turn (whose answer is null); earlier
     * turns are history, their answers as given.
     */
    public List<Generator.Completion> generate(List<List<Turn>> rows, Generator.Options options,
                                               Generator.StreamListener listener) {
        return generate(rows, java.util.Collections.nCopies(rows.size(), options), listener);
    }

    /** As above, with each row's own options (a server's batch of requests). */
    public List<Generator.Completion> generate(List<List<Turn>> rows, List<Generator.Options> options,
                                               Generator.StreamListener listener) {
        try (NDManager scope = llm.model().manager().newSubManager()) {
            Generator.Prompts prompts = generationPrompts(rows, scope);
            return llm.generator().generateFromEmbeddings(prompts.embeddings(), prompts.valid(), prompts.textIds(),
                    options, listener);
        }
    }

    /** Steps 1–3 for generation: each row's conversation spliced and left-padded, ready for the LLM to prefill. */
    public Generator.Prompts generationPrompts(List<List<Turn>> rows, NDManager scope) {
        Spliced prompt = splice(rows, false, scope);
        return new Generator.Prompts(prompt.batch().embeddings(), prompt.batch().valid(), prompt.textIds());
    }

    @Override
    public void close() {
        interfaces.values().forEach(ModalityInterface::close);
        llm.close();
    }
}
