package xllm.train;

import xllm.tensor.TrainableParameter;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import com.fasterxml.jackson.databind.JsonNode;

import java.io.IOException;
import java.util.List;
import java.util.Map;

/**
 * What one stage trains, as the {@link StageRunner} sees it: the named parameters of the assembled model's
 * interfaces, the samples, a CPU-side preparation step (run on a background thread, e.g. decoding images) and the
 * loss of a prepared micro-batch. Frozen parts live inside the task and never appear as parameters.
 *
 * @param <S> a sample as the manifest lists it
 * @param <P> a prepared micro-batch, plain Java data (no NDArrays: it is built off the training thread)
 */
public interface TrainingTask<S, P> extends AutoCloseable {

    /** Every parameter the recipe's globs may select, named as in checkpoints. */
    List<TrainableParameter> parameters();

    List<S> trainSamples();

    List<S> evalSamples();

    /** CPU work for a micro-batch; {@code seed} drives its augmentation so a resumed run repeats it exactly. */
    P prepare(List<S> samples, boolean training, long seed) throws IOException;

    /** Scalar mean loss of a prepared micro-batch; arrays belong to {@code scope}. */
    NDArray loss(P batch, NDManager scope);

    /**
     * The terms the loss is made of (e.g. the ASR model's cross-entropy, quantity and CTC losses), unweighted, as the
     * mean over the {@link #loss} calls since the last call of this method; the runner logs them per step as
     * {@code loss_<name>}. Empty when the loss has no separate terms.
     */
    default Map<String, Double> takeLossTerms() {
        return Map.of();
    }

    /** The assembled model's description for the checkpoint's config.json. */
    JsonNode describe();

    @Override
    default void close() {}
}
