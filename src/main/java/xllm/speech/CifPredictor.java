package xllm.speech;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Activation;
import ai.djl.nn.convolutional.Conv1d;
import ai.djl.nn.core.Linear;
import xllm.tensor.TrainableParameter;

import java.util.List;
import java.util.Map;
import java.util.TreeSet;

/**
 * The CIF weight predictor of Paraformer (FunASR {@code CifPredictorV2}, funasr/models/paraformer/cif_predictor.py
 * @ 57f97776; the CIF paper's §2 module has the same shape) followed by {@link Cif} integration:
 * <pre>
 *   x = h with padded frames zeroed                     (B, U, D)   FunASR does not zero them; batch-dependent
 *   c = relu(conv1d(x, D→D, k=3, pad 1))                (B, U, D)
 *   α = relu(sigmoid(linear(c, D→1))·smooth − noise)·mask   (B, U)
 * </pre>
 * Training (target lengths L known): quantity loss {@code mean_b |Σα_b − L_b|} on the unscaled α, then
 * {@code α ← α·(L_b + 1e-4)/Σα_b} (not detached) so that exactly L_b tokens fire (FunASR's exact {@code L_b/Σα_b}
 * loses the last token to rounding in a fifth to a half of utterances; {@link Mode#FUNASR_EXACT} keeps it for parity).
 * Inference: FunASR's {@code tail_process_fn} — a zero frame appended, {@code tailThreshold} added to α at index
 * len_b of each row, {@code floor(Σα)} tokens. Matched against FunASR outputs through the {@code predictor_v2}
 * fixtures in {@code CifPredictorTest} (≤ 1e-5). Parameter names {@code cif_conv1d.{weight,bias}},
 * {@code cif_output.{weight,bias}} as FunASR's checkpoints.
 */
public final class CifPredictor {

    /** How training scales α and where tokens fire. */
    public enum Mode {
        /** Scale to L_b + 1e-4 and fire on the float64 prefix sum: exactly L_b tokens. */
        XLLM,
        /** FunASR as it is: scale to L_b exactly and fire on cif_v1's float32-rounded prefix sum. For parity tests. */
        FUNASR_EXACT
    }

    /** Added to every target length when scaling α (see the class comment). */
    public static final double LENGTH_MARGIN = 1e-4;

    /**
     * @param threshold      integrate-and-fire threshold (1.0)
     * @param tailThreshold  α added at the first padded frame in inference (0.45); 0 turns tail handling off
     * @param smoothFactor   α multiplier before the noise threshold (1.0)
     * @param noiseThreshold subtracted from α before the ReLU (0.0)
     */
    public record Config(double threshold, double tailThreshold, double smoothFactor, double noiseThreshold) {
        public static Config paraformer() {
            return new Config(1.0, 0.45, 1.0, 0.0);
        }
    }

    /**
     * @param embeds      (B, L, D) one vector per token; L = max target length in training, max tokenCounts in inference
     * @param alphas      (B, U) the α that was integrated (scaled in training; (B, U+1) with the tail in inference)
     * @param fires       fire trace of {@link Cif.Result#fires()}, same shape as alphas
     * @param tokenCounts tokens that fired per row
     * @param tokenNum    (B) FunASR's token_num: Σα before scaling in training, floor(Σα) with the tail in inference
     * @param quantityLoss scalar {@code mean_b |Σα_b − L_b|} in training, null in inference
     */
    public record Output(NDArray embeds, NDArray alphas, NDArray fires, long[] tokenCounts, NDArray tokenNum,
                         NDArray quantityLoss) {}

    private final NDArray convWeight;   // (D, D, 3)
    private final NDArray convBias;     // (D)
    private final NDArray outputWeight; // (1, D)
    private final NDArray outputBias;   // (1)
    private final Config config;
    private final Mode mode;

    public CifPredictor(NDArray convWeight, NDArray convBias, NDArray outputWeight, NDArray outputBias, Config config,
                        Mode mode) {
        long width = convWeight.getShape().get(0);
        if (!convWeight.getShape().equals(new Shape(width, width, 3)) || !convBias.getShape().equals(new Shape(width))
                || !outputWeight.getShape().equals(new Shape(1, width)) || !outputBias.getShape().equals(new Shape(1))) {
            throw new IllegalArgumentException("CIF predictor shapes: conv " + convWeight.getShape() + " "
                    + convBias.getShape() + ", output " + outputWeight.getShape() + " " + outputBias.getShape());
        }
        this.convWeight = convWeight;
        this.convBias = convBias;
        this.outputWeight = outputWeight;
        this.outputBias = outputBias;
        this.config = config;
        this.mode = mode;
    }

    /** From FunASR-named tensors; a missing or unknown name is an error. */
    public static CifPredictor fromWeights(Map<String, NDArray> weights, Config config, Mode mode) {
        TreeSet<String> expected = new TreeSet<>(List.of("cif_conv1d.weight", "cif_conv1d.bias", "cif_output.weight",
                "cif_output.bias"));
        if (!expected.equals(new TreeSet<>(weights.keySet()))) {
            throw new IllegalArgumentException("CIF predictor weights: expected " + expected + ", got "
                    + new TreeSet<>(weights.keySet()));
        }
        return new CifPredictor(weights.get("cif_conv1d.weight"), weights.get("cif_conv1d.bias"),
                weights.get("cif_output.weight"), weights.get("cif_output.bias"), config, mode);
    }

    /** torch's default init (uniform ±1/√fan_in for weights and biases) from the manager's seeded RNG. */
    public static CifPredictor initialise(int width, NDManager manager, DataType type, Config config) {
        float convBound = (float) (1.0 / Math.sqrt(3.0 * width));
        float outputBound = (float) (1.0 / Math.sqrt(width));
        return new CifPredictor(
                manager.randomUniform(-convBound, convBound, new Shape(width, width, 3), type),
                manager.randomUniform(-convBound, convBound, new Shape(width), type),
                manager.randomUniform(-outputBound, outputBound, new Shape(1, width), type),
                manager.randomUniform(-outputBound, outputBound, new Shape(1), type), config, Mode.XLLM);
    }

    public List<TrainableParameter> parameters() {
        return List.of(new TrainableParameter("cif_conv1d.weight", convWeight),
                new TrainableParameter("cif_conv1d.bias", convBias),
                new TrainableParameter("cif_output.weight", outputWeight),
                new TrainableParameter("cif_output.bias", outputBias));
    }

    /** Unscaled α (B, U), zero at padded frames; hidden (B, U, D), lengths[b] ≤ U valid frames. */
    public NDArray alphas(NDArray hidden, long[] lengths) {
        return alphas(zeroPadding(hidden, lengths), frameMask(hidden, lengths));
    }

    /**
     * Training: the decoder gets max_b L_b tokens; exactly L_b of row b are non-zero in {@link Mode#XLLM}. hidden
     * (B, U, D), lengths[b] in 1..U valid frames, targetLengths[b] = L_b.
     */
    public Output train(NDArray hidden, long[] lengths, long[] targetLengths) {
        NDManager manager = hidden.getManager();
        DataType type = hidden.getDataType();
        int batch = (int) hidden.getShape().get(0);
        if (targetLengths.length != batch) throw new IllegalArgumentException("one target length per row");
        for (long length : lengths) {
            if (length < 1) throw new IllegalArgumentException("every row needs a frame to scale α (got length " + length + ")");
        }

        // step 1: α from the zero-padded frames; quantity loss on the unscaled sums
        NDArray x = zeroPadding(hidden, lengths);
        NDArray alphas = alphas(x, frameMask(hidden, lengths));                   // (B, U)
        NDArray sums = alphas.sum(new int[] {1});                                 // (B)
        double[] targets = new double[batch];
        double[] scaledTargets = new double[batch];
        long longest = 0;
        for (int b = 0; b < batch; b++) {
            targets[b] = targetLengths[b];
            scaledTargets[b] = targetLengths[b] + (mode == Mode.XLLM ? LENGTH_MARGIN : 0);
            longest = Math.max(longest, targetLengths[b]);
        }
        NDArray target = manager.create(targets).toType(type, false);                  // (B)
        NDArray quantityLoss = sums.sub(target).abs().mean();

        // step 2: scale each row to its target (differentiable: the decoder's loss reaches the predictor through it)
        NDArray scaledTarget = manager.create(scaledTargets).toType(type, false);      // (B)
        NDArray scaled = alphas.mul(scaledTarget.div(sums).expandDims(1));            // (B, U)

        // step 3: integrate and fire
        Cif.Result result = Cif.integrate(x, scaled, config.threshold(), prefixSum());
        return new Output(fitLength(result.embeds(), longest), scaled, result.fires(), result.fireCounts(), sums,
                quantityLoss);
    }

    /** Inference with FunASR's tail handling: floor(Σα + tail) tokens per row. */
    public Output infer(NDArray hidden, long[] lengths) {
        NDManager manager = hidden.getManager();
        DataType type = hidden.getDataType();
        Shape shape = hidden.getShape();
        int batch = (int) shape.get(0), frames = (int) shape.get(1);

        // step 1: α from the zero-padded frames
        NDArray x = zeroPadding(hidden, lengths);
        NDArray alphas = alphas(x, frameMask(hidden, lengths));                   // (B, U)

        // step 2: the tail — one zero frame appended, tailThreshold added at index len_b (FunASR #72/#73)
        if (config.tailThreshold() > 0) {
            double[] tail = new double[batch * (frames + 1)];
            for (int b = 0; b < batch; b++) tail[b * (frames + 1) + (int) lengths[b]] = config.tailThreshold();
            x = NDArrays.concat(new NDList(x, manager.zeros(new Shape(batch, 1, shape.get(2)), type)), 1); // (B, U+1, D)
            alphas = NDArrays.concat(new NDList(alphas, manager.zeros(new Shape(batch, 1), type)), 1)       // (B, U+1)
                    .add(manager.create(tail, new Shape(batch, frames + 1)).toType(type, false));
        }
        NDArray tokenNum = alphas.sum(new int[] {1}).floor();                     // (B)

        // step 3: integrate and fire; keep max_b floor(Σα_b) tokens
        Cif.Result result = Cif.integrate(x, alphas, config.threshold(), prefixSum());
        long longest = 0;
        for (double count : tokenNum.toType(DataType.FLOAT64, false).toDoubleArray()) longest = Math.max(longest, (long) count);
        return new Output(fitLength(result.embeds(), longest), alphas, result.fires(), result.fireCounts(), tokenNum, null);
    }

    private Cif.PrefixSum prefixSum() {
        return mode == Mode.XLLM ? Cif.PrefixSum.FLOAT64 : Cif.PrefixSum.FLOAT32_AS_FUNASR;
    }

    private NDArray alphas(NDArray x, NDArray mask) {
        NDArray features = Activation.relu(Conv1d.conv1d(x.transpose(0, 2, 1), convWeight, convBias, new Shape(1),
                new Shape(1), new Shape(1), 1).singletonOrThrow()).transpose(0, 2, 1);  // (B, U, D)
        NDArray alphas = Activation.sigmoid(Linear.linear(features, outputWeight, outputBias).singletonOrThrow())
                .squeeze(-1);                                                                // (B, U)
        if (config.smoothFactor() != 1.0) {
            // a tensor operand owned by the manager, not mul(Number): see docs/training.md, "A DJL pitfall"
            alphas = alphas.mul(x.getManager().create(config.smoothFactor()).toType(alphas.getDataType(), false));
        }
        if (config.noiseThreshold() != 0.0) alphas = alphas.sub(config.noiseThreshold());
        return Activation.relu(alphas).mul(mask);
    }

    /** (B, U) 1 on valid frames, 0 on padding, in hidden's type. */
    private static NDArray frameMask(NDArray hidden, long[] lengths) {
        int batch = (int) hidden.getShape().get(0), frames = (int) hidden.getShape().get(1);
        if (lengths.length != batch) throw new IllegalArgumentException("one length per row");
        double[] mask = new double[batch * frames];
        for (int b = 0; b < batch; b++) {
            if (lengths[b] < 0 || lengths[b] > frames) throw new IllegalArgumentException("length " + lengths[b] + " of " + frames);
            for (int t = 0; t < lengths[b]; t++) mask[b * frames + t] = 1;
        }
        return hidden.getManager().create(mask, new Shape(batch, frames)).toType(hidden.getDataType(), false);
    }

    /** Padded frames zeroed, so that the conv and the tail frame see the same input batched or alone. */
    private static NDArray zeroPadding(NDArray hidden, long[] lengths) {
        return hidden.mul(frameMask(hidden, lengths).expandDims(2));
    }

    /** Narrows or zero-pads (B, L, D) to (B, length, D). */
    private static NDArray fitLength(NDArray embeds, long length) {
        Shape shape = embeds.getShape();
        if (shape.get(1) == length) return embeds;
        if (shape.get(1) > length) return embeds.get(":, :" + length + ", :");
        NDArray padding = embeds.getManager().zeros(new Shape(shape.get(0), length - shape.get(1), shape.get(2)),
                embeds.getDataType());
        return NDArrays.concat(new NDList(embeds, padding), 1);
    }
}
