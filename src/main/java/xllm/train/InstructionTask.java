package xllm.train;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import com.fasterxml.jackson.databind.JsonNode;
import xllm.data.AsrSample;
import xllm.data.ContentKeys;
import xllm.data.ConversationSample;
import xllm.data.FeatureCache;
import xllm.data.JsonLines;
import xllm.data.ProgressBar;
import xllm.model.Features;
import xllm.model.Modality;
import xllm.model.ModalityInterface;
import xllm.model.PromptTemplate;
import xllm.model.Turn;
import xllm.model.XLlm;
import xllm.tensor.TrainableParameter;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.EnumMap;
import java.util.EnumSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Stages 2 and 3 (paper §3.2.2–3.2.3): conversations whose turns carry images, videos and speech in any combination
 * train the {@link XLlm}'s interfaces through its frozen LLM, loss on the answers only. Stage 2 aligns one interface
 * on its own data (image captions, video QA, ASR); stage 3 mixes every modality in one batch. Data: LLaVA-style
 * conversation manifests, or ASR manifests ({@code {"id","audio","text"}}: the paper's ASR instruction; with an
 * {@code "image"} the multimodal one).
 *
 * <p>With feature caches (one per modality, keyed by each encoder's fingerprint) the frozen encoders run once per
 * file: training reads their outputs by the file's SHA-256.
 */
public final class InstructionTask implements TrainingTask<InstructionTask.Sample, List<List<Turn>>> {

    /** Files encoded per forward pass while filling a cache. */
    static final int CACHE_FILL_BATCH = 16;

    /** One conversation: its media files and its turns. */
    public record Sample(String id, Map<Modality, Path> media, List<Exchange> turns) {}

    /** One exchange: which of the sample's media belong to it, the typed question (blank: spoken) and the answer. */
    public record Exchange(Set<Modality> media, String question, String answer) {}

    private final XLlm model;
    private final List<Sample> train;
    private final List<Sample> eval;
    private final Map<Modality, FeatureCache> caches; // empty: encoders run every step
    private final ContentKeys contentKeys = new ContentKeys();

    public InstructionTask(XLlm model, List<Sample> train, List<Sample> eval, Map<Modality, FeatureCache> caches) {
        this.model = model;
        this.train = train;
        this.eval = eval;
        this.caches = caches.isEmpty() ? Map.of() : new EnumMap<>(caches);
        for (List<Sample> samples : List.of(train, eval)) {
            for (Sample s : samples) {
                for (Modality m : s.media().keySet()) {
                    if (!model.modalities().contains(m)) {
                        throw new IllegalArgumentException("sample '" + s.id() + "' has " + (m == Modality.IMAGE ? "an " : "a ")
                                + m.field() + ", but the model has no " + m.id() + " interface (model.interfaces: "
                                + model.modalities().stream().map(Modality::id).toList() + ")");
                    }
                }
            }
        }
    }

    /**
     * Reads a conversation manifest (JSONL or LLaVA's JSON array) or an ASR manifest (every line
     * {@code {"id","audio","text"}}); the first record decides.
     */
    public static List<Sample> readManifest(Path manifest) throws IOException {
        if (isAsrManifest(manifest)) {
            List<Sample> samples = new ArrayList<>();
            for (AsrSample s : AsrSample.readManifest(manifest)) samples.add(asr(s));
            return samples;
        }
        List<Sample> samples = new ArrayList<>();
        for (ConversationSample s : ConversationSample.readManifest(manifest)) samples.add(of(s));
        return samples;
    }

    private static boolean isAsrManifest(Path manifest) throws IOException {
        boolean[] asr = {false};
        JsonLines.readObjects(manifest, line -> { // the first object decides; a bad one is named by file and position
            asr[0] = !line.object().has("conversations");
            return false;
        });
        return asr[0];
    }

    /** An ASR utterance as a one-turn conversation: the paper's ASR instruction, or the multimodal one with an image. */
    public static Sample asr(AsrSample s) {
        Map<Modality, Path> media = new EnumMap<>(Modality.class);
        media.put(Modality.SPEECH, s.audio());
        if (s.image() != null) media.put(Modality.IMAGE, s.image());
        String instruction = s.image() == null ? PromptTemplate.ASR_INSTRUCTION : PromptTemplate.MULTIMODAL_ASR_INSTRUCTION;
        return new Sample(s.id(), media, List.of(new Exchange(EnumSet.copyOf(media.keySet()), instruction, s.text())));
    }

    /** A manifest conversation, each medium in the turn it belongs to ({@link ConversationSample}'s placeholder rule). */
    public static Sample of(ConversationSample s) {
        Map<Modality, Path> media = new EnumMap<>(Modality.class);
        if (s.image() != null) media.put(Modality.IMAGE, s.image());
        if (s.video() != null) media.put(Modality.VIDEO, s.video());
        if (s.audio() != null) media.put(Modality.SPEECH, s.audio());
        List<Exchange> turns = new ArrayList<>();
        for (ConversationSample.Turn t : s.turns()) {
            Set<Modality> own = EnumSet.noneOf(Modality.class);
            if (t.image()) own.add(Modality.IMAGE);
            if (t.video()) own.add(Modality.VIDEO);
            if (t.audio()) own.add(Modality.SPEECH);
            turns.add(new Exchange(own, t.question(), t.answer()));
        }
        return new Sample(s.id(), media, List.copyOf(turns));
    }

    /** Runs each frozen encoder over every file missing from its cache; returns how many were computed. */
    public int fillCaches(NDManager manager) throws IOException {
        int computed = 0;
        for (var entry : caches.entrySet()) {
            Map<String, Path> byKey = new LinkedHashMap<>();
            for (List<Sample> samples : List.of(train, eval)) {
                for (Sample s : samples) {
                    Path file = s.media().get(entry.getKey());
                    if (file != null) byKey.put(contentKeys.of(file), file);
                }
            }
            computed += fillCache(entry.getValue(), model.interfaceOf(entry.getKey()), byKey, manager);
        }
        return computed;
    }

    /**
     * Encodes every file of {@code byKey} (cache key → file) missing from {@code cache}, {@value #CACHE_FILL_BATCH}
     * at a time (inputs prepared in parallel), with a progress bar; returns how many were computed.
     */
    static int fillCache(FeatureCache cache, ModalityInterface encoder, Map<String, Path> byKey, NDManager manager)
            throws IOException {
        List<String> missing = new ArrayList<>();
        for (String key : byKey.keySet()) if (!cache.contains(key)) missing.add(key);
        if (missing.isEmpty()) return 0;
        ProgressBar progress = ProgressBar.stderr(missing.size(), encoder.modality().field());
        progress.start(0);
        for (int from = 0; from < missing.size(); from += CACHE_FILL_BATCH) {
            List<String> chunk = missing.subList(from, Math.min(missing.size(), from + CACHE_FILL_BATCH));
            List<Features> prepared = chunk.parallelStream().map(key -> {
                try {
                    return encoder.prepare(byKey.get(key));
                } catch (IOException e) {
                    throw new UncheckedIOException(e);
                }
            }).toList();
            try (NDManager scope = manager.newSubManager()) {
                List<Features> encoded = encoder.encode(prepared, scope);
                for (int i = 0; i < chunk.size(); i++) cache.put(chunk.get(i), encoded.get(i).values(), encoded.get(i).shape());
            } catch (UncheckedIOException e) {
                throw e.getCause();
            }
            progress.update(from + chunk.size(), Double.NaN, Double.NaN, chunk.size());
        }
        cache.flush();
        progress.finish();
        return missing.size();
    }

    /** A cached encoder output; a missing entry is an error naming the file. */
    static Features cached(FeatureCache cache, String key, Path file) throws IOException {
        if (!cache.contains(key)) {
            throw new IOException("feature cache " + cache.directory() + " has no entry for " + file + " (fill it first)");
        }
        long[] shape = cache.shape(key);
        return new Features(cache.get(key, shape).orElseThrow(), shape);
    }

    @Override
    public List<TrainableParameter> parameters() {
        return model.parameters();
    }

    @Override
    public List<Sample> trainSamples() {
        return train;
    }

    @Override
    public List<Sample> evalSamples() {
        return eval;
    }

    /** Where a conversation's media come from: a file of a modality → its prepared or encoded form. */
    @FunctionalInterface
    public interface MediumSource {
        Turn.Medium of(Modality modality, Path file) throws IOException;
    }

    /**
     * A conversation as the model's turns, each medium in the turn it belongs to; with {@code answerLast} false the
     * last turn's answer is left to generate (evaluation), the earlier ones are history.
     */
    public static List<Turn> turns(Sample s, MediumSource source, boolean answerLast) throws IOException {
        Map<Modality, Turn.Medium> media = new EnumMap<>(Modality.class);
        for (var entry : s.media().entrySet()) media.put(entry.getKey(), source.of(entry.getKey(), entry.getValue()));
        List<Turn> turns = new ArrayList<>();
        for (int i = 0; i < s.turns().size(); i++) {
            Exchange e = s.turns().get(i);
            Map<Modality, Turn.Medium> own = new EnumMap<>(Modality.class);
            for (Modality m : e.media()) own.put(m, media.get(m));
            boolean last = i == s.turns().size() - 1;
            turns.add(new Turn(own, e.question(), last && !answerLast ? null : e.answer()));
        }
        return Collections.unmodifiableList(turns);
    }

    /** The conversations with their media prepared, or read from the caches. */
    @Override
    public List<List<Turn>> prepare(List<Sample> samples, boolean training, long seed) throws IOException {
        List<List<Turn>> rows = new ArrayList<>();
        for (Sample s : samples) rows.add(turns(s, this::medium, true));
        return rows;
    }

    private Turn.Medium medium(Modality m, Path file) throws IOException {
        FeatureCache cache = caches.get(m);
        if (cache != null) return Turn.Medium.encoded(cached(cache, contentKeys.of(file), file));
        return Turn.Medium.prepared(model.interfaceOf(m).prepare(file));
    }

    @Override
    public NDArray loss(List<List<Turn>> batch, NDManager scope) {
        return model.loss(batch, scope);
    }

    public XLlm model() {
        return model;
    }

    /** The task owns the model and its caches. */
    @Override
    public void close() {
        try {
            for (FeatureCache cache : caches.values()) cache.close();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } finally {
            model.close();
        }
    }

    /** The model's architecture record: config.json's {@code "model"}. */
    @Override
    public JsonNode describe() {
        return model.configJson().get("model");
    }

    /** The feature-cache directory name of a modality's encoder ({@code image-encoder}, …). */
    static String cacheName(Modality m) {
        return m.id() + "-encoder";
    }
}
