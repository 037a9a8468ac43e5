package xllm.vision;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import org.junit.jupiter.api.Test;
import xllm.RealWeights;

import java.util.Arrays;

/**
 * Throughput of {@link EfficientNetLite0#features} at batch 32 (median of 3 timed runs after one warm-up).
 * A measurement, not a check: the name keeps it out of the default test run; run it with
 * {@code mvn -o test -Dtest=xllm.vision.EfficientNetLite0Throughput}.
 */
class EfficientNetLite0Throughput {

    @Test
    void featuresAtBatch32() throws Exception {
        int batch = 32;
        try (NDManager manager = NDManager.newBaseManager();
             EfficientNetLite0 model = EfficientNetLite0.load(RealWeights.require("efficientnet-lite0"), manager)) {
            NDArray images = manager.randomUniform(-1f, 1f, new Shape(batch, 3, 224, 224));
            model.features(images).close(); // warm-up
            double[] seconds = new double[3];
            for (int run = 0; run < seconds.length; run++) {
                long start = System.nanoTime();
                model.features(images).close();
                seconds[run] = (System.nanoTime() - start) / 1e9;
            }
            Arrays.sort(seconds);
            System.out.printf("features batch %d: runs %s s, median %.3f s = %.1f images/s (%d cores)%n", batch,
                    Arrays.toString(seconds), seconds[1], batch / seconds[1],
                    Runtime.getRuntime().availableProcessors());
        }
    }
}
