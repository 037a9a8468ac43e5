package xllm.x2l;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.core.Linear;
import xllm.tensor.TrainableParameter;

import java.util.List;

/**
 * The X-LLM adapter (paper §3.1: "All adapters are linear layers"): maps an interface's output width to the LLM's
 * embedding width. Initialised as torch.nn.Linear (uniform ±1/√in for weight and bias) from a seeded manager RNG.
 * Parameter names: {@code <prefix>.weight} (out, in) and {@code <prefix>.bias} (out).
 */
public final class LinearAdapter {

    private final String prefix;
    private final NDArray weight; // (out, in)
    private final NDArray bias;   // (out)

    public LinearAdapter(String prefix, NDArray weight, NDArray bias) {
        this.prefix = prefix;
        this.weight = weight;
        this.bias = bias;
    }

    public static LinearAdapter initialise(String prefix, int inputWidth, int outputWidth, NDManager manager, DataType type) {
        float bound = (float) (1.0 / Math.sqrt(inputWidth));
        NDArray weight = manager.randomUniform(-bound, bound, new Shape(outputWidth, inputWidth), type);
        NDArray bias = manager.randomUniform(-bound, bound, new Shape(outputWidth), type);
        return new LinearAdapter(prefix, weight, bias);
    }

    /** The output width (the LLM's embedding width for an adapter). */
    public int outputWidth() {
        return (int) weight.getShape().get(0);
    }

    /** The input width. */
    public int inputWidth() {
        return (int) weight.getShape().get(1);
    }

    /** (…, in) → (…, out). */
    public NDArray forward(NDArray features) {
        return Linear.linear(features, weight, bias).singletonOrThrow();
    }

    public List<TrainableParameter> parameters() {
        return List.of(new TrainableParameter(prefix + ".weight", weight), new TrainableParameter(prefix + ".bias", bias));
    }
}
