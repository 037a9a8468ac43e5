package xllm.train;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import xllm.tensor.HostTensor;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.RandomAccessFile;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.*;

/** Checkpoint directories: round trip, retention, replacement, crash leftovers, damaged files, kill -9 mid-save. */
class CheckpointStoreTest {

    private static Map<String, HostTensor> one(String name, float... values) {
        return Map.of(name, HostTensor.ofFloats(name, values, values.length));
    }

    private static ObjectNode config(String value) {
        return Checkpoint.JSON.createObjectNode().put("name", value);
    }

    private static List<String> names(Path dir) throws IOException {
        try (var s = Files.list(dir)) {
            return s.map(p -> p.getFileName().toString()).sorted().toList();
        }
    }

    @Test
    void roundTripsArraysStateConfigAndProvenance(@TempDir Path runDir) throws IOException {
        Path manifest = runDir.resolve("train.jsonl");
        Files.writeString(manifest, "{\"id\":\"a\"}\n");
        CheckpointStore store = new CheckpointStore(runDir, 3);
        Path saved;
        try (NDManager manager = NDManager.newBaseManager()) {
            Map<String, NDArray> model = new LinkedHashMap<>();
            model.put("qformer.query_tokens", manager.arange(0f, 12f).reshape(1, 3, 4)); // (1, queries, hidden)
            model.put("language_projection.weight", manager.create(new float[] {1.5f, -2.25f, 3f, 0.125f}, new Shape(2, 2)).toType(DataType.FLOAT16, false));
            Map<String, NDArray> optimizer = Map.of("language_projection.weight.exp_avg", manager.ones(new Shape(2, 2)));
            TrainerState state = new TrainerState(42, 1, 17, 1234, "cng=", Double.NaN, Map.of("best_eval_loss", 0.5, "tokens", 1e6));
            ObjectNode provenance = CheckpointStore.provenance("stage2-image", List.of(manifest), Map.of("eval_loss", 0.75));
            saved = store.save(42, config("tiny"), model, optimizer, state, provenance);
        }
        assertEquals(runDir.resolve("checkpoints/step-000042"), saved);
        assertEquals(List.of("COMPLETE", "config.json", "model.safetensors", "optimizer.safetensors", "provenance.json", "trainer_state.json"), names(saved));

        Checkpoint checkpoint = Checkpoint.load(saved);
        assertEquals("tiny", checkpoint.config().get("name").asText());
        HostTensor queries = checkpoint.model().get("qformer.query_tokens");
        assertArrayEquals(new long[] {1, 3, 4}, queries.shape());
        assertArrayEquals(new float[] {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}, queries.toFloats());
        HostTensor projection = checkpoint.model().get("language_projection.weight");
        assertEquals(xllm.tensor.DType.F16, projection.dtype()); // written in the array's own dtype
        assertArrayEquals(new float[] {1.5f, -2.25f, 3f, 0.125f}, projection.toFloats());
        assertArrayEquals(new float[] {1, 1, 1, 1}, checkpoint.optimizer().get("language_projection.weight.exp_avg").toFloats());

        TrainerState state = checkpoint.trainerState();
        assertEquals(42, state.step());
        assertEquals(17, state.dataPosition());
        assertEquals("cng=", state.rngState());
        assertTrue(Double.isNaN(state.lastLoss()), "a diverged loss survives the round trip");
        assertEquals(Map.of("best_eval_loss", 0.5, "tokens", 1e6), state.extra());

        JsonNode provenance = checkpoint.provenance();
        assertEquals("stage2-image", provenance.get("stage").asText());
        assertEquals(42, provenance.get("step").asLong());
        assertEquals(xllm.tensor.FileDigest.sha256(manifest), provenance.get("data").get(0).get("sha256").asText());
        assertEquals(64, provenance.get("data").get(0).get("sha256").asText().length());
        assertEquals(0.75, provenance.get("metrics").get("eval_loss").asDouble());
        assertTrue(provenance.has("created"));
        if (provenance.has("git_commit")) assertTrue(provenance.get("git_commit").asText().matches("[0-9a-f]{40}"));

        assertEquals(saved, store.latest().orElseThrow());
        assertEquals(42, CheckpointStore.stepOf(saved));
    }

    @Test
    void keepsTheNewestAndNeverTheOneJustSaved(@TempDir Path runDir) throws IOException {
        CheckpointStore store = new CheckpointStore(runDir, 2);
        for (long step = 10; step <= 40; step += 10) store.saveHost(step, config("s"), one("w", step), Map.of(), null, null);
        assertEquals(List.of(30L, 40L), store.list().stream().map(CheckpointStore::stepOf).toList());
        // A run resumed from an earlier step: its checkpoint stays although higher steps exist.
        store.saveHost(35, config("s"), one("w", 35), Map.of(), null, null);
        assertEquals(List.of(35L, 40L), store.list().stream().map(CheckpointStore::stepOf).toList());
        assertEquals(List.of(".lock", "step-000035", "step-000040"), names(store.directory()));
        Checkpoint plain = Checkpoint.load(store.latest().orElseThrow());
        assertTrue(plain.optimizer().isEmpty());
        assertNull(plain.trainerState());
    }

    @Test
    void savingTheSameStepTwiceReplacesIt(@TempDir Path runDir) throws IOException {
        CheckpointStore store = new CheckpointStore(runDir, 0);
        store.saveHost(5, config("first"), one("w", 1f), Map.of(), null, null);
        Path second = store.saveHost(5, config("second"), one("w", 2f), Map.of(), null, null);
        Checkpoint checkpoint = Checkpoint.load(second);
        assertEquals("second", checkpoint.config().get("name").asText());
        assertArrayEquals(new float[] {2f}, checkpoint.model().get("w").toFloats());
        assertEquals(List.of(".lock", "step-000005"), names(store.directory()));
    }

    @Test
    void clearsWhatACrashLeftBehind(@TempDir Path runDir) throws IOException {
        CheckpointStore store = new CheckpointStore(runDir, 0);
        Path root = store.directory();
        Path good = store.saveHost(1, config("one"), one("w", 1f), Map.of(), null, null);
        // a finished directory whose replacement crashed between the two renames: step 2 exists only as .old
        Path step2 = store.saveHost(2, config("two"), one("w", 2f), Map.of(), null, null);
        Files.move(step2, root.resolve("step-000002.old-1a"));
        // a finished temporary directory that crashed before its rename: it is whole, so it is put in place
        Path step3 = store.saveHost(3, config("three"), one("w", 3f), Map.of(), null, null);
        Files.move(step3, root.resolve("step-000003.tmp-2b"));
        // a temporary directory cut short, and a half-deleted old checkpoint
        Path partial = Files.createDirectories(root.resolve("step-000004.tmp-3c"));
        Files.writeString(partial.resolve("config.json"), "{\"trunc");
        Path trash = store.saveHost(9, config("nine"), one("w", 9f), Map.of(), null, null);
        Files.move(trash, root.resolve("step-000009.trash-4d"));
        // a step directory without COMPLETE (never written by the store) is ignored, not deleted
        Files.createDirectories(root.resolve("step-000007"));

        assertEquals(List.of(1L, 2L, 3L), store.list().stream().map(CheckpointStore::stepOf).toList());
        assertEquals(List.of(".lock", "step-000001", "step-000002", "step-000003", "step-000007"), names(root));
        assertEquals("three", Checkpoint.load(store.latest().orElseThrow()).config().get("name").asText());
        assertEquals("two", Checkpoint.load(root.resolve("step-000002")).config().get("name").asText());
        assertEquals(good, store.list().get(0));
    }

    @Test
    void leavesTemporaryDirectoriesAloneWhileAWriterHoldsTheLock(@TempDir Path runDir) throws IOException {
        CheckpointStore store = new CheckpointStore(runDir, 0);
        store.saveHost(1, config("one"), one("w", 1f), Map.of(), null, null);
        Path inProgress = Files.createDirectories(store.directory().resolve("step-000002.tmp-5e"));
        try (FileChannel channel = FileChannel.open(store.directory().resolve(".lock"), StandardOpenOption.WRITE);
             FileLock lock = channel.lock()) {
            assertEquals(1, CheckpointStore.stepOf(store.latest().orElseThrow()));
            assertTrue(Files.exists(inProgress), "a save in progress must not be cleaned up");
        }
        store.latest();
        assertFalse(Files.exists(inProgress));
    }

    @Test
    void damagedCheckpointsAreErrorsNamingTheFile(@TempDir Path runDir) throws IOException {
        CheckpointStore store = new CheckpointStore(runDir, 0);
        Path dir = store.saveHost(1, config("one"), one("w", 1f, 2f, 3f), one("m", 0f), null, null);

        IOException missingDir = assertThrows(IOException.class, () -> Checkpoint.load(runDir.resolve("nowhere")));
        assertTrue(missingDir.getMessage().contains("nowhere"), missingDir.getMessage());

        Files.writeString(dir.resolve("config.json"), "{\"name\": ");
        IOException badConfig = assertThrows(IOException.class, () -> Checkpoint.load(dir));
        assertTrue(badConfig.getMessage().contains("config.json"), badConfig.getMessage());
        Files.writeString(dir.resolve("config.json"), "{}");

        try (RandomAccessFile file = new RandomAccessFile(dir.resolve("model.safetensors").toFile(), "rw")) {
            file.setLength(file.length() - 4); // truncated: the last float is gone
        }
        IOException truncated = assertThrows(IOException.class, () -> Checkpoint.load(dir));
        assertTrue(truncated.getMessage().contains("model.safetensors"), truncated.getMessage());

        Files.delete(dir.resolve("model.safetensors"));
        IOException missing = assertThrows(IOException.class, () -> Checkpoint.load(dir));
        assertTrue(missing.getMessage().contains("model.safetensors"), missing.getMessage());

        store.saveHost(1, config("again"), one("w", 1f), Map.of(), null, null); // replaces the damaged one
        Files.writeString(dir.resolve("trainer_state.json"), "{\"step\": \"many\"}");
        IOException badState = assertThrows(IOException.class, () -> Checkpoint.load(dir));
        assertTrue(badState.getMessage().contains("trainer_state.json"), badState.getMessage());
    }

    /**
     * A child JVM saves 4 MiB checkpoints and is killed with SIGKILL at a random instant inside a save; the newest
     * complete checkpoint must load with exactly the values written for its step. The child saves only when told
     * to (lock step over stdin), and the kill comes a random fraction of its last measured save time after it
     * reports "saving", so the kill lands mid-save whatever the disk's speed. The run directory carries over
     * between rounds, so each child also resumes after a crash and its store clears the leftovers.
     */
    @Test
    void survivesKillNineDuringASave(@TempDir Path runDir) throws Exception {
        Random random = new Random(11);
        CheckpointStore store = new CheckpointStore(runDir, 2);
        int rounds = 5;
        int interrupted = 0;
        for (int round = 0; round < rounds; round++) {
            Process child = new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                    "-XX:TieredStopAtLevel=1", "-Xshare:auto", "-Xmx256m", "-cp", testClassPath(),
                    CheckpointKillChild.class.getName(), runDir.toString())
                    .redirectErrorStream(true).start();
            BlockingQueue<String> lines = new LinkedBlockingQueue<>();
            Thread reader = new Thread(() -> {
                try (BufferedReader in = new BufferedReader(new InputStreamReader(child.getInputStream(), StandardCharsets.UTF_8))) {
                    for (String line; (line = in.readLine()) != null; ) lines.add(line);
                } catch (IOException ignored) {
                    // the child was killed
                }
                lines.add("<eof>");
            });
            reader.setDaemon(true);
            reader.start();

            int completeSaves = 1 + round % 3; // from the third save on, retention deletes old checkpoints too
            List<String> transcript = new ArrayList<>();
            long saveNanos = 0;
            long delayNanos = 0;
            try {
                while (true) {
                    String line = next(lines, transcript);
                    if (line.equals("<eof>")) fail("child ended by itself: " + transcript);
                    if (line.startsWith("ready ")) {
                        child.getOutputStream().write('\n');
                        child.getOutputStream().flush();
                    } else if (line.startsWith("saving ") && completeSaves == 0) {
                        break;
                    } else if (line.startsWith("saved ")) {
                        saveNanos = Long.parseLong(line.split(" ")[2]);
                        completeSaves--;
                    }
                }
                delayNanos = (long) (random.nextDouble() * 0.9 * saveNanos);
                TimeUnit.NANOSECONDS.sleep(delayNanos);
            } finally {
                child.destroyForcibly(); // SIGKILL on Linux
                assertTrue(child.waitFor(10, TimeUnit.SECONDS));
            }
            // what the child printed before it died: the save it began and whether it reported the end
            for (String line = next(lines, transcript); !line.equals("<eof>"); line = next(lines, transcript)) { }
            long lastSaving = -1, lastSaved = -1;
            for (String line : transcript) {
                if (line.startsWith("saving ")) lastSaving = Long.parseLong(line.split(" ")[1]);
                if (line.startsWith("saved ")) lastSaved = Long.parseLong(line.split(" ")[1]);
            }
            boolean killedInsideSave = lastSaving > lastSaved;
            List<String> leftovers = names(store.directory());
            if (leftovers.stream().anyMatch(name -> name.contains(".tmp-"))) interrupted++;
            System.err.printf("round %d: save took %.1f ms, killed %.1f ms into the save of step %d; left %s%n",
                    round, saveNanos / 1e6, delayNanos / 1e6, lastSaving, leftovers);

            Path latest = store.latest().orElseThrow();
            long step = CheckpointStore.stepOf(latest);
            // the save in progress may have finished just before the signal landed
            assertTrue(step == lastSaved || (killedInsideSave && step == lastSaving),
                    "round " + round + ": latest " + step + ", child printed " + transcript);
            Checkpoint checkpoint = Checkpoint.load(latest);
            assertEquals(step, checkpoint.trainerState().step());
            assertEquals(step, checkpoint.config().get("written_at_step").asLong());
            assertEquals(step, checkpoint.provenance().get("step").asLong());
            assertExactValues(checkpoint.model().get("weight"), step, 0);
            assertExactValues(checkpoint.optimizer().get("weight.exp_avg"), step, 1);
            for (Path dir : store.list()) Checkpoint.load(dir);
            for (String name : names(store.directory())) assertFalse(name.contains(".tmp-") || name.contains(".old-") || name.contains(".trash-"), name);
        }
        assertTrue(interrupted > 0, "no kill landed inside a save's writes; the test proved nothing");
    }

    private static String next(BlockingQueue<String> lines, List<String> transcript) throws InterruptedException {
        String line = lines.poll(30, TimeUnit.SECONDS);
        assertNotNull(line, "child silent for 30 s: " + transcript);
        transcript.add(line);
        return line;
    }

    private static void assertExactValues(HostTensor tensor, long step, int which) {
        assertArrayEquals(new long[] {CheckpointKillChild.ROWS, CheckpointKillChild.COLUMNS}, tensor.shape());
        float[] values = tensor.toFloats();
        for (int i = 0; i < values.length; i++) {
            if (values[i] != CheckpointKillChild.value(step, which, i)) {
                fail(tensor.name() + "[" + i + "] = " + values[i] + ", written " + CheckpointKillChild.value(step, which, i) + " at step " + step);
            }
        }
    }

    /** Surefire may run tests from a manifest-only jar; its real class path is then in this property. */
    private static String testClassPath() {
        String surefire = System.getProperty("surefire.test.class.path");
        return surefire != null && !surefire.isBlank() ? surefire : System.getProperty("java.class.path");
    }
}
