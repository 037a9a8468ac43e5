package xllm.speech;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.training.GradientCollector;
import org.junit.jupiter.api.Test;
import xllm.tensor.TrainableParameter;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;

/**
 * ms per training step (forward + backward, no optimiser) of the CIF ASR model at the demo size, batch 16 × 3 s
 * (300 fbank frames, 30 target characters), and the tiny size at 4 × 1 s: median of 3 after 2 warm-ups, wall and
 * process CPU time (the cores may be shared). Not part of the default run (the name does not end in Test):
 * {@code mvn -q -B -o test -Dtest=CifAsrTimingBenchmark}; numbers on stderr (target/surefire-reports).
 */
class CifAsrTimingBenchmark {

    private static long processCpuNanos() {
        return ((com.sun.management.OperatingSystemMXBean) java.lang.management.ManagementFactory.getOperatingSystemMXBean())
                .getProcessCpuTime();
    }

    @Test
    void demoAndTinyStep() {
        time("demo", CifAsrConfig.demo(), 16, 300, 30);
        time("tiny", CifAsrConfig.tiny(), 4, 100, 12);
    }

    private static void time(String label, CifAsrConfig config, int batch, int frames, int targetLength) {
        List<String> letters = new ArrayList<>();
        for (char c = 'a'; c <= 'z'; c++) letters.add(String.valueOf(c));
        letters.add(" ");
        CharVocabulary vocabulary = CharVocabulary.build(List.of(String.join("", letters)));
        float[] mean = new float[80], std = new float[80];
        Arrays.fill(std, 1f);
        try (NDManager manager = NDManager.newBaseManager()) {
            CifAsrModel model = CifAsrModel.initialise(config, vocabulary, new Cmvn(mean, std), 1, manager);
            long count = 0;
            for (TrainableParameter p : model.parameters()) {
                p.value().setRequiresGradient(true);
                count += p.value().size();
            }
            Random random = new Random(1);
            List<float[][]> utterances = new ArrayList<>();
            long[][] targets = new long[batch][];
            for (int b = 0; b < batch; b++) {
                utterances.add(CifAsrModelTest.randomUtterance(random, frames - 20 * (b % 3)));
                targets[b] = new long[targetLength - b % 3];
                for (int k = 0; k < targets[b].length; k++) targets[b][k] = 1 + random.nextInt(vocabulary.size() - 1);
            }
            CifAsrModel.Padded padded = CifAsrModel.pad(utterances);
            double[] forward = new double[5], total = new double[5], cpu = new double[5];
            for (int run = 0; run < 5; run++) {
                long cpuStart = processCpuNanos(), start = System.nanoTime();
                try (NDManager scope = manager.newSubManager();
                     GradientCollector collector = Engine.getInstance().newGradientCollector()) {
                    NDArray loss = model.loss(padded.toArray(scope, 80), padded.lengths(), targets).total();
                    loss.getFloat();
                    forward[run] = (System.nanoTime() - start) / 1e6;
                    collector.backward(loss);
                }
                for (TrainableParameter p : model.parameters()) {
                    try (NDArray g = p.value().getGradient()) {
                        g.subi(g);
                    }
                }
                total[run] = (System.nanoTime() - start) / 1e6;
                cpu[run] = (processCpuNanos() - cpuStart) / 1e6;
            }
            System.err.printf("%s (%,d parameters) B=%d x %d frames, L=%d: forward %.0f ms, forward+backward %.0f ms "
                            + "wall, %.0f ms CPU (median of 3 after 2 warm-ups; threads %s)%n", label, count, batch, frames,
                    targetLength, median(forward), median(total), median(cpu),
                    System.getProperty("ai.djl.pytorch.num_threads", "default"));
        }
    }

    private static double median(double[] runs) {
        double[] timed = Arrays.copyOfRange(runs, 2, runs.length);
        Arrays.sort(timed);
        return timed[timed.length / 2];
    }
}
