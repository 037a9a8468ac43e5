package xllm.x2l;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import xllm.tensor.TrainableParameter;

import java.util.List;

/**
 * The paper's V-Adapter (§3.1, Fig. 1): each sampled frame goes through the image side on its own; the frames' query
 * outputs are concatenated in time order and one linear layer maps them to the LLM's embedding width, so a video of
 * T frames becomes T × Q LLM tokens. Parameters {@code <prefix>.{weight,bias}}.
 */
public final class VAdapter {

    private final LinearAdapter linear;

    private VAdapter(LinearAdapter linear) {
        this.linear = linear;
    }

    public static VAdapter initialise(String prefix, int inputWidth, int llmWidth, NDManager manager) {
        return new VAdapter(LinearAdapter.initialise(prefix, inputWidth, llmWidth, manager, DataType.FLOAT32));
    }

    /** (B, T, Q, H) per-frame query outputs → (B, T·Q, D) LLM embeddings, frame 0's queries first. */
    public NDArray forward(NDArray frameQueries) {
        long[] shape = frameQueries.getShape().getShape();
        NDArray inTimeOrder = frameQueries.reshape(shape[0], shape[1] * shape[2], shape[3]);
        return linear.forward(inTimeOrder);
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
