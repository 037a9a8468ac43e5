package xllm.speech;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import org.junit.jupiter.api.Test;

import java.util.Arrays;

/**
 * Timing of {@link Cif#integrate} forward + backward (gradients to hidden and alphas) at B=16, U=1000, D=512,
 * float32: median of 5 after 2 warm-ups, wall time and process CPU time (the cores may be shared). Not part of the default test run (the name does not end in Test):
 * {@code mvn -q -B -o test -Dtest=CifTimingBenchmark}, output in target/surefire-reports. On shared cores, two
 * intra-op threads stall at every parallel region when the other core is busy (measured 4x slower than one thread
 * while the load average was 4–8 on 2 cores); add {@code -Dai.djl.pytorch.num_threads=1} to the surefire argLine
 * to compare under load.
 */
class CifTimingBenchmark {

    /** CPU time of all the process's threads: less sensitive than wall time to other jobs on shared cores. */
    private static long processCpuNanos() {
        return ((com.sun.management.OperatingSystemMXBean) java.lang.management.ManagementFactory.getOperatingSystemMXBean())
                .getProcessCpuTime();
    }

    @Test
    void integrateForwardAndBackward() {
        try (NDManager manager = NDManager.newBaseManager()) {
            manager.getEngine().setRandomSeed(1);
            for (float maxAlpha : new float[] {0.5f, 1.0f}) {
                double[] forward = new double[7];
                double[] total = new double[7];
                double[] cpu = new double[7];
                long tokens = 0;
                for (int run = 0; run < 7; run++) {
                    try (NDManager scope = manager.newSubManager()) {
                        NDArray hidden = scope.randomNormal(new Shape(16, 1000, 512));
                        NDArray alphas = scope.randomUniform(0, maxAlpha, new Shape(16, 1000));
                        hidden.setRequiresGradient(true);
                        alphas.setRequiresGradient(true);
                        long start = System.nanoTime();
                        long cpuStart = processCpuNanos();
                        try (GradientCollector collector = Engine.getInstance().newGradientCollector()) {
                            Cif.Result result = Cif.integrate(hidden, alphas, 1.0);
                            NDArray loss = result.embeds().sum();
                            loss.getFloat(); // waits for the forward pass
                            forward[run] = (System.nanoTime() - start) / 1e6;
                            tokens = result.embeds().getShape().get(1);
                            collector.backward(loss);
                        }
                        alphas.getGradient().getFloat(0, 0);
                        total[run] = (System.nanoTime() - start) / 1e6;
                        cpu[run] = (processCpuNanos() - cpuStart) / 1e6;
                    }
                }
                double[] f = Arrays.copyOfRange(forward, 2, 7);
                double[] t = Arrays.copyOfRange(total, 2, 7);
                double[] c = Arrays.copyOfRange(cpu, 2, 7);
                Arrays.sort(c);
                Arrays.sort(f);
                Arrays.sort(t);
                System.out.printf("B=16 U=1000 D=512 float32, α~U[0,%.1f), L=%d: forward %.1f ms, forward+backward %.1f ms"
                        + " wall, %.1f ms process CPU (medians of 5; wall runs %s)%n", maxAlpha, tokens, f[2], t[2], c[2],
                        Arrays.toString(t));
            }
        }
    }
}
