package xllm.speech;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Activation;
import ai.djl.nn.core.Linear;
import ai.djl.nn.norm.LayerNorm;
import xllm.tensor.TransformerOps;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Random;

/**
 * Building blocks shared by {@link ConformerEncoder} and {@link CifDecoder}: named linear / LayerNorm over a tensor
 * map, multi-head attention with an additive key mask, sinusoidal positions, masks from lengths, and the seeded
 * initialiser. Per-call arrays are created on the input's manager; parameters stay on the model's.
 */
final class AsrLayers {

    static final float LAYER_NORM_EPS = 1e-5f;

    private AsrLayers() {}

    static NDArray linear(NDArray x, Map<String, NDArray> tensors, String name) {
        return Linear.linear(x, tensors.get(name + ".weight"), tensors.get(name + ".bias")).singletonOrThrow();
    }

    static NDArray layerNorm(NDArray x, Map<String, NDArray> tensors, String name) {
        NDArray gain = tensors.get(name + ".weight");
        return LayerNorm.layerNorm(x, gain.getShape(), gain, tensors.get(name + ".bias"), LAYER_NORM_EPS).singletonOrThrow();
    }

    /** x·sigmoid(x), written out: two ops whose backward needs no freed scalar (docs/training.md). */
    static NDArray silu(NDArray x) {
        return x.mul(Activation.sigmoid(x));
    }

    /**
     * Multi-head attention from {@code x} (B, Q, D) to {@code source} (B, N, W): {@code prefix + query/key/value/output}
     * linears, {@code mask} an additive (B, 1, 1, N) key mask or null; {@code scale} a () tensor 1/√head_dim owned by a
     * live manager (not mul(Number), see docs/training.md).
     */
    static NDArray attention(NDArray x, NDArray source, NDArray mask, Map<String, NDArray> tensors, String prefix,
                             int heads, NDArray scale) {
        long batch = x.getShape().get(0), queries = x.getShape().get(1), keys = source.getShape().get(1);
        long width = tensors.get(prefix + "query.weight").getShape().get(0), headDim = width / heads;
        NDArray q = linear(x, tensors, prefix + "query").mul(scale)
                .reshape(batch, queries, heads, headDim).transpose(0, 2, 1, 3);                    // (B, h, Q, hd)
        NDArray k = linear(source, tensors, prefix + "key")
                .reshape(batch, keys, heads, headDim).transpose(0, 2, 3, 1);                       // (B, h, hd, N)
        NDArray v = linear(source, tensors, prefix + "value")
                .reshape(batch, keys, heads, headDim).transpose(0, 2, 1, 3);                       // (B, h, N, hd)
        NDArray scores = q.matMul(k);                                                              // (B, h, Q, N)
        if (mask != null) scores = scores.add(mask);
        NDArray context = scores.softmax(-1).matMul(v)                                             // (B, h, Q, hd)
                .transpose(0, 2, 1, 3).reshape(batch, queries, width);                             // (B, Q, D)
        return linear(context, tensors, prefix + "output");
    }

    /** Additive key mask (B, 1, 1, N): 0 for positions below lengths[b], {@link TransformerOps#MASKED} after. */
    static NDArray keyMask(long[] lengths, long positions, NDManager manager) {
        float[] mask = new float[(int) (lengths.length * positions)];
        for (int b = 0; b < lengths.length; b++) {
            for (long t = lengths[b]; t < positions; t++) mask[(int) (b * positions + t)] = TransformerOps.MASKED;
        }
        return manager.create(mask, new Shape(lengths.length, 1, 1, positions));
    }

    /** (B, N, 1): 1 below lengths[b], 0 after. */
    static NDArray frameMask(long[] lengths, long positions, NDManager manager) {
        float[] mask = new float[(int) (lengths.length * positions)];
        for (int b = 0; b < lengths.length; b++) {
            for (long t = 0; t < Math.min(lengths[b], positions); t++) mask[(int) (b * positions + t)] = 1f;
        }
        return manager.create(mask, new Shape(lengths.length, positions, 1));
    }

    /** Sinusoidal positions (1, N, D) of "Attention is all you need": sin on even, cos on odd dims. */
    static NDArray sinusoidalPositions(long positions, long width, NDManager manager) {
        float[] table = new float[(int) (positions * width)];
        for (int p = 0; p < positions; p++) {
            for (int i = 0; i < width; i += 2) {
                double angle = p / Math.pow(10_000.0, (double) i / width);
                table[(int) (p * width + i)] = (float) Math.sin(angle);
                if (i + 1 < width) table[(int) (p * width + i + 1)] = (float) Math.cos(angle);
            }
        }
        return manager.create(table, new Shape(1, positions, width));
    }

    /**
     * Seeded tensors for {@code shapes}: LayerNorm gains ({@code *norm.weight}) 1, biases 0, 2-D weights Xavier-uniform
     * (transformer practice), convolution kernels PyTorch's default uniform ±1/√fan_in. Same seed, same tensors.
     */
    static Map<String, NDArray> initialise(Map<String, Shape> shapes, long seed, NDManager manager) {
        Random random = new Random(seed);
        Map<String, NDArray> tensors = new LinkedHashMap<>();
        for (var entry : shapes.entrySet()) {
            String name = entry.getKey();
            Shape shape = entry.getValue();
            float[] values = new float[Math.toIntExact(shape.size())];
            if (name.endsWith("norm.weight")) {
                java.util.Arrays.fill(values, 1f);
            } else if (name.endsWith(".weight")) {
                long fanIn = shape.size() / shape.get(0);
                double bound = shape.dimension() == 2 ? Math.sqrt(6.0 / (fanIn + shape.get(0))) : 1.0 / Math.sqrt(fanIn);
                for (int i = 0; i < values.length; i++) values[i] = (float) ((random.nextDouble() * 2 - 1) * bound);
            }
            tensors.put(name, manager.create(values, shape));
        }
        return tensors;
    }

    static void linearShapes(Map<String, Shape> shapes, String name, long out, long in) {
        shapes.put(name + ".weight", new Shape(out, in));
        shapes.put(name + ".bias", new Shape(out));
    }

    static void normShapes(Map<String, Shape> shapes, String name, long width) {
        shapes.put(name + ".weight", new Shape(width));
        shapes.put(name + ".bias", new Shape(width));
    }

    static void attentionShapes(Map<String, Shape> shapes, String prefix, long width, long sourceWidth) {
        linearShapes(shapes, prefix + "query", width, width);
        linearShapes(shapes, prefix + "key", width, sourceWidth);
        linearShapes(shapes, prefix + "value", width, sourceWidth);
        linearShapes(shapes, prefix + "output", width, width);
    }
}
