package xllm.tensor;

import ai.djl.ndarray.NDArray;

/**
 * A named tensor the optimiser updates in place. The caller sets {@code value.setRequiresGradient(true)} before the
 * forward pass; after {@code GradientCollector.backward} the gradient is read with {@code value.getGradient()}.
 *
 * @param name  the checkpoint key (HF-style dotted path, e.g. {@code "languageProjection.weight"}); also decides the
 *              weight-decay group through {@link ParameterGroups#decays}
 * @param value the float32 tensor itself (not a copy)
 */
public record TrainableParameter(String name, NDArray value) {}
