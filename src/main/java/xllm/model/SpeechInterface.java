package xllm.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import xllm.speech.CifAsrModel;
import xllm.speech.WavReader;
import xllm.tensor.TrainableParameter;
import xllm.x2l.BertEncoder;
import xllm.x2l.LinearAdapter;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * The paper's speech interface (§3.1, Fig. 1): the frozen encoder and CIF of the stage-1 ASR model turn an utterance
 * into one vector per fired token (their number comes from the CIF weights alone), the C-Former's transformer (a
 * BERT encoder, initialised from a BERT checkpoint) refines them, and the S-Adapter maps them to the LLM width.
 * The ASR encoder's width d (144 at demo size) differs from BERT's H (384), so a linear input projection d → H
 * sits in front of the BERT layers.
 *
 * <p>Parameter names: {@code speechInterface.cformer.input_proj.{weight,bias}},
 * {@code speechInterface.cformer.<BertModel encoder name>}, {@code speechInterface.adapter.{weight,bias}}. The
 * frozen ASR model's tensors are not parameters.
 */
public final class SpeechInterface implements AutoCloseable {

    /** Feature-cache and checkpoint prefix. */
    public static final String PREFIX = "speechInterface.";

    private final CifAsrModel asr;
    private final String asrIdentity;
    private final LinearAdapter inputProjection;
    private final BertEncoder bert;
    private final LinearAdapter adapter;

    private SpeechInterface(CifAsrModel asr, String asrIdentity, LinearAdapter inputProjection, BertEncoder bert,
                            LinearAdapter adapter) {
        this.asr = asr;
        this.asrIdentity = asrIdentity;
        this.inputProjection = inputProjection;
        this.bert = bert;
        this.adapter = adapter;
    }

    /** C-Former transformer sizes: tiny for tests, demo = all-MiniLM-L6-v2's shape, full = the paper's 12-layer BERT. */
    public static BertEncoder.Config bertConfig(String size) {
        return switch (size) {
            case "tiny" -> new BertEncoder.Config(32, 2, 4, 64, 512, 2, 1e-12);
            case "demo" -> new BertEncoder.Config(384, 6, 12, 1536, 512, 2, 1e-12);
            case "full" -> new BertEncoder.Config(768, 12, 12, 3072, 512, 2, 1e-12);
            default -> throw new IllegalArgumentException("unknown interface size '" + size + "'");
        };
    }

    /**
     * @param asrCheckpoint a convert-asr checkpoint dir (its encoder + CIF become the frozen speech encoder)
     * @param bertInit      BERT checkpoint dir for the transformer, or null for BERT's random init
     */
    public static SpeechInterface create(Path asrCheckpoint, String size, Path bertInit, int llmWidth, long seed,
                                         NDManager manager) throws IOException {
        CifAsrModel asr = CifAsrModel.load(asrCheckpoint, manager);
        try {
            BertEncoder.Config config = bertConfig(size);
            BertEncoder bert;
            if (bertInit != null) {
                bert = BertEncoder.fromBert(bertInit, manager);
                if (!bert.config().equals(config)) {
                    throw new IllegalArgumentException(bertInit + ": BERT " + bert.config() + " does not have the " + size
                            + " C-Former shape " + config);
                }
            } else {
                bert = BertEncoder.initialise(config, seed, manager);
            }
            manager.getEngine().setRandomSeed((int) seed);
            LinearAdapter projection = LinearAdapter.initialise(PREFIX + "cformer.input_proj", asr.config().modelDim(),
                    config.hiddenSize(), manager, DataType.FLOAT32);
            LinearAdapter adapter = LinearAdapter.initialise(PREFIX + "adapter", config.hiddenSize(), llmWidth, manager,
                    DataType.FLOAT32);
            String identity = "cif-asr " + asrCheckpoint.toAbsolutePath().normalize() + " sha256="
                    + xllm.tensor.FileDigest.sha256(asrCheckpoint.resolve("model.safetensors"));
            return new SpeechInterface(asr, identity, projection, bert, adapter);
        } catch (IOException | RuntimeException e) {
            asr.close();
            throw e;
        }
    }

    /**
     * WAV → normalised fbank (frames, 80) of the frozen ASR front end; CPU only, safe on a loader thread. Audio
     * longer than {@link #maxSeconds()} is refused from its header, before it is decoded or reaches the encoder.
     */
    public float[][] features(Path wav) throws IOException {
        double seconds = WavReader.info(wav).seconds();
        if (seconds > maxSeconds()) {
            throw new IOException(String.format(Locale.ROOT, "%s: audio lasts %.2f s, over the %.2f s the speech "
                            + "interface takes (%d C-Former positions, at most one CIF token per %.0f ms encoder frame)",
                    wav, seconds, maxSeconds(), bert.config().maxPositionEmbeddings(), asr.encoderFrameSeconds() * 1000));
        }
        return asr.features(wav);
    }

    /** Longest utterance, in seconds, whose CIF tokens always fit the C-Former's position embeddings. */
    public double maxSeconds() {
        return asr.maxSecondsFor(bert.config().maxPositionEmbeddings());
    }

    /** Width of the frozen CIF token vectors (what the feature cache stores per token). */
    public int firedWidth() {
        return asr.config().modelDim();
    }

    /**
     * Frozen encoder + CIF over a batch of utterances: one host array (L_b, d) per utterance, L_b = the number of
     * fired tokens (possibly 0).
     */
    public List<float[]> fire(List<float[][]> utterances, NDManager scope) {
        try (NDManager local = scope.newSubManager()) {
            CifAsrModel.Padded padded = CifAsrModel.pad(utterances);
            CifAsrModel.Fired fired = asr.encodeAndFire(padded.toArray(local, asr.config().melBins()), padded.lengths());
            long length = fired.tokens().getShape().get(1);
            int width = firedWidth();
            float[] all = length == 0 ? new float[0] : fired.tokens().toFloatArray();
            List<float[]> out = new ArrayList<>();
            for (int b = 0; b < utterances.size(); b++) {
                int count = (int) fired.counts()[b];
                float[] row = new float[count * width];
                System.arraycopy(all, (int) (b * length * width), row, 0, row.length);
                out.add(row);
            }
            return out;
        }
    }

    /**
     * Trainable part: per-utterance fired tokens (L_b·d floats each) → (B, max L, D) LLM embeddings; rows are valid
     * up to their own L_b (returned in {@code counts}).
     */
    public NDArray adapt(List<float[]> fired, long[] counts, NDManager scope) {
        int width = firedWidth();
        int batch = fired.size();
        long longest = 0;
        for (int b = 0; b < batch; b++) {
            counts[b] = fired.get(b).length / width;
            longest = Math.max(longest, counts[b]);
        }
        if (longest == 0) return scope.zeros(new Shape(batch, 0, adapter.outputWidth()));
        float[] padded = new float[(int) (batch * longest * width)];
        for (int b = 0; b < batch; b++) System.arraycopy(fired.get(b), 0, padded, (int) (b * longest * width), fired.get(b).length);
        NDArray tokens = scope.create(padded, new Shape(batch, longest, width));
        return adapter.forward(bert.forward(inputProjection.forward(tokens), counts));
    }

    public List<TrainableParameter> parameters() {
        List<TrainableParameter> all = new ArrayList<>(inputProjection.parameters());
        all.addAll(bert.parameters(PREFIX + "cformer."));
        all.addAll(adapter.parameters());
        return all;
    }

    /** The frozen ASR model's tensors (tests check they never change). */
    public List<NDArray> frozenTensors() {
        return new ArrayList<>(asr.tensors().values());
    }

    /** Identity of the frozen encoder + CIF for the feature cache. */
    public String fingerprint() {
        return xllm.tensor.Fingerprint.of(asrIdentity + " fired tokens width " + firedWidth(), List.of());
    }

    public String describe() {
        return asrIdentity + " encoder + CIF (frozen) → C-Former (input projection + BERT " + bert.config()
                + ") → linear S-adapter";
    }

    @Override
    public void close() {
        asr.close();
    }
}
