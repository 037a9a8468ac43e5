package xllm.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import xllm.data.ConversationSample;
import xllm.data.JsonLines;
import xllm.llm.LanguageModel;
import xllm.data.AsrSample;
import xllm.data.FeatureCache;
import xllm.data.ProgressBar;
import xllm.tensor.TrainableParameter;
import xllm.train.TrainingTask;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Stage 2 of the speech interface (paper §3.2.2, align-speech): the C-Former and S-Adapter learn, through the
 * frozen LLM, to make the frozen ASR encoder's CIF tokens readable as text. Prompt (DESIGN.md §1):
 * {@code <Speech>{speech}</Speech>Question: {instruction}\n Answer: {answer}}, loss on the answer only. Data: an
 * ASR manifest ({@code {"id","audio","text"}} — the instruction is then {@link #ASR_INSTRUCTION}, the answer the
 * transcript) or a LLaVA-style manifest whose samples carry {@code "audio"} (spoken questions and their answers).
 * A LLaVA sample whose human turn is only {@code <audio>} puts the speech where the user's typed text goes in the
 * LLM's chat template ({@link SpokenTurn}); with the frozen LLM's own reply to the transcript as its answer
 * ({@code ./xllm bootstrap replies}) this aligns the speech with the text it says, so the LLM answers spoken
 * questions instead of transcribing them (docs/asr.md, Spoken questions).
 *
 * <p>With a {@link FeatureCache} the frozen encoder + CIF run once per utterance: the cache holds each utterance's
 * fired tokens (L, d) keyed by the audio file's SHA-256, and training reads them instead of audio.
 */
public final class SpeechInstructionTask implements TrainingTask<SpeechInstructionTask.Sample, SpeechInstructionTask.Batch> {

    /** The paper's ASR instruction (§3.2.2). */
    public static final String ASR_INSTRUCTION = "Please faithfully recognize the speech.";
    static final int CACHE_FILL_BATCH = 16;

    /** One utterance with its question and answer. */
    public record Sample(String id, Path audio, String question, String answer) {}

    /** A prepared micro-batch: normalised fbank per utterance, or cached fired tokens (L·d floats) per utterance. */
    public record Batch(List<float[][]> features, List<float[]> fired, List<long[]> before, List<long[]> after,
                        List<long[]> answers) {}

    private final LanguageModel llm;
    private final SpeechInterface speech;
    private final List<Sample> train;
    private final List<Sample> eval;
    private final FeatureCache cache; // null: run the frozen encoder every step
    private final ImagePrompt template;
    private final SpokenTurn spokenTurn;
    private final ContentKeys contentKeys = new ContentKeys();

    public SpeechInstructionTask(LanguageModel llm, SpeechInterface speech, List<Sample> train, List<Sample> eval,
                                 FeatureCache cache) {
        this.llm = llm;
        this.speech = speech;
        this.train = train;
        this.eval = eval;
        this.cache = cache;
        this.template = new ImagePrompt(llm.tokenizer(), "Speech");
        this.spokenTurn = new SpokenTurn(llm);
    }

    /**
     * Reads an ASR manifest (every line {@code {"id","audio","text"}}: the ASR instruction) or a LLaVA-style
     * manifest (lines with {@code "conversations"}, each needing an {@code "audio"} file); the first line decides.
     */
    public static List<Sample> readManifest(Path manifest) throws IOException {
        boolean[] conversations = {false};
        JsonLines.read(manifest, line -> { // the first object decides; a bad line is named by file:line
            conversations[0] = line.object().has("conversations");
            return false;
        });
        List<Sample> samples = new ArrayList<>();
        if (conversations[0]) {
            for (ConversationSample s : ConversationSample.readManifest(manifest)) {
                if (s.audio() == null) throw new IOException(manifest + ": sample '" + s.id() + "' has no \"audio\" file");
                samples.add(new Sample(s.id(), s.audio(), s.question(), s.answer()));
            }
        } else {
            for (AsrSample s : AsrSample.readManifest(manifest)) samples.add(new Sample(s.id(), s.audio(), ASR_INSTRUCTION, s.text()));
        }
        return samples;
    }

    /** Runs the frozen encoder + CIF over every utterance missing from the cache; returns how many were computed. */
    public int fillCache(NDManager manager) throws IOException {
        Map<String, Sample> byKey = new LinkedHashMap<>();
        for (Sample s : train) byKey.put(cacheKey(s), s);
        for (Sample s : eval) byKey.put(cacheKey(s), s);
        int missing = 0;
        for (String key : byKey.keySet()) if (!cache.contains(key)) missing++;
        ProgressBar progress = missing == 0 ? null : ProgressBar.stderr(missing, "utterance");
        int width = speech.firedWidth();
        // a per-sample shape: (L, d) with L the utterance's own token count
        List<String> keys = new ArrayList<>(byKey.keySet());
        keys.removeIf(cache::contains);
        if (progress != null) progress.start(0);
        for (int from = 0; from < keys.size(); from += CACHE_FILL_BATCH) {
            List<String> chunk = keys.subList(from, Math.min(keys.size(), from + CACHE_FILL_BATCH));
            List<float[][]> features = new ArrayList<>();
            for (String key : chunk) features.add(speech.features(byKey.get(key).audio()));
            List<float[]> fired = speech.fire(features, manager);
            for (int i = 0; i < chunk.size(); i++) {
                cache.put(chunk.get(i), fired.get(i), new long[] {fired.get(i).length / width, width});
            }
            if (progress != null) progress.update(from + chunk.size(), Double.NaN, Double.NaN, chunk.size());
        }
        cache.flush();
        if (progress != null) progress.finish();
        return keys.size();
    }

    private String cacheKey(Sample s) throws IOException {
        return contentKeys.of(s.audio());
    }

    @Override
    public List<TrainableParameter> parameters() {
        return speech.parameters();
    }

    @Override
    public List<Sample> trainSamples() {
        return train;
    }

    @Override
    public List<Sample> evalSamples() {
        return eval;
    }

    @Override
    public Batch prepare(List<Sample> samples, boolean training, long seed) throws IOException {
        List<float[][]> features = new ArrayList<>();
        List<float[]> fired = new ArrayList<>();
        List<long[]> before = new ArrayList<>(), after = new ArrayList<>(), answers = new ArrayList<>();
        for (Sample s : samples) {
            if (cache != null) {
                String key = cacheKey(s);
                if (!cache.contains(key)) {
                    throw new IOException("feature cache " + cache.directory() + " has no entry for " + s.audio() + " (fillCache first)");
                }
                fired.add(cache.get(key, cache.shape(key)).orElseThrow());
            } else {
                features.add(speech.features(s.audio()));
            }
            if (s.question().isEmpty()) { // the speech is the user's whole turn: a spoken question
                before.add(spokenTurn.before());
                after.add(spokenTurn.after());
                answers.add(spokenTurn.replyIds(s.answer()));
            } else {
                before.add(template.beforeImage());
                after.add(template.afterImage(s.question()));
                answers.add(ImageInstructionTask.answerIds(llm, s.answer()));
            }
        }
        return new Batch(features, fired, before, after, answers);
    }

    @Override
    public NDArray loss(Batch batch, NDManager scope) {
        return prompt(batch, scope, true).answerLoss(llm.model());
    }

    /** The spliced prompt rows; with {@code withAnswers} false, left-padded for generation. */
    public PromptBatch prompt(Batch batch, NDManager scope, boolean withAnswers) {
        List<float[]> fired = cache != null ? batch.fired() : speech.fire(batch.features(), scope);
        long[] counts = new long[fired.size()];
        NDArray vectors = speech.adapt(fired, counts, scope);                          // (B, max L, D)
        List<List<Segment>> rows = new ArrayList<>();
        for (int i = 0; i < fired.size(); i++) {
            NDArray own = vectors.get(new ai.djl.ndarray.index.NDIndex("{}, 0:{}, :", i, counts[i]));
            List<Segment> row = new ArrayList<>(List.of(Segment.Text.prompt(batch.before().get(i)),
                    new Segment.Embeddings(own), Segment.Text.prompt(batch.after().get(i))));
            if (withAnswers) row.add(Segment.Text.answer(batch.answers().get(i)));
            rows.add(row);
        }
        return PromptBatch.build(llm.model(), rows, withAnswers ? PromptBatch.Padding.RIGHT : PromptBatch.Padding.LEFT, scope);
    }

    /** Frozen tensors the task uses (tests check they never change). */
    public List<NDArray> frozenTensorsForTest() {
        List<NDArray> frozen = new ArrayList<>(speech.frozenTensors());
        frozen.add(llm.model().tokenEmbedding());
        return frozen;
    }

    @Override
    public void close() {
        try {
            if (cache != null) cache.close();
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        } finally {
            speech.close();
            llm.close();
        }
    }

    @Override
    public JsonNode describe() {
        ObjectNode node = new ObjectMapper().createObjectNode();
        node.put("llm", llm.source().toString());
        node.put("speechInterface", speech.describe());
        node.put("promptTemplate", "<Speech>{speech}</Speech>Question: {instruction}\\n Answer:");
        node.put("spokenTurnTemplate", "the chat template's user turn with {speech} as its text");
        return node;
    }
}
