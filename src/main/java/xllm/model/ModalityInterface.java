package xllm.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import xllm.tensor.TrainableParameter;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;

/**
 * One X2L interface of the paper's Figure 1, image, video or speech alike, in three steps:
 * <ol>
 *   <li>{@link #prepare}: the file → the frozen encoder's input (pixels, fbank); CPU only, safe on loader threads;
 *   <li>{@link #encode}: the frozen encoder (and, for speech, the frozen CIF); its output is what feature caches keep;
 *   <li>{@link #adapt}: the trainable part (Q-Former or C-Former, then the adapter) → (L_i, D) LLM embeddings.
 * </ol>
 * The trainable tensors are {@link #parameters()}, named {@code <modality>Interface.…} as in checkpoints.
 */
public interface ModalityInterface extends AutoCloseable {

    Modality modality();

    /** The frozen encoder's input for one file; a bad file is an IOException naming it and the problem. */
    Features prepare(Path media) throws IOException;

    /** Frozen encoder over a batch of prepared inputs; one host result per input. */
    List<Features> encode(List<Features> prepared, NDManager scope);

    /** Trainable part over a batch of encoded inputs: one (L_i, D) array per input, attached to {@code scope}. */
    List<NDArray> adapt(List<Features> encoded, NDManager scope);

    List<TrainableParameter> parameters();

    /** Frozen tensors (tests check they never change). */
    List<NDArray> frozenTensors();

    /** Identity of the frozen encoder: a feature cache keyed by it is invalidated when the encoder changes. */
    String fingerprint();

    /** The architecture record config.json keeps; loading rebuilds the interface from it and checks it field by field. */
    InterfaceConfig config();

    @Override
    void close();
}
