package xllm.server;

import ai.djl.ndarray.NDManager;
import xllm.hub.ModelStore;
import xllm.llm.ChatTemplate;
import xllm.llm.Generator;
import xllm.llm.LanguageModel;
import xllm.model.Features;
import xllm.model.Modality;
import xllm.model.Turn;
import xllm.model.XLlm;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.EnumMap;
import java.util.EnumSet;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Future;
import java.util.stream.Stream;

/**
 * The model behind the server: an X-LLM checkpoint (text, image, video and speech in one prompt) or a text LLM.
 * Turns a checked request into what the LLM reads (off the decode loop: media are fetched on the request's thread
 * and encoded by their frozen encoders on the encoder thread), and generates for a batch of such prompts.
 */
final class ServedModel implements AutoCloseable {

    /** Frozen-encoder outputs kept by content hash: a chat resends its history's media with every request. */
    private static final int ENCODED_CACHE = 64;

    private final String id;
    private final long created;
    private final XLlm xllm;             // null for a text LLM
    private final LanguageModel llm;
    private final Map<String, Features> encoded = new LinkedHashMap<>(16, 0.75f, true);

    private ServedModel(String id, long created, XLlm xllm, LanguageModel llm) {
        this.id = id;
        this.created = created;
        this.xllm = xllm;
        this.llm = llm;
    }

    /** Opens {@code model}: a cache name or path of a text LLM, or an X-LLM checkpoint directory. */
    static ServedModel open(String model, NDManager manager) throws IOException {
        Path path = ModelStore.defaultStore().resolve(model);
        long created = Files.exists(path) ? Files.getLastModifiedTime(path).toMillis() / 1000 : 0;
        // a cache name is the id as given; a path is named by its directory (runs/<name>/final by its run)
        String id = path.getFileName().toString();
        String parent = path.getParent() == null ? null : path.getParent().getFileName().toString();
        if (!model.contains("/")) id = model;
        else if (parent != null && (id.equals("final") || id.startsWith("step-"))) id = parent + "/" + id;
        if (XLlm.isCheckpoint(path)) {
            XLlm x = XLlm.load(path, manager);
            return new ServedModel(id, created, x, x.llm());
        }
        return new ServedModel(id, created, null, LanguageModel.open(path, manager));
    }

    String id() {
        return id;
    }

    long created() {
        return created;
    }

    /** What the model reads, as the API names it: text, then image, video, audio as the checkpoint has them. */
    List<String> modalities() {
        List<String> out = new ArrayList<>(List.of("text"));
        for (Modality m : modalities(xllm)) out.add(m == Modality.SPEECH ? "audio" : m.id());
        return out;
    }

    private static Set<Modality> modalities(XLlm x) {
        return x == null ? EnumSet.noneOf(Modality.class) : x.modalities();
    }

    /** A request as the LLM reads it: the turns with their media encoded (X-LLM) or the chat-template ids (text). */
    record Prompt(List<Turn> turns, long[] ids) {}

    /**
     * Checks the conversation against what the model reads, fetches its media ({@code fetcher}, on this thread) and
     * runs each through its frozen encoder on {@code encoder}.
     */
    Prompt prepare(ChatRequest request, MediaFetcher fetcher, ServerOptions.MediaLimits limits, ExecutorService encoder)
            throws ApiException, InterruptedException {
        List<ChatRequest.Message> messages = request.messages();
        ChatRequest.Message last = messages.get(messages.size() - 1);
        if (!last.role().equals("user")) {
            throw ApiException.badRequest(last.where(), last.where() + ": the last message must be the user's");
        }
        if (xllm == null) return new Prompt(null, textPrompt(messages));
        List<Turn> turns = new ArrayList<>();
        Map<Modality, Turn.Medium> media = null;
        String question = null;
        for (ChatRequest.Message m : messages) {
            switch (m.role()) {
                case "system" -> throw ApiException.badRequest(m.where(), m.where() + ": an X-LLM checkpoint reads no "
                        + "system message (its prompt is <Image>…<Speech>…Question: …\\n Answer:); leave it out");
                case "user" -> {
                    if (media != null) {
                        throw ApiException.badRequest(m.where(), m.where() + ": two user messages in a row; X-LLM "
                                + "reads alternating user and assistant turns");
                    }
                    media = media(m, fetcher, limits, encoder);
                    question = m.text();
                    if (question.isBlank() && !media.containsKey(Modality.SPEECH)) {
                        throw ApiException.badRequest(m.where(), m.where() + ": a message needs text, or audio that "
                                + "asks the question");
                    }
                }
                default -> { // assistant: the answer of the turn before
                    if (media == null) {
                        throw ApiException.badRequest(m.where(), m.where() + ": an assistant message must follow a "
                                + "user message");
                    }
                    turns.add(new Turn(media, question, m.text()));
                    media = null;
                }
            }
        }
        turns.add(new Turn(media, question, null));
        return new Prompt(turns, null);
    }

    private long[] textPrompt(List<ChatRequest.Message> messages) throws ApiException {
        List<ChatTemplate.Message> chat = new ArrayList<>();
        for (ChatRequest.Message m : messages) {
            for (ChatRequest.Part p : m.parts()) {
                if (p.kind() != ChatRequest.Kind.TEXT) {
                    throw ApiException.badRequest(p.where(), p.where() + ": model '" + id + "' reads text only; serve "
                            + "an X-LLM checkpoint (--model) for images, video and audio");
                }
            }
            chat.add(new ChatTemplate.Message(m.role(), m.text()));
        }
        long[] ids = llm.chatPrompt(chat);
        requireRoom(ids.length);
        return ids;
    }

    /** A prompt must leave room for at least one new token. */
    void requireRoom(int promptTokens) throws ApiException {
        int context = llm.model().config().maxPositions();
        if (promptTokens >= context) {
            throw ApiException.badRequest("messages", "the conversation is " + promptTokens + " tokens; the model's "
                    + "context is " + context);
        }
    }

    /** The media of one user message, one per modality, each fetched, decoded and encoded. */
    private Map<Modality, Turn.Medium> media(ChatRequest.Message m, MediaFetcher fetcher, ServerOptions.MediaLimits limits,
                                             ExecutorService encoder) throws ApiException, InterruptedException {
        Map<Modality, Turn.Medium> out = new EnumMap<>(Modality.class);
        for (ChatRequest.Part p : m.parts()) {
            Modality modality = switch (p.kind()) {
                case TEXT -> null;
                case IMAGE -> Modality.IMAGE;
                case VIDEO -> Modality.VIDEO;
                case AUDIO -> Modality.SPEECH;
            };
            if (modality == null) continue;
            if (!xllm.modalities().contains(modality)) {
                throw ApiException.badRequest(p.where(), p.where() + ": model '" + id + "' has no " + modality.id()
                        + " interface; it reads " + String.join(", ", modalities()));
            }
            if (out.containsKey(modality)) {
                throw ApiException.badRequest(p.where(), p.where() + ": one " + modality.id() + " per message; put the "
                        + "next one in a later message");
            }
            long max = modality == Modality.VIDEO ? limits.maxVideoBytes() : limits.maxMediaBytes();
            byte[] bytes = p.kind() == ChatRequest.Kind.AUDIO ? MediaFetcher.base64(p.audioBase64(), max, p.where())
                    : fetcher.fetch(p.url(), max, p.where());
            out.put(modality, Turn.Medium.encoded(encode(modality, bytes, p.where(), encoder)));
        }
        return out;
    }

    /** The frozen encoder's output for one file, from the cache when the same bytes were encoded before. */
    private Features encode(Modality modality, byte[] bytes, String where, ExecutorService encoder)
            throws ApiException, InterruptedException {
        String key = modality + ":" + sha256(bytes);
        synchronized (encoded) {
            Features hit = encoded.get(key);
            if (hit != null) return hit;
        }
        Future<Features> job = encoder.submit(() -> encodeFile(modality, bytes, where));
        Features features;
        try {
            features = job.get();
        } catch (InterruptedException e) {
            job.cancel(true);
            throw e;
        } catch (ExecutionException e) {
            Throwable cause = e.getCause();
            if (cause instanceof ApiException api) throw api;
            throw new ApiException(500, "encoder_failed", where, where + ": the " + modality.id() + " encoder failed: "
                    + cause);
        }
        synchronized (encoded) {
            encoded.put(key, features);
            if (encoded.size() > ENCODED_CACHE) encoded.remove(encoded.keySet().iterator().next());
        }
        return features;
    }

    /** Writes the bytes to a private temporary file (the readers take files), encodes it, and deletes it. */
    private Features encodeFile(Modality modality, byte[] bytes, String where) throws ApiException, IOException {
        Path dir = Files.createTempDirectory("xllm-serve-");
        Path file = dir.resolve(modality.field());
        try {
            Files.write(file, bytes);
            return xllm.encode(modality, file);
        } catch (IOException | RuntimeException e) {
            // the readers name the file; the client knows it as a field of its request
            String message = String.valueOf(e.getMessage()).replace(file.toString(), where + " (" + modality.field() + ")");
            throw ApiException.badRequest(where, message.startsWith(where) ? message : where + ": " + message);
        } finally {
            try (Stream<Path> files = Files.walk(dir)) {
                for (Path f : files.sorted(Comparator.reverseOrder()).toList()) Files.deleteIfExists(f);
            }
        }
    }

    private static String sha256(byte[] bytes) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(bytes));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    /** The decode loop's running batch (continuous batching), on this model's LLM. */
    <K> Generator.Session<K> session() {
        return language().generator().session();
    }

    /** A scope for one group of prompts on their way into the session. */
    NDManager newScope() {
        return language().model().manager().newSubManager();
    }

    /** A group of prompts spliced (X-LLM) or embedded (text LLM) and left-padded, ready to prefill. */
    Generator.Prompts prompts(List<Prompt> prompts, NDManager scope) {
        if (xllm != null) return xllm.generationPrompts(prompts.stream().map(Prompt::turns).toList(), scope);
        return llm.generator().embed(prompts.stream().map(Prompt::ids).toList(), scope);
    }

    private LanguageModel language() {
        return xllm != null ? xllm.llm() : llm;
    }

    @Override
    public void close() {
        if (xllm != null) xllm.close();
        else llm.close();
    }
}
