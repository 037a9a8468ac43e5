package xllm.train;

import com.fasterxml.jackson.databind.node.ObjectNode;
import xllm.tensor.HostTensor;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Test-only program for the kill -9 test in {@code CheckpointStoreTest}: resumes after the newest checkpoint in
 * the run directory and saves checkpoints of a few MB in a loop until the test kills it. In lock step with the
 * test: it prints "ready N", waits for a line on stdin, prints "saving N", saves, and prints "saved N NANOS".
 * Every value is a function of the step ({@link #value}), so the test can check exactly what a surviving
 * checkpoint holds.
 */
public final class CheckpointKillChild {

    static final int ROWS = 512, COLUMNS = 1024; // 2 MiB of float32 per tensor

    /** The value of element {@code i} of tensor {@code which} at {@code step}; exact in float32 below step 16000. */
    static float value(long step, int which, int i) {
        return step * 1000 + (i % 997) + which * 0.5f;
    }

    static Map<String, HostTensor> tensors(long step, String prefix, int which) {
        float[] values = new float[ROWS * COLUMNS];
        for (int i = 0; i < values.length; i++) values[i] = value(step, which, i);
        Map<String, HostTensor> out = new LinkedHashMap<>();
        out.put(prefix, HostTensor.ofFloats(prefix, values, ROWS, COLUMNS));
        return out;
    }

    public static void main(String[] args) throws Exception {
        Path runDir = Path.of(args[0]);
        CheckpointStore store = new CheckpointStore(runDir, 2);
        long step = store.latest().map(CheckpointStore::stepOf).orElse(0L) + 1;
        BufferedReader go = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        for (;; step++) {
            ObjectNode config = Checkpoint.JSON.createObjectNode().put("written_at_step", step);
            TrainerState state = new TrainerState(step, 0, step * 4, 7, null, 1.0 / step, Map.of());
            Map<String, HostTensor> model = tensors(step, "weight", 0);
            Map<String, HostTensor> optimizer = tensors(step, "weight.exp_avg", 1);
            System.out.println("ready " + step);
            System.out.flush();
            if (go.readLine() == null) return;
            System.out.println("saving " + step); // from here on the process is only writing files
            System.out.flush();
            long start = System.nanoTime();
            store.saveHost(step, config, model, optimizer, state, null);
            System.out.println("saved " + step + " " + (System.nanoTime() - start));
            System.out.flush();
        }
    }
}
