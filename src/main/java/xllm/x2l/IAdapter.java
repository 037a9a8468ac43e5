package xllm.x2l;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import xllm.tensor.TrainableParameter;

import java.util.List;

/**
 * The paper's I-Adapter (§3.1, Fig. 1): a linear layer from the image interface's query outputs to the LLM's
 * embedding width, one LLM token per query. Parameters {@code <prefix>.{weight,bias}}.
 */
public final class IAdapter {

    private final LinearAdapter linear;

    private IAdapter(LinearAdapter linear) {
        this.linear = linear;
    }

    public static IAdapter initialise(String prefix, int inputWidth, int llmWidth, NDManager manager) {
        return new IAdapter(LinearAdapter.initialise(prefix, inputWidth, llmWidth, manager, DataType.FLOAT32));
    }

    /** (B, Q, H) query outputs → (B, Q, D) LLM embeddings. */
    public NDArray forward(NDArray queries) {
        return linear.forward(queries);
    }

    public int inputWidth() {
        return linear.inputWidth();
    }

    /** The LLM's embedding width D. */
    public int outputWidth() {
        return linear.outputWidth();
    }

    public List<TrainableParameter> parameters() {
        return linear.parameters();
    }
}
