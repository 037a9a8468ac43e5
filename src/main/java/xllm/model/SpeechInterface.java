package xllm.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import xllm.hub.ModelStore;
import xllm.speech.CifAsrModel;
import xllm.speech.WavReader;
import xllm.tensor.FileDigest;
import xllm.tensor.Fingerprint;
import xllm.tensor.TrainableParameter;
import xllm.x2l.BertEncoder;
import xllm.x2l.CFormer;
import xllm.x2l.LinearAdapter;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * The paper's speech interface (§3.1, Fig. 1): the frozen encoder of the stage-1 CIF ASR model, its CIF turning the
 * frames into one vector per fired token (their number comes from the CIF weights alone), the {@link CFormer}'s
 * transformer refining them, and the S-Adapter mapping them to the LLM width.
 *
 * <p>Parameter names: {@code speechInterface.cformer.input_proj.{weight,bias}},
 * {@code speechInterface.cformer.<BertModel encoder name>}, {@code speechInterface.adapter.{weight,bias}}. The frozen
 * ASR model's tensors are not parameters.
 */
public final class SpeechInterface implements ModalityInterface {

    static final String PREFIX = Modality.SPEECH.parameterPrefix();

    private final String source;
    private final CifAsrModel asr;
    private final String identity;
    private final CFormer cformer;
    private final LinearAdapter adapter; // the S-Adapter

    private SpeechInterface(String source, CifAsrModel asr, String identity, CFormer cformer, LinearAdapter adapter) {
        this.source = source;
        this.asr = asr;
        this.identity = identity;
        this.cformer = cformer;
        this.adapter = adapter;
    }

    /** C-Former transformer sizes: tiny for tests, demo = all-MiniLM-L6-v2's shape, full = the paper's 12-layer BERT. */
    public static BertEncoder.Config cformerConfig(String size) {
        return switch (size) {
            case "tiny" -> new BertEncoder.Config(32, 2, 4, 64, 512, 2, 1e-12);
            case "demo" -> new BertEncoder.Config(384, 6, 12, 1536, 512, 2, 1e-12);
            case "full" -> new BertEncoder.Config(768, 12, 12, 3072, 512, 2, 1e-12);
            default -> throw new IllegalArgumentException("unknown interface size '" + size + "'");
        };
    }

    /**
     * @param asrCheckpoint a convert-asr checkpoint (model-store name or dir): its encoder + CIF are the frozen part
     * @param bertInit      BERT checkpoint dir for the C-Former's transformer, or null for BERT's random init
     */
    public static SpeechInterface create(String asrCheckpoint, BertEncoder.Config cformer, Path bertInit, int llmWidth,
                                         long seed, NDManager manager) throws IOException {
        Path dir = ModelStore.defaultStore().resolve(asrCheckpoint);
        CifAsrModel asr = CifAsrModel.load(dir, manager);
        try {
            CFormer former = CFormer.initialise(PREFIX + "cformer", asr.config().modelDim(), cformer, bertInit, seed, manager);
            LinearAdapter adapter = LinearAdapter.initialise(PREFIX + "adapter", cformer.hiddenSize(), llmWidth, manager,
                    ai.djl.ndarray.types.DataType.FLOAT32);
            String identity = "cif-asr sha256=" + FileDigest.sha256(dir.resolve("model.safetensors"));
            return new SpeechInterface(asrCheckpoint, asr, identity, former, adapter);
        } catch (IOException | RuntimeException e) {
            asr.close();
            throw e;
        }
    }

    static SpeechInterface create(InterfaceConfig.Speech config, NDManager manager) throws IOException {
        return create(config.source(), config.cformer(), null, config.llmWidth(), 0, manager);
    }

    @Override
    public Modality modality() {
        return Modality.SPEECH;
    }

    /**
     * WAV → normalised fbank (frames, 80) of the frozen ASR front end. Audio longer than {@link #maxSeconds()} is
     * refused from its header, before it is decoded.
     */
    @Override
    public Features prepare(Path wav) throws IOException {
        double seconds = WavReader.info(wav).seconds();
        if (seconds > maxSeconds()) {
            throw new IOException(String.format(Locale.ROOT, "%s: audio lasts %.2f s, over the %.2f s the speech "
                            + "interface takes (%d C-Former positions, at most one CIF token per %.0f ms encoder frame)",
                    wav, seconds, maxSeconds(), cformer.config().maxPositionEmbeddings(), asr.encoderFrameSeconds() * 1000));
        }
        float[][] fbank = asr.features(wav);
        int bins = asr.config().melBins();
        float[] flat = new float[fbank.length * bins];
        for (int t = 0; t < fbank.length; t++) System.arraycopy(fbank[t], 0, flat, t * bins, bins);
        return new Features(flat, new long[] {fbank.length, bins});
    }

    /** Longest utterance, in seconds, whose CIF tokens always fit the C-Former's position embeddings. */
    public double maxSeconds() {
        return asr.maxSecondsFor(cformer.config().maxPositionEmbeddings());
    }

    /** Frozen encoder + CIF: one (L_b, d) host array per utterance, L_b its number of fired tokens (possibly 0). */
    @Override
    public List<Features> encode(List<Features> prepared, NDManager scope) {
        int bins = asr.config().melBins();
        List<float[][]> utterances = new ArrayList<>();
        for (Features f : prepared) {
            float[][] frames = new float[(int) f.shape()[0]][bins];
            for (int t = 0; t < frames.length; t++) System.arraycopy(f.values(), t * bins, frames[t], 0, bins);
            utterances.add(frames);
        }
        try (NDManager local = scope.newSubManager()) {
            CifAsrModel.Padded padded = CifAsrModel.pad(utterances);
            CifAsrModel.Fired fired = asr.encodeAndFire(padded.toArray(local, bins), padded.lengths());
            long length = fired.tokens().getShape().get(1);
            int width = tokenWidth();
            float[] all = length == 0 ? new float[0] : fired.tokens().toFloatArray();
            List<Features> out = new ArrayList<>();
            for (int b = 0; b < utterances.size(); b++) {
                int count = (int) fired.counts()[b];
                float[] row = new float[count * width];
                System.arraycopy(all, (int) (b * length * width), row, 0, row.length);
                out.add(new Features(row, new long[] {count, width}));
            }
            return out;
        }
    }

    /** Width d of the fired CIF tokens. */
    public int tokenWidth() {
        return asr.config().modelDim();
    }

    /** Fired tokens (L_b, d) per utterance → C-Former → S-Adapter: (L_b, D) per utterance. */
    @Override
    public List<NDArray> adapt(List<Features> encoded, NDManager scope) {
        int width = tokenWidth();
        int batch = encoded.size();
        long[] counts = new long[batch];
        long longest = 0;
        for (int b = 0; b < batch; b++) {
            counts[b] = encoded.get(b).length();
            longest = Math.max(longest, counts[b]);
        }
        List<NDArray> out = new ArrayList<>();
        if (longest == 0) {
            for (int b = 0; b < batch; b++) out.add(scope.zeros(new Shape(0, adapter.outputWidth())));
            return out;
        }
        float[] padded = new float[(int) (batch * longest * width)];
        for (int b = 0; b < batch; b++) {
            System.arraycopy(encoded.get(b).values(), 0, padded, (int) (b * longest * width), encoded.get(b).values().length);
        }
        NDArray tokens = scope.create(padded, new Shape(batch, longest, width));
        NDArray vectors = adapter.forward(cformer.forward(tokens, counts));               // (B, max L, D)
        for (int b = 0; b < batch; b++) {
            out.add(vectors.get(new ai.djl.ndarray.index.NDIndex("{}, 0:{}, :", b, counts[b])));
        }
        return out;
    }

    @Override
    public List<TrainableParameter> parameters() {
        List<TrainableParameter> all = new ArrayList<>(cformer.parameters());
        all.addAll(adapter.parameters());
        return all;
    }

    @Override
    public List<NDArray> frozenTensors() {
        return new ArrayList<>(asr.tensors().values());
    }

    @Override
    public String fingerprint() {
        return Fingerprint.of(identity + " fired tokens width " + tokenWidth(), List.of());
    }

    @Override
    public InterfaceConfig.Speech config() {
        return new InterfaceConfig.Speech(source, identity, tokenWidth(), cformer.config(), adapter.outputWidth());
    }

    @Override
    public void close() {
        asr.close();
    }
}
