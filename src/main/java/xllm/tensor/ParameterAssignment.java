package xllm.tensor;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.Map;
import java.util.Set;

/** Strict loading of checkpoint tensors into parameters: for training's initFrom and resume, and for inference. */
public final class ParameterAssignment {

    private ParameterAssignment() {}

    /**
     * Copies checkpoint tensors into parameters (names after {@code rename} prefixes); every tensor must match a
     * parameter by name and shape, and every name in {@code required} must be present (strict, as STYLE.md asks).
     */
    public static void assign(Map<String, TrainableParameter> parameters, Map<String, HostTensor> tensors,
                               Map<String, String> rename, Path source, Set<String> required) throws IOException {
        Set<String> seen = new HashSet<>();
        for (var entry : tensors.entrySet()) {
            String name = entry.getKey();
            for (var r : rename.entrySet()) {
                if (name.startsWith(r.getKey())) name = r.getValue() + name.substring(r.getKey().length());
            }
            TrainableParameter target = parameters.get(name);
            if (target == null) {
                throw new IOException(source + ": checkpoint tensor '" + entry.getKey() + "' matches no parameter of "
                        + "this model (tensors meant to be left out are listed in the recipe's initSkip)");
            }
            HostTensor tensor = entry.getValue();
            if (!java.util.Arrays.equals(tensor.shape(), target.value().getShape().getShape())) {
                throw new IOException(source + ": tensor '" + entry.getKey() + "' has shape "
                        + java.util.Arrays.toString(tensor.shape()) + ", parameter '" + name + "' has "
                        + target.value().getShape());
            }
            // DJL's set() of a direct buffer makes it the parameter's storage (no copy): one buffer per tensor,
            // filled straight from the checkpoint's bytes, with no float[] in between
            ByteBuffer bytes = ByteBuffer.allocateDirect(Math.toIntExact(tensor.numel() * 4)).order(ByteOrder.nativeOrder());
            tensor.putFloats(bytes.asFloatBuffer());
            target.value().set(bytes);
            seen.add(name);
        }
        for (String name : required) {
            if (!seen.contains(name)) throw new IOException(source + ": checkpoint lacks trainable parameter '" + name + "'");
        }
    }

}
