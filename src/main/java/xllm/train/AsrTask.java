package xllm.train;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import com.fasterxml.jackson.databind.JsonNode;
import xllm.data.AsrSample;
import xllm.speech.CharVocabulary;
import xllm.speech.CifAsrConfig;
import xllm.speech.CifAsrModel;
import xllm.speech.Cmvn;
import xllm.speech.SpecAugment;
import xllm.train.StageConfig;
import xllm.tensor.TrainableParameter;
import xllm.train.TrainingTask;

import java.io.IOException;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Stage 1 speech training ({@code stage: convert-asr}, paper §3.2.1): the whole {@link CifAsrModel} trains on an ASR
 * manifest ({@link AsrSample}). {@code prepare} (background thread) reads each WAV, resamples to 16 kHz, computes
 * fbank, applies the model's CMVN and, for training batches (unless the recipe sets {@code model.specAugment: false}), {@link SpecAugment} seeded by the micro-batch seed; the
 * loss is the model's token cross-entropy + quantity loss. The vocabulary and CMVN are derived from the training
 * manifest when the task is created (deterministically, so a resumed run rebuilds the same ones) and are recorded in
 * {@link #describe()}, which is what {@link CifAsrModel#load} reads back.
 */
public final class AsrTask implements TrainingTask<AsrSample, AsrTask.Batch> {

    /** Utterances whose fbank frames give the CMVN statistics (evenly spaced over the training manifest). */
    public static final int CMVN_UTTERANCES = 500;

    /** A prepared micro-batch: padded normalised (maybe masked) features and each row's target ids. */
    public record Batch(CifAsrModel.Padded features, long[][] targets) {}

    private final CifAsrModel model;
    private final List<AsrSample> train;
    private final List<AsrSample> eval;
    private final SpecAugment augment;
    private final Map<String, Double> terms = new LinkedHashMap<>(); // loss-term sums since the last takeLossTerms
    private int termCalls;

    public AsrTask(CifAsrModel model, List<AsrSample> train, List<AsrSample> eval, SpecAugment augment) {
        this.model = model;
        this.train = train;
        this.eval = eval;
        this.augment = augment;
    }

    /** The task a convert-asr recipe describes: manifests, vocabulary and CMVN from data.train, a fresh model. */
    public static AsrTask create(StageConfig config, NDManager manager) throws IOException {
        List<AsrSample> train = AsrSample.readManifest(config.data().train());
        List<AsrSample> eval = config.data().eval() == null ? List.of() : AsrSample.readManifest(config.data().eval());
        List<String> transcripts = new ArrayList<>();
        for (AsrSample s : train) transcripts.add(s.text());
        CharVocabulary vocabulary = CharVocabulary.build(transcripts);
        Cmvn cmvn = cmvnOf(train, CMVN_UTTERANCES);
        CifAsrModel model = CifAsrModel.initialise(sizeConfig(config.model().size()), vocabulary, cmvn, config.seed(), manager);
        return new AsrTask(model, train, eval, config.model().specAugment() ? SpecAugment.DEFAULT : null);
    }

    public static CifAsrConfig sizeConfig(StageConfig.ModelSize size) {
        return switch (size) {
            case TINY -> CifAsrConfig.tiny();
            case DEMO -> CifAsrConfig.demo();
            case FULL -> CifAsrConfig.full();
        };
    }

    /** CMVN over at most {@code limit} utterances spread evenly over {@code samples}. */
    public static Cmvn cmvnOf(List<AsrSample> samples, int limit) throws IOException {
        List<float[][]> utterances = new ArrayList<>();
        int count = Math.min(limit, samples.size());
        for (int i = 0; i < count; i++) utterances.add(CifAsrModel.fbank(samples.get((int) ((long) i * samples.size() / count)).audio()));
        return Cmvn.compute(utterances);
    }

    public CifAsrModel model() {
        return model;
    }

    @Override
    public List<TrainableParameter> parameters() {
        return model.parameters();
    }

    @Override
    public List<AsrSample> trainSamples() {
        return train;
    }

    @Override
    public List<AsrSample> evalSamples() {
        return eval;
    }

    @Override
    public Batch prepare(List<AsrSample> samples, boolean training, long seed) throws IOException {
        List<float[][]> features = new ArrayList<>();
        long[][] targets = new long[samples.size()][];
        for (int i = 0; i < samples.size(); i++) {
            AsrSample s = samples.get(i);
            float[][] utterance = model.features(s.audio());
            if (training && augment != null) utterance = augment.apply(utterance, seed * 1_000_003L + i);
            features.add(utterance);
            targets[i] = model.vocabulary().encode(s.text());
            if (targets[i].length == 0) throw new IOException("sample '" + s.id() + "': empty transcript after normalisation");
        }
        return new Batch(CifAsrModel.pad(features), targets);
    }

    @Override
    public NDArray loss(Batch batch, NDManager scope) {
        CifAsrModel.Losses losses = model.loss(batch.features().toArray(scope, model.config().melBins()),
                batch.features().lengths(), batch.targets());
        terms.merge("ce", (double) losses.tokenLoss().getFloat(), Double::sum);
        terms.merge("quantity", (double) losses.quantityLoss().getFloat(), Double::sum);
        if (losses.ctcLoss() != null) terms.merge("ctc", (double) losses.ctcLoss().getFloat(), Double::sum);
        termCalls++;
        return losses.total();
    }

    @Override
    public Map<String, Double> takeLossTerms() {
        Map<String, Double> out = new LinkedHashMap<>();
        int calls = termCalls;
        terms.forEach((name, sum) -> out.put(name, sum / calls));
        terms.clear();
        termCalls = 0;
        return out;
    }

    @Override
    public JsonNode describe() {
        return model.describe();
    }
}
