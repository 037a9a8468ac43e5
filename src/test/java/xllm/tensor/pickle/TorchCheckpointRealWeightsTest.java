package xllm.tensor.pickle;

import org.junit.jupiter.api.Test;
import xllm.tensor.DType;
import xllm.tensor.HostTensor;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * {@link TorchCheckpoint} on the real EfficientNet-Lite0 checkpoint {@code efficientnet-lite0-57934424.pth}
 * (legacy non-zip torch.save format; 50 of its weights are saved as transposed, non-contiguous views).
 * Needs the pulled model ({@code ./xllm models pull efficientnet-lite0}); without it the test fails, naming that
 * command, rather than skips.
 *
 * <p>Expected numbers from {@code torch.load(path, weights_only=True)} (torch 2.15): sums in float64 over the
 * row-major contiguous values, and the position-weighted sum Σ x[i]·(i mod 7 + 1), which changes when elements
 * are materialised in the wrong order.
 */
class TorchCheckpointRealWeightsTest {

    @Test
    void readsEfficientNetLite0LikeTorch() throws Exception {
        Path file = xllm.RealWeights.require("efficientnet-lite0");
        assertTrue(Files.isRegularFile(file), "no such file: " + file);

        Map<String, HostTensor> tensors = TorchCheckpoint.read(file);

        assertEquals(296, tensors.size());
        List<String> keys = new ArrayList<>(tensors.keySet());
        assertEquals(List.of("_conv_stem.weight", "_bn0.weight", "_bn0.bias", "_bn0.running_mean", "_bn0.running_var"),
                keys.subList(0, 5));
        assertEquals(List.of("_bn1.num_batches_tracked", "_fc.weight", "_fc.bias"), keys.subList(293, 296));
        long floatCount = tensors.values().stream().filter(t -> t.dtype() == DType.F32).count();
        long longCount = tensors.values().stream().filter(t -> t.dtype() == DType.I64).count();
        assertEquals(247, floatCount);
        assertEquals(49, longCount);
        assertEquals(4_694_073L, tensors.values().stream().mapToLong(HostTensor::numel).sum());

        // Shapes, plain sums and order-sensitive sums; stride (1, 32, 288, 96) and (1, 1000) in the file.
        assertTensor(tensors, "_conv_stem.weight", new long[] {32, 3, 3, 3}, -26.811376610887237, -108.16233640880091);
        assertTensor(tensors, "_blocks.0._depthwise_conv.weight", new long[] {32, 1, 3, 3}, 5.221442859619856,
                40.171540550887585);
        assertTensor(tensors, "_blocks.15._project_conv.weight", new long[] {320, 1152, 1, 1}, 39.96609939538757,
                124.12893240978883);
        assertTensor(tensors, "_fc.weight", new long[] {1000, 1280}, -470.63256730128705, -1848.465090003945);
        assertTensor(tensors, "_bn0.weight", new long[] {32}, 77.94242376089096, Double.NaN);
        assertTensor(tensors, "_fc.bias", new long[] {1000}, -0.04981697298353538, Double.NaN);

        // Single elements, bit-exact: _conv_stem.weight[5, 1, 2, 0] and _fc.weight[999, 1279].
        assertEquals(1031866928, Float.floatToIntBits(tensors.get("_conv_stem.weight").toFloats()[150]));
        assertEquals(1025989296, Float.floatToIntBits(tensors.get("_fc.weight").toFloats()[1_279_999]));

        HostTensor batches = tensors.get("_bn0.num_batches_tracked");
        assertEquals(DType.I64, batches.dtype());
        assertArrayEquals(new long[0], batches.shape());
        assertEquals(0L, batches.data().getLong(0));

        double weightedTotal = 0;
        for (HostTensor tensor : tensors.values()) weightedTotal += weightedSum(tensor.toFloats());
        assertEquals(1692595.7887436468, weightedTotal, 1e-4);
    }

    private static void assertTensor(Map<String, HostTensor> tensors, String name, long[] shape, double sum,
                                     double weighted) {
        HostTensor tensor = tensors.get(name);
        assertArrayEquals(shape, tensor.shape(), name);
        assertEquals(DType.F32, tensor.dtype(), name);
        float[] values = tensor.toFloats();
        double total = 0;
        for (float value : values) total += value;
        assertEquals(sum, total, 1e-6, name + " sum");
        if (!Double.isNaN(weighted)) assertEquals(weighted, weightedSum(values), 1e-6, name + " weighted sum");
    }

    /** Σ x[i]·(i mod 7 + 1): each product is exact in double, so only the summation order can differ from torch. */
    private static double weightedSum(float[] values) {
        double total = 0;
        for (int i = 0; i < values.length; i++) total += (double) values[i] * (i % 7 + 1);
        return total;
    }
}
