package xllm.speech;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.core.Linear;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import xllm.tensor.HostTensor;
import xllm.tensor.Safetensors;
import xllm.tensor.SafetensorsWriter;
import xllm.tensor.TrainableParameter;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;

/**
 * The CIF-based ASR model of X-LLM's stage 1 (paper §3.2.1 and Appendix A.3): {@link ConformerEncoder} →
 * {@link CifPredictor} (CIF.md: α scaled to L + 1e-4 in training, tail 0.45 in inference) → non-autoregressive
 * {@link CifDecoder} → character logits ({@link CharVocabulary}). Features are Kaldi fbank normalised by the model's
 * global {@link Cmvn}. Its encoder and CIF become the frozen speech encoder of the speech interface
 * ({@link #encodeAndFire}).
 *
 * <p>Loss, every term per target token: the mean token cross-entropy over the L_b target characters of each row, plus
 * {@code quantityWeight} × the CIF quantity loss {@code Σ_b |Σα_b − L_b| / Σ_b L_b}, plus {@code ctcWeight} × a CTC
 * loss ({@link CtcLoss}, per token) of a linear head on the encoder ({@code asr.ctc.output.*}, vocabulary + blank;
 * training only) when the config has one. Paraformer sums each term per utterance, so its weights carry over. The
 * quantity loss per utterance beside a per-token cross-entropy (as this model had it first) weighted the fire count
 * ~35× more than the transcript: its gradient, 100× the others', set the clipped update direction and the demo model
 * stayed at the unigram plateau (docs/asr.md).
 * Greedy decoding: argmax at each fired token (the CTC head is not used for decoding).
 *
 * <p>Tensors are named {@code asr.encoder.*}, {@code asr.predictor.*} (FunASR's {@code cif_conv1d}/{@code cif_output})
 * and {@code asr.decoder.*}; {@code describe()} (config, vocabulary, CMVN) goes into the checkpoint's config.json
 * under {@code "model"}, so {@link #load(Path)} rebuilds the model from a StageRunner checkpoint directory, strictly.
 */
public final class CifAsrModel implements AutoCloseable {

    public static final String TYPE = "cif-asr";
    public static final String ENCODER = "asr.encoder.", PREDICTOR = "asr.predictor.", DECODER = "asr.decoder.",
            CTC = "asr.ctc.";

    /** Frozen-encoder output for the C-Former: (B, L, d) token vectors, row b's first counts[b] are real. */
    public record Fired(NDArray tokens, long[] counts) {}

    /**
     * total = tokenLoss + quantityWeight · quantityLoss + ctcWeight · ctcLoss; all scalars per target token, ctcLoss null
     * without CTC.
     */
    public record Losses(NDArray total, NDArray tokenLoss, NDArray quantityLoss, NDArray ctcLoss) {}

    /** A right-padded batch of (frames, melBins) features on the host: (B, T, F) row-major, zero past lengths[b]. */
    public record Padded(float[] values, int frames, long[] lengths) {
        public NDArray toArray(NDManager manager, int melBins) {
            return manager.create(values, new Shape(lengths.length, frames, melBins));
        }
    }

    private static final ObjectMapper JSON = new ObjectMapper();

    private final CifAsrConfig config;
    private final CharVocabulary vocabulary;
    private final Cmvn cmvn;
    private final Map<String, NDArray> tensors; // every tensor, by full name, in checkpoint order
    private final ConformerEncoder encoder;
    private final CifPredictor predictor;
    private final CifDecoder decoder;
    private final NDManager manager;
    private final boolean ownsManager;

    private CifAsrModel(CifAsrConfig config, CharVocabulary vocabulary, Cmvn cmvn, Map<String, NDArray> tensors,
                        NDManager manager, boolean ownsManager) {
        if (cmvn.dims() != config.melBins()) {
            throw new IllegalArgumentException("CMVN has " + cmvn.dims() + " dims, the model reads " + config.melBins());
        }
        this.config = config;
        this.vocabulary = vocabulary;
        this.cmvn = cmvn;
        this.tensors = tensors;
        this.manager = manager;
        this.ownsManager = ownsManager;
        this.encoder = new ConformerEncoder(config, strip(tensors, ENCODER), manager);
        this.predictor = CifPredictor.fromWeights(strip(tensors, PREDICTOR),
                new CifPredictor.Config(1.0, config.tailThreshold(), 1.0, 0.0), CifPredictor.Mode.XLLM);
        this.decoder = new CifDecoder(config, strip(tensors, DECODER), manager);
    }

    /** Every tensor name and shape, in checkpoint order. */
    public static Map<String, Shape> expectedShapes(CifAsrConfig config, int vocabularySize) {
        Map<String, Shape> shapes = new LinkedHashMap<>();
        ConformerEncoder.expectedShapes(config).forEach((k, v) -> shapes.put(ENCODER + k, v));
        predictorShapes(config).forEach((k, v) -> shapes.put(PREDICTOR + k, v));
        CifDecoder.expectedShapes(config, vocabularySize).forEach((k, v) -> shapes.put(DECODER + k, v));
        if (config.ctcWeight() > 0) {
            shapes.put(CTC + "output.weight", new Shape(vocabularySize + 1, config.modelDim())); // + blank (last id)
            shapes.put(CTC + "output.bias", new Shape(vocabularySize + 1));
        }
        return shapes;
    }

    private static Map<String, Shape> predictorShapes(CifAsrConfig config) {
        Map<String, Shape> shapes = new LinkedHashMap<>();
        long d = config.modelDim();
        shapes.put("cif_conv1d.weight", new Shape(d, d, 3));
        shapes.put("cif_conv1d.bias", new Shape(d));
        shapes.put("cif_output.weight", new Shape(1, d));
        shapes.put("cif_output.bias", new Shape(1));
        return shapes;
    }

    /** A fresh model (seeded; {@link AsrLayers#initialise} conventions) on {@code manager}, which the caller owns. */
    public static CifAsrModel initialise(CifAsrConfig config, CharVocabulary vocabulary, Cmvn cmvn, long seed,
                                         NDManager manager) {
        Map<String, NDArray> tensors = new LinkedHashMap<>();
        AsrLayers.initialise(prefixed(ConformerEncoder.expectedShapes(config), ENCODER), seed, manager).forEach(tensors::put);
        AsrLayers.initialise(prefixed(predictorShapes(config), PREDICTOR), seed + 1, manager).forEach(tensors::put);
        AsrLayers.initialise(prefixed(CifDecoder.expectedShapes(config, vocabulary.size()), DECODER), seed + 2, manager)
                .forEach(tensors::put);
        if (config.ctcWeight() > 0) {
            Map<String, Shape> ctc = new LinkedHashMap<>();
            AsrLayers.linearShapes(ctc, CTC + "output", vocabulary.size() + 1, config.modelDim());
            AsrLayers.initialise(ctc, seed + 3, manager).forEach(tensors::put);
        }
        return new CifAsrModel(config, vocabulary, cmvn, tensors, manager, false);
    }

    private static Map<String, Shape> prefixed(Map<String, Shape> shapes, String prefix) {
        Map<String, Shape> out = new LinkedHashMap<>();
        shapes.forEach((k, v) -> out.put(prefix + k, v));
        return out;
    }

    private static Map<String, NDArray> strip(Map<String, NDArray> tensors, String prefix) {
        Map<String, NDArray> out = new LinkedHashMap<>();
        tensors.forEach((k, v) -> {
            if (k.startsWith(prefix)) out.put(k.substring(prefix.length()), v);
        });
        return out;
    }

    public CifAsrConfig config() {
        return config;
    }

    public CharVocabulary vocabulary() {
        return vocabulary;
    }

    public Cmvn cmvn() {
        return cmvn;
    }

    /** The tensors themselves (not copies), by checkpoint name. */
    public Map<String, NDArray> tensors() {
        return java.util.Collections.unmodifiableMap(tensors);
    }

    /** Every tensor as a trainable parameter, updated in place by the optimiser. */
    public List<TrainableParameter> parameters() {
        List<TrainableParameter> out = new ArrayList<>();
        tensors.forEach((name, value) -> out.add(new TrainableParameter(name, value)));
        return out;
    }

    /**
     * Longest audio, in seconds, that can never make the CIF fire more than {@code tokens} tokens, judged before
     * anything runs. α is a sigmoid (≤ 1, the threshold), so U encoder frames fire at most floor(U + tail) tokens;
     * that stays ≤ tokens while U ≤ ceil(tokens + 1 − tail) − 1, and an encoder frame spans {@code subsampling}
     * fbank frames of 10 ms (the convolutions and pooling only shorten that).
     */
    public double maxSecondsFor(int tokens) {
        long frames = (long) Math.ceil(tokens + 1 - config.tailThreshold()) - 1;
        return frames * encoderFrameSeconds();
    }

    /** Seconds of audio per encoder frame: {@code subsampling} fbank frames of {@link Fbank#FRAME_SHIFT} samples. */
    public double encoderFrameSeconds() {
        return config.subsampling() * (double) Fbank.FRAME_SHIFT / Fbank.SAMPLE_RATE;
    }

    /** Smallest input (fbank frames) that leaves the encoder at least one frame. */
    public int minimumFrames() {
        int frames = 1;
        while (ConformerEncoder.outputLength(config, frames) < 1) frames++;
        return frames;
    }

    /** WAV → mono 16 kHz → Kaldi fbank → this model's CMVN; (frames, melBins). Too short for the encoder is an error. */
    public float[][] features(Path wav) throws IOException {
        float[][] fbank = fbank(wav);
        if (fbank.length < minimumFrames()) {
            throw new IOException(wav + ": " + fbank.length + " fbank frames (" + fbank.length * 10 + " ms); the encoder "
                    + "needs at least " + minimumFrames());
        }
        return cmvn.apply(fbank);
    }

    /** WAV → mono 16 kHz → Kaldi fbank (frames, 80), before CMVN. */
    public static float[][] fbank(Path wav) throws IOException {
        WavReader.Audio audio = WavReader.read(wav);
        float[] samples = audio.sampleRate() == Fbank.SAMPLE_RATE ? audio.samples()
                : Resampler.resample(audio.samples(), audio.sampleRate(), Fbank.SAMPLE_RATE);
        return Fbank.compute(samples);
    }

    /** Right-pads utterances (frames, melBins) with zeros into one row-major batch. */
    public static Padded pad(List<float[][]> utterances) {
        int frames = 0;
        for (float[][] u : utterances) frames = Math.max(frames, u.length);
        int bins = utterances.isEmpty() || utterances.get(0).length == 0 ? 0 : utterances.get(0)[0].length;
        float[] values = new float[utterances.size() * frames * bins];
        long[] lengths = new long[utterances.size()];
        for (int b = 0; b < utterances.size(); b++) {
            float[][] u = utterances.get(b);
            lengths[b] = u.length;
            for (int t = 0; t < u.length; t++) System.arraycopy(u[t], 0, values, (b * frames + t) * bins, bins);
        }
        return new Padded(values, frames, lengths);
    }

    /**
     * Training forward and loss. {@code features} (B, T, melBins) on a per-step manager, {@code targets[b]} the
     * vocabulary ids of row b (non-empty). The CIF is scaled so that exactly L_b tokens fire per row.
     */
    public Losses loss(NDArray features, long[] lengths, long[][] targets) {
        return loss(features, lengths, targets, null, null);
    }

    /** As {@link #loss(NDArray, long[], long[][])} with multimodal-ASR memories for the decoder (null = zero vector). */
    public Losses loss(NDArray features, long[] lengths, long[][] targets, CifDecoder.Memory visual,
                       CifDecoder.Memory linguistic) {
        NDManager scope = features.getManager();
        long[] targetLengths = new long[targets.length];
        int longest = 0, count = 0;
        for (int b = 0; b < targets.length; b++) {
            if (targets[b].length == 0) throw new IllegalArgumentException("row " + b + " has an empty target");
            targetLengths[b] = targets[b].length;
            longest = Math.max(longest, targets[b].length);
            count += targets[b].length;
        }
        // step 1: encoder, CIF scaled to the target lengths (quantity loss on the unscaled α), decoder
        TrainingForward forward = trainingForward(features, lengths, targetLengths, visual, linguistic);
        NDArray logits = forward.logits();                                                  // (B, L, V)
        CifPredictor.Output fired = forward.fired();
        // step 2: token cross-entropy over the real targets (a one-hot mask; padded positions are all-zero rows)
        int vocabularySize = vocabulary.size();
        float[] oneHot = new float[targets.length * longest * vocabularySize];
        for (int b = 0; b < targets.length; b++) {
            for (int k = 0; k < targets[b].length; k++) {
                oneHot[(b * longest + k) * vocabularySize + (int) targets[b][k]] = 1f;
            }
        }
        NDArray picked = logits.logSoftmax(-1).mul(scope.create(oneHot, new Shape(targets.length, longest, vocabularySize)))
                .sum();
        NDArray tokenLoss = picked.neg().div(scope.create((float) count));
        // step 3: plus the weighted quantity loss per target token, Σ_b |Σα_b − L_b| / Σ_b L_b, the unit of the token
        //         cross-entropy and the CTC loss (tensor operands owned by the scope, not mul(Number))
        NDArray quantityLoss = fired.quantityLoss().mul(scope.create((float) targets.length / count));
        NDArray total = tokenLoss.add(quantityLoss.mul(scope.create((float) config.quantityWeight())));
        // step 4: plus the weighted CTC loss of the encoder's own head (blank = the last class)
        NDArray ctcLoss = null;
        if (config.ctcWeight() > 0) {
            NDArray ctcLogits = Linear.linear(forward.encoded().hidden(), tensors.get(CTC + "output.weight"),
                    tensors.get(CTC + "output.bias")).singletonOrThrow();                   // (B, U, V + 1)
            ctcLoss = CtcLoss.loss(ctcLogits.logSoftmax(-1), forward.encoded().lengths(), targets, vocabularySize);
            total = total.add(ctcLoss.mul(scope.create((float) config.ctcWeight())));
        }
        return new Losses(total, tokenLoss, quantityLoss, ctcLoss);
    }

    private record TrainingForward(NDArray logits, CifPredictor.Output fired, ConformerEncoder.Encoded encoded) {}

    /** Decoder logits (B, max L_b, V) with the CIF scaled to {@code targetLengths} (teacher-forced token count). */
    public NDArray trainingLogits(NDArray features, long[] lengths, long[] targetLengths) {
        return trainingForward(features, lengths, targetLengths, null, null).logits();
    }

    private TrainingForward trainingForward(NDArray features, long[] lengths, long[] targetLengths,
                                            CifDecoder.Memory visual, CifDecoder.Memory linguistic) {
        ConformerEncoder.Encoded encoded = encoder.forward(features, lengths);
        for (int b = 0; b < lengths.length; b++) {
            if (encoded.lengths()[b] < 1) {
                throw new IllegalArgumentException("row " + b + ": " + lengths[b] + " frames leave no encoder frame (need "
                        + minimumFrames() + ")");
            }
        }
        CifPredictor.Output fired = predictor.train(encoded.hidden(), encoded.lengths(), targetLengths);
        return new TrainingForward(decoder.forward(fired.embeds(), targetLengths, visual, linguistic), fired,
                encoded);
    }

    /**
     * The frozen speech encoder of the speech interface: encoder + CIF in inference mode (tail handling), giving one
     * vector per fired token. {@code features} (B, T, melBins), results on its manager.
     */
    public Fired encodeAndFire(NDArray features, long[] lengths) {
        ConformerEncoder.Encoded encoded = encoder.forward(features, lengths);
        CifPredictor.Output fired = predictor.infer(encoded.hidden(), encoded.lengths());
        return new Fired(fired.embeds(), fired.tokenCounts());
    }

    /**
     * Encoder + CIF with α scaled to known token counts (training-time CIF, CIF.md): exactly targetLengths[b] vectors
     * per row, e.g. one per transcript token when a later stage trains on transcribed speech.
     */
    public Fired encodeAndFire(NDArray features, long[] lengths, long[] targetLengths) {
        ConformerEncoder.Encoded encoded = encoder.forward(features, lengths);
        CifPredictor.Output fired = predictor.train(encoded.hidden(), encoded.lengths(), targetLengths);
        return new Fired(fired.embeds(), fired.tokenCounts());
    }

    /** Inference logits (B, L, V) over the fired tokens, and the counts. */
    public NDArray inferenceLogits(Fired fired, CifDecoder.Memory visual, CifDecoder.Memory linguistic) {
        return decoder.forward(fired.tokens(), fired.counts(), visual, linguistic);
    }

    /** Greedy ids per row: argmax at each fired token. */
    public List<long[]> greedy(NDArray features, long[] lengths) {
        Fired fired = encodeAndFire(features, lengths);
        List<long[]> out = new ArrayList<>();
        long length = fired.tokens().getShape().get(1);
        if (length == 0) {
            for (int b = 0; b < lengths.length; b++) out.add(new long[0]);
            return out;
        }
        long[] best = inferenceLogits(fired, null, null).argMax(-1).toType(DataType.INT64, false).toLongArray(); // (B, L)
        for (int b = 0; b < lengths.length; b++) {
            out.add(Arrays.copyOfRange(best, (int) (b * length), (int) (b * length + fired.counts()[b])));
        }
        return out;
    }

    /** Transcripts of normalised feature utterances, decoded together as one batch. */
    public List<String> transcribeFeatures(List<float[][]> utterances) {
        try (NDManager scope = manager.newSubManager()) {
            Padded padded = pad(utterances);
            List<String> out = new ArrayList<>();
            for (long[] ids : greedy(padded.toArray(scope, config.melBins()), padded.lengths())) out.add(vocabulary.decode(ids));
            return out;
        }
    }

    /** Transcripts of WAV files, in batches of {@code batchSize}. */
    public List<String> transcribe(List<Path> wavs, int batchSize) throws IOException {
        List<String> out = new ArrayList<>();
        for (int i = 0; i < wavs.size(); i += batchSize) {
            List<float[][]> batch = new ArrayList<>();
            for (Path wav : wavs.subList(i, Math.min(wavs.size(), i + batchSize))) batch.add(features(wav));
            out.addAll(transcribeFeatures(batch));
        }
        return out;
    }

    public String transcribe(Path wav) throws IOException {
        return transcribe(List.of(wav), 1).get(0);
    }

    /** Everything that rebuilds the model besides its tensors: type, sizes, vocabulary, CMVN. */
    public ObjectNode describe() {
        ObjectNode node = JSON.createObjectNode();
        node.put("type", TYPE);
        node.set("config", JSON.valueToTree(config));
        node.set("vocabulary", vocabulary.toJson());
        node.set("cmvn", cmvn.toJson());
        return node;
    }

    /** Writes {@code dir/config.json} ({@code {"model": describe()}}) and {@code dir/model.safetensors}, as a checkpoint. */
    public void save(Path dir) throws IOException {
        Files.createDirectories(dir);
        ObjectNode root = JSON.createObjectNode();
        root.set("model", describe());
        Files.writeString(dir.resolve("config.json"), JSON.writerWithDefaultPrettyPrinter().writeValueAsString(root));
        List<HostTensor> host = new ArrayList<>();
        tensors.forEach((name, value) -> host.add(SafetensorsWriter.fromNDArray(name, value)));
        SafetensorsWriter.write(dir.resolve("model.safetensors"), host, Map.of("format", "pt"));
    }

    /** A checkpoint directory (StageRunner's or {@link #save}'s) on a manager this model owns and closes. */
    /** Whether {@code dir} holds a CIF ASR checkpoint (its config.json names model.type {@value #TYPE}). */
    public static boolean isCheckpoint(Path dir) {
        Path configFile = dir.resolve("config.json");
        if (!Files.isRegularFile(configFile)) return false;
        try {
            return TYPE.equals(JSON.readTree(configFile.toFile()).path("model").path("type").asText());
        } catch (IOException e) {
            return false;
        }
    }

    public static CifAsrModel load(Path dir) throws IOException {
        NDManager own = NDManager.newBaseManager();
        try {
            return load(dir, own, true);
        } catch (IOException | RuntimeException e) {
            own.close();
            throw e;
        }
    }

    /** As {@link #load(Path)} on the caller's manager. */
    public static CifAsrModel load(Path dir, NDManager manager) throws IOException {
        return load(dir, manager, false);
    }

    private static CifAsrModel load(Path dir, NDManager manager, boolean owns) throws IOException {
        Path configFile = dir.resolve("config.json");
        if (!Files.isRegularFile(configFile)) throw new IOException(dir + ": no config.json (not a checkpoint directory)");
        JsonNode model = JSON.readTree(configFile.toFile()).path("model");
        String where = configFile.toString();
        if (!TYPE.equals(model.path("type").asText())) {
            throw new IOException(where + ": model.type is '" + model.path("type").asText() + "', expected '" + TYPE + "'");
        }
        CifAsrConfig config;
        try {
            config = JSON.treeToValue(model.path("config"), CifAsrConfig.class);
        } catch (com.fasterxml.jackson.core.JsonProcessingException | IllegalArgumentException e) {
            throw new IOException(where + ": bad model.config: " + e.getMessage(), e);
        }
        CharVocabulary vocabulary = CharVocabulary.fromJson(model.path("vocabulary"), where);
        Cmvn cmvn = Cmvn.fromJson(model.path("cmvn"), where);
        Path weights = dir.resolve("model.safetensors");
        Map<String, Shape> expected = expectedShapes(config, vocabulary.size());
        Map<String, NDArray> tensors = new LinkedHashMap<>();
        try (Safetensors file = Safetensors.open(weights)) {
            TreeSet<String> unexpected = new TreeSet<>(file.names());
            unexpected.removeAll(expected.keySet());
            if (!unexpected.isEmpty()) throw new IOException(weights + ": unexpected tensors " + unexpected);
            for (var entry : expected.entrySet()) {
                if (!file.contains(entry.getKey())) throw new IOException(weights + ": missing tensor '" + entry.getKey() + "'");
                if (!Arrays.equals(file.shape(entry.getKey()), entry.getValue().getShape())) {
                    throw new IOException(weights + ": tensor '" + entry.getKey() + "' has shape "
                            + Arrays.toString(file.shape(entry.getKey())) + ", expected " + entry.getValue());
                }
                tensors.put(entry.getKey(), file.get(entry.getKey()).toFloatNDArray(manager));
            }
        }
        return new CifAsrModel(config, vocabulary, cmvn, tensors, manager, owns);
    }

    @Override
    public void close() {
        if (ownsManager) manager.close();
    }
}
