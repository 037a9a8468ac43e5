package xllm.train;

import xllm.tensor.TrainableParameter;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.pytorch.engine.PtNDArray;
import ai.djl.pytorch.jni.JniUtils;

import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * AdamW with two parameter groups and global-norm gradient clipping, as X-LLM / BLIP-2 train their interfaces
 * (Loshchilov &amp; Hutter, "Decoupled Weight Decay Regularization"; LAVIS {@code RunnerBase.optimizer}).
 *
 * <p>Matches {@code torch.optim.AdamW} (default single-tensor path, amsgrad off) step for step. With step count
 * {@code t}, bias corrections {@code bc1 = 1 - beta1^t}, {@code bc2 = 1 - beta2^t}:
 * <pre>
 *   p   *= 1 - lr * wd                        (decay group only; decoupled, before the Adam update)
 *   m    = beta1 * m + (1 - beta1) * g
 *   v    = beta2 * v + (1 - beta2) * g * g
 *   p   -= (lr / bc1) * m / (sqrt(v) / sqrt(bc2) + eps)
 * </pre>
 * The last three lines run as ONE native call per parameter: libtorch's Adam kernel that DJL's PyTorch JNI exposes
 * ({@link JniUtils#adamUpdate}), called with its MXNet-style extras switched off (rescale 1, no clamp, weight decay 0)
 * and with the bias corrections folded into its two scalars: it computes {@code p -= c * m / (sqrt(v) + e)}, and
 * {@code c = lr * sqrt(bc2) / bc1}, {@code e = eps * sqrt(bc2)} make that exactly the line above. This is not DJL's
 * {@code Adam}/{@code Trainer} (one weight decay for everything, one-sided clamp clipping, gradients zeroed as a side
 * effect): only the fused kernel is used. One JNI call instead of ~14 elementwise ops matters because DJL pays
 * 5–10 µs per op and an X2L interface has hundreds of small tensors.
 *
 * <p>The decoupled decay is a separate in-place multiply, so it rounds exactly like PyTorch's {@code p.mul_(1 - lr*wd)}.
 * The update runs with autograd off whatever the caller's grad mode. A parameter that never received a gradient
 * counts as a zero gradient (DJL returns zeros), like PyTorch with {@code zero_grad(set_to_none=False)}: its moments
 * still decay and it still moves; PyTorch with {@code set_to_none=True} would skip it.
 *
 * <p>Tested against {@code torch.optim.AdamW} + {@code clip_grad_norm_} trajectories in {@code AdamWTest}
 * (fixtures from {@code tools/reference/make_optim_fixtures.py}).
 */
public final class AdamW implements AutoCloseable {

    /**
     * @param beta1       decay of the first moment (paper: 0.9)
     * @param beta2       decay of the second moment (paper: 0.98, BLIP-2 / X-LLM {@code beta2} setting)
     * @param epsilon     added to the bias-corrected root second moment (1e-8, PyTorch default)
     * @param weightDecay decoupled decay for the decay group (0.05); the other group never decays
     */
    public record Config(double beta1, double beta2, double epsilon, double weightDecay) {
        public Config {
            if (!(beta1 >= 0 && beta1 < 1)) throw new IllegalArgumentException("beta1 must be in [0, 1): " + beta1);
            if (!(beta2 >= 0 && beta2 < 1)) throw new IllegalArgumentException("beta2 must be in [0, 1): " + beta2);
            if (!(epsilon >= 0)) throw new IllegalArgumentException("epsilon must be >= 0: " + epsilon);
            if (!(weightDecay >= 0)) throw new IllegalArgumentException("weightDecay must be >= 0: " + weightDecay);
        }

        /** The X-LLM / BLIP-2 setting: betas (0.9, 0.98), eps 1e-8, weight decay 0.05. */
        public static Config paper() {
            return new Config(0.9, 0.98, 1e-8, 0.05);
        }
    }

    private final Config config;
    private final List<TrainableParameter> parameters;
    private final PtNDArray[] values;   // the parameters themselves, updated in place
    private final boolean[] decays;     // group membership, from ParameterGroups.decays
    private final PtNDArray[] expAvg;   // first moments m, same shape/dtype as the parameter
    private final PtNDArray[] expAvgSq; // second moments v
    private final NDManager stateManager;
    private long steps;

    /**
     * Zero moments for every parameter; groups from {@link ParameterGroups#decays}. Names must be unique. The moments
     * live in a sub-manager of the first parameter's manager: {@link #close} frees them, and so does closing that
     * manager.
     */
    public AdamW(List<TrainableParameter> parameters, Config config) {
        if (parameters.isEmpty()) throw new IllegalArgumentException("AdamW needs at least one parameter");
        this.config = config;
        this.parameters = List.copyOf(parameters);
        int n = this.parameters.size();
        values = new PtNDArray[n];
        decays = new boolean[n];
        expAvg = new PtNDArray[n];
        expAvgSq = new PtNDArray[n];
        Set<String> names = new HashSet<>();
        for (int i = 0; i < n; i++) {
            TrainableParameter parameter = this.parameters.get(i);
            if (!names.add(parameter.name())) {
                throw new IllegalArgumentException("duplicate parameter name '" + parameter.name() + "'");
            }
            if (!(parameter.value() instanceof PtNDArray value)) {
                throw new IllegalArgumentException("parameter '" + parameter.name() + "' is not a PyTorch-engine NDArray");
            }
            values[i] = value;
            decays[i] = ParameterGroups.decays(parameter.name(), value);
        }
        stateManager = values[0].getManager().newSubManager();
        for (int i = 0; i < n; i++) {
            expAvg[i] = (PtNDArray) stateManager.zeros(values[i].getShape(), values[i].getDataType());
            expAvgSq[i] = (PtNDArray) stateManager.zeros(values[i].getShape(), values[i].getDataType());
        }
    }

    public Config config() {
        return config;
    }

    /**
     * Global L2 norm of all gradients, then, when {@code maxNorm > 0}, scales every gradient in place by
     * {@code maxNorm / (norm + 1e-6)} if that is below 1: {@code torch.nn.utils.clip_grad_norm_}, including its float32
     * arithmetic (per-tensor norms, norm of their stack, {@code reciprocal(norm + 1e-6) * maxNorm}). A non-finite
     * norm scales the gradients to NaN/0 as PyTorch does; the caller sees it in the return value.
     *
     * @return the norm before clipping (one host read: the only device→host transfer of a step)
     */
    public double clipGradientNorm(double maxNorm) {
        int n = values.length;
        PtNDArray[] gradients = new PtNDArray[n];
        NDArray[] norms = new NDArray[n];
        float total;
        try {
            for (int i = 0; i < n; i++) {
                gradients[i] = values[i].getGradient();
                norms[i] = gradients[i].norm(false); // () float32, over all elements
            }
            try (NDArray stacked = NDArrays.stack(new NDList(norms)); NDArray norm = stacked.norm(false)) {
                total = norm.getFloat();
            }
            if (maxNorm > 0) {
                float coefficient = (1f / (total + 1e-6f)) * (float) maxNorm; // PyTorch: max_norm / (total + 1e-6)
                if (!(coefficient >= 1f)) {
                    for (PtNDArray gradient : gradients) gradient.muli(coefficient);
                }
            }
        } finally {
            closeAll(norms);
            closeAll(gradients);
        }
        return total;
    }

    /** One AdamW update of every parameter with {@code learningRate}, in place, autograd off. */
    public void step(double learningRate) {
        if (!(learningRate >= 0) || Double.isInfinite(learningRate)) {
            throw new IllegalArgumentException("learning rate must be finite and >= 0: " + learningRate);
        }
        steps++;
        double biasCorrection1 = 1 - Math.pow(config.beta1(), steps);
        double biasCorrection2Sqrt = Math.sqrt(1 - Math.pow(config.beta2(), steps));
        // p -= c * m / (sqrt(v) + e)  ==  p -= (lr / bc1) * m / (sqrt(v) / sqrt(bc2) + eps)
        float c = (float) (learningRate / biasCorrection1 * biasCorrection2Sqrt);
        float e = (float) (config.epsilon() * biasCorrection2Sqrt);
        float keep = (float) (1 - learningRate * config.weightDecay());
        boolean applyDecay = config.weightDecay() != 0 && learningRate != 0;
        boolean gradMode = JniUtils.isGradMode();
        if (gradMode) JniUtils.setGradMode(false);
        try {
            for (int i = 0; i < values.length; i++) {
                try (PtNDArray gradient = values[i].getGradient()) {
                    if (decays[i] && applyDecay) values[i].muli(keep);
                    // weight decay 0 on the kernel's L2 path (adamw=false): adds 0 * p, i.e. nothing.
                    JniUtils.adamUpdate(values[i], gradient, expAvg[i], expAvgSq[i], (float) learningRate, c, 0f, 1f,
                            -1f, (float) config.beta1(), (float) config.beta2(), e, false);
                }
            }
        } finally {
            if (gradMode) JniUtils.setGradMode(true);
        }
    }

    /** Sets every gradient to zero in place (DJL accumulates gradients across backward calls until zeroed). */
    public void zeroGradients() {
        for (PtNDArray value : values) JniUtils.zeroGrad(value);
    }

    /** Optimiser steps taken (the {@code t} of the bias corrections). */
    public long steps() {
        return steps;
    }

    /** Whether parameter {@code name} is in the weight-decay group. */
    public boolean decays(String name) {
        for (int i = 0; i < values.length; i++) {
            if (parameters.get(i).name().equals(name)) return decays[i];
        }
        throw new IllegalArgumentException("no parameter named '" + name + "'");
    }

    /**
     * Copies of the state for a checkpoint: {@code "step"} (int64 scalar), {@code "<name>.exp_avg"},
     * {@code "<name>.exp_avg_sq"}. The copies belong to the optimiser's manager: close them once written (else they
     * live until {@link #close}).
     */
    public Map<String, NDArray> state() {
        Map<String, NDArray> state = new LinkedHashMap<>();
        state.put("step", stateManager.create(steps));
        for (int i = 0; i < values.length; i++) {
            String name = parameters.get(i).name();
            state.put(name + ".exp_avg", expAvg[i].duplicate());
            state.put(name + ".exp_avg_sq", expAvgSq[i].duplicate());
        }
        return state;
    }

    /**
     * Replaces the state by copies of {@code state} (the arrays stay the caller's). Strict: an unknown or missing key,
     * a shape mismatch or a bad step throws {@link IllegalArgumentException} naming the key, and nothing changes.
     */
    public void loadState(Map<String, NDArray> state) {
        Map<String, Integer> moments = new LinkedHashMap<>();
        for (int i = 0; i < values.length; i++) {
            moments.put(parameters.get(i).name() + ".exp_avg", i);
            moments.put(parameters.get(i).name() + ".exp_avg_sq", i);
        }
        for (String key : state.keySet()) {
            if (!key.equals("step") && !moments.containsKey(key)) {
                throw new IllegalArgumentException("unknown optimiser state key '" + key + "'");
            }
        }
        if (!state.containsKey("step")) throw new IllegalArgumentException("missing optimiser state key 'step'");
        for (Map.Entry<String, Integer> moment : moments.entrySet()) {
            NDArray array = state.get(moment.getKey());
            if (array == null) {
                throw new IllegalArgumentException("missing optimiser state key '" + moment.getKey() + "'");
            }
            if (!array.getShape().equals(values[moment.getValue()].getShape())) {
                throw new IllegalArgumentException("optimiser state key '" + moment.getKey() + "': shape "
                        + array.getShape() + ", parameter has " + values[moment.getValue()].getShape());
            }
        }
        long step = readStep(state.get("step"));
        for (Map.Entry<String, Integer> moment : moments.entrySet()) {
            int i = moment.getValue();
            // duplicate() is torch clone(): a tensor of its own. toType(type, copy=true) is not: DJL's torchTo
            // passes copy=false, so for an unchanged dtype it aliases the source, whose storage may be the host
            // buffer of the checkpoint (from_blob) — freed after loading, then written by every Adam step (resume
            // of a convert-asr run died in malloc with heap corruption).
            PtNDArray copy = (PtNDArray) state.get(moment.getKey()).toType(values[i].getDataType(), false).duplicate();
            copy.attach(stateManager);
            if (moment.getKey().endsWith(".exp_avg")) {
                expAvg[i].close();
                expAvg[i] = copy;
            } else {
                expAvgSq[i].close();
                expAvgSq[i] = copy;
            }
        }
        steps = step;
    }

    private static long readStep(NDArray array) {
        if (array.size() != 1) {
            throw new IllegalArgumentException("optimiser state key 'step': expected one value, shape " + array.getShape());
        }
        double value;
        if (array.getDataType() == DataType.INT64) {
            value = array.toLongArray()[0];
        } else {
            try (NDArray asDouble = array.toType(DataType.FLOAT64, true)) {
                value = asDouble.toDoubleArray()[0];
            }
        }
        if (!(value >= 0) || value != Math.rint(value)) {
            throw new IllegalArgumentException("optimiser state key 'step': not a step count: " + value);
        }
        return (long) value;
    }

    /** Frees the moments (not the parameters). */
    @Override
    public void close() {
        stateManager.close();
    }

    @Override
    public String toString() {
        int decayed = 0;
        for (boolean d : decays) if (d) decayed++;
        return "AdamW" + config + "[" + decayed + " decayed, " + (decays.length - decayed) + " not decayed, step " + steps + "]";
    }

    private static void closeAll(NDArray[] arrays) {
        for (NDArray array : arrays) if (array != null) array.close();
    }
}
