package xllm.speech;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Activation;
import ai.djl.nn.convolutional.Conv1d;
import ai.djl.nn.convolutional.Conv2d;
import ai.djl.nn.pooling.Pool;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The speech encoder of the CIF ASR model (paper Appendix A.3): a conv2d front end (k3, s2, no padding, ReLU; each
 * layer halves time and frequency), a linear to d, sinusoidal absolute positions added once (not the relative
 * positions of Gulati et al.: cheaper, and enough for utterances of seconds), then conformer blocks (Gulati et al.
 * 2020) and optional time max-pooling (k2, s2) after given blocks. The front-end output is scaled by √d before the
 * positions are added (ESPnet's {@code xscale}): at initialisation it is ~0.1 per dimension against the positions' ~0.7,
 * and without the scale the demo model's CTC loss stayed on its plateau ~4× longer (docs/asr.md).
 * <pre>
 *   x = x + ½·FFN₁(x)          FFN: LayerNorm → linear d→ffn → swish → linear ffn→d
 *   x = x + MHSA(LN(x))        key padding mask
 *   x = x + Conv(x)            LN → pointwise d→2d → GLU → depthwise k (padded frames zeroed first) → LN → swish → pointwise
 *   x = x + ½·FFN₂(x)
 *   x = LN(x)
 * </pre>
 * The convolution module normalises with LayerNorm where Gulati et al. use BatchNorm: batch statistics would make an
 * utterance's output depend on its batch (and on eval/train mode). No dropout. Padding invariance: a valid output
 * frame only ever sees valid input frames (front-end receptive fields end inside the utterance, attention keys and
 * depthwise-conv inputs past a row's length are masked/zeroed, pooling keeps floor(len/2) frames), which
 * {@code CifAsrModelTest} checks by comparing a batch with each utterance alone.
 *
 * <p>Tensors (names under the model's {@code asr.encoder.} prefix): {@code frontend.conv.N.{weight,bias}},
 * {@code frontend.linear.*}, {@code layers.N.{ffn1,ffn2}.{norm,linear1,linear2}.*},
 * {@code layers.N.attention.{norm,query,key,value,output}.*}, {@code layers.N.conv.{norm,pointwise1,depthwise,
 * depthwise_norm,pointwise2}.*}, {@code layers.N.final_norm.*}.
 */
public final class ConformerEncoder {

    /** @param hidden (B, U, d) frame vectors, padded frames unspecified; @param lengths valid frames per row */
    public record Encoded(NDArray hidden, long[] lengths) {}

    private final CifAsrConfig config;
    private final Map<String, NDArray> tensors;
    private final NDArray half;            // () 0.5: the macaron FFN weight, a live tensor (not mul(Number))
    private final NDArray attentionScale;  // () 1/√head_dim
    private final NDArray inputScale;      // () √d, ESPnet's xscale of the front-end output before the positions

    ConformerEncoder(CifAsrConfig config, Map<String, NDArray> tensors, NDManager manager) {
        this.config = config;
        this.tensors = Collections.unmodifiableMap(tensors);
        this.half = manager.create(0.5f);
        this.attentionScale = manager.create((float) (1.0 / Math.sqrt((double) config.modelDim() / config.encoderHeads())));
        this.inputScale = manager.create((float) Math.sqrt(config.modelDim()));
    }

    /** Feature bins left after the front end: each conv maps F to (F − 3)/2 + 1. */
    static long frontEndBins(CifAsrConfig config) {
        long bins = config.melBins();
        for (int i = 0; i < config.frontEndLayers(); i++) bins = (bins - 3) / 2 + 1;
        return bins;
    }

    /** Encoder frames for {@code frames} input frames. */
    public static long outputLength(CifAsrConfig config, long frames) {
        long length = frames;
        for (int i = 0; i < config.frontEndLayers(); i++) length = length < 3 ? 0 : (length - 3) / 2 + 1;
        for (int i = 0; i < config.poolAfter().size(); i++) length /= 2;
        return length;
    }

    static Map<String, Shape> expectedShapes(CifAsrConfig config) {
        Map<String, Shape> shapes = new LinkedHashMap<>();
        long channels = config.frontEndChannels(), d = config.modelDim(), ffn = config.encoderFfnDim();
        for (int i = 0; i < config.frontEndLayers(); i++) {
            shapes.put("frontend.conv." + i + ".weight", new Shape(channels, i == 0 ? 1 : channels, 3, 3));
            shapes.put("frontend.conv." + i + ".bias", new Shape(channels));
        }
        AsrLayers.linearShapes(shapes, "frontend.linear", d, channels * frontEndBins(config));
        for (int layer = 0; layer < config.encoderLayers(); layer++) {
            String p = "layers." + layer + ".";
            for (String ffnName : new String[] {"ffn1", "ffn2"}) {
                AsrLayers.normShapes(shapes, p + ffnName + ".norm", d);
                AsrLayers.linearShapes(shapes, p + ffnName + ".linear1", ffn, d);
                AsrLayers.linearShapes(shapes, p + ffnName + ".linear2", d, ffn);
            }
            AsrLayers.normShapes(shapes, p + "attention.norm", d);
            AsrLayers.attentionShapes(shapes, p + "attention.", d, d);
            AsrLayers.normShapes(shapes, p + "conv.norm", d);
            AsrLayers.linearShapes(shapes, p + "conv.pointwise1", 2 * d, d);
            shapes.put(p + "conv.depthwise.weight", new Shape(d, 1, config.convKernel()));
            shapes.put(p + "conv.depthwise.bias", new Shape(d));
            AsrLayers.normShapes(shapes, p + "conv.depthwise_norm", d);
            AsrLayers.linearShapes(shapes, p + "conv.pointwise2", d, d);
            AsrLayers.normShapes(shapes, p + "final_norm", d);
        }
        return shapes;
    }

    /**
     * @param features (B, T, melBins) CMVN-normalised fbank, rows padded (with anything) past lengths[b]
     * @param lengths  valid input frames per row
     */
    public Encoded forward(NDArray features, long[] lengths) {
        Shape shape = features.getShape();
        if (shape.dimension() != 3 || shape.get(2) != config.melBins() || shape.get(0) != lengths.length) {
            throw new IllegalArgumentException("features must be (" + lengths.length + ", T, " + config.melBins()
                    + "), got " + shape);
        }
        NDManager manager = features.getManager();
        long batch = shape.get(0);
        long[] frames = lengths.clone();

        // step 1: conv2d front end over (time, frequency), then a linear to d and the positions
        NDArray x = features.expandDims(1);                                                    // (B, 1, T, F)
        for (int i = 0; i < config.frontEndLayers(); i++) {
            x = Activation.relu(Conv2d.conv2d(x, tensors.get("frontend.conv." + i + ".weight"),
                    tensors.get("frontend.conv." + i + ".bias"), new Shape(2, 2), new Shape(0, 0), new Shape(1, 1), 1)
                    .singletonOrThrow());                                                      // (B, C, T', F')
            for (int b = 0; b < frames.length; b++) frames[b] = frames[b] < 3 ? 0 : (frames[b] - 3) / 2 + 1;
        }
        long time = x.getShape().get(2);
        x = x.transpose(0, 2, 1, 3).reshape(batch, time, -1);                                 // (B, U, C·F')
        x = AsrLayers.linear(x, tensors, "frontend.linear").mul(inputScale)                   // (B, U, d)
                .add(AsrLayers.sinusoidalPositions(time, config.modelDim(), manager));

        // step 2: conformer blocks, masks rebuilt after each pooling
        NDArray keyMask = AsrLayers.keyMask(frames, time, manager);                            // (B, 1, 1, U)
        NDArray frameMask = AsrLayers.frameMask(frames, time, manager);                        // (B, U, 1)
        for (int layer = 0; layer < config.encoderLayers(); layer++) {
            x = block(x, keyMask, frameMask, "layers." + layer + ".");
            if (config.poolAfter().contains(layer + 1)) {
                // step 3: max-pool time by 2; an odd last frame is dropped, as alone
                x = Pool.maxPool1d(x.transpose(0, 2, 1), new Shape(2), new Shape(2), new Shape(0), false)
                        .transpose(0, 2, 1);                                                   // (B, U/2, d)
                time = x.getShape().get(1);
                for (int b = 0; b < frames.length; b++) frames[b] /= 2;
                keyMask = AsrLayers.keyMask(frames, time, manager);
                frameMask = AsrLayers.frameMask(frames, time, manager);
            }
        }
        return new Encoded(x, frames);
    }

    private NDArray block(NDArray x, NDArray keyMask, NDArray frameMask, String p) {
        x = x.add(feedForward(x, p + "ffn1.").mul(half));
        NDArray normed = AsrLayers.layerNorm(x, tensors, p + "attention.norm");
        x = x.add(AsrLayers.attention(normed, normed, keyMask, tensors, p + "attention.", config.encoderHeads(),
                attentionScale));
        x = x.add(convolution(x, frameMask, p + "conv."));
        x = x.add(feedForward(x, p + "ffn2.").mul(half));
        return AsrLayers.layerNorm(x, tensors, p + "final_norm");
    }

    private NDArray feedForward(NDArray x, String p) {
        NDArray inner = AsrLayers.silu(AsrLayers.linear(AsrLayers.layerNorm(x, tensors, p + "norm"), tensors, p + "linear1"));
        return AsrLayers.linear(inner, tensors, p + "linear2");
    }

    private NDArray convolution(NDArray x, NDArray frameMask, String p) {
        NDArray y = AsrLayers.linear(AsrLayers.layerNorm(x, tensors, p + "norm"), tensors, p + "pointwise1"); // (B, U, 2d)
        ai.djl.ndarray.NDList halves = y.split(2, 2);
        y = halves.get(0).mul(Activation.sigmoid(halves.get(1))).mul(frameMask);              // GLU, padding zeroed
        int pad = config.convKernel() / 2;
        y = Conv1d.conv1d(y.transpose(0, 2, 1), tensors.get(p + "depthwise.weight"), tensors.get(p + "depthwise.bias"),
                new Shape(1), new Shape(pad), new Shape(1), config.modelDim()).singletonOrThrow()
                .transpose(0, 2, 1);                                                          // (B, U, d)
        y = AsrLayers.silu(AsrLayers.layerNorm(y, tensors, p + "depthwise_norm"));
        return AsrLayers.linear(y, tensors, p + "pointwise2");
    }
}
