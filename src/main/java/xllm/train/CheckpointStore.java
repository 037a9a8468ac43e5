package xllm.train;

import ai.djl.ndarray.NDArray;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import xllm.tensor.HostTensor;
import xllm.tensor.SafetensorsWriter;

import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.channels.OverlappingFileLockException;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Comparator;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The checkpoints of one training run: {@code <runDir>/checkpoints/step-000123/}, each a {@link Checkpoint}
 * directory, the newest {@code keepLast} kept.
 *
 * <p>Crash safety (a kill -9 at any instant leaves the newest finished checkpoint loadable; tested in
 * {@code CheckpointStoreTest} by killing a child JVM mid-save):
 * <ol>
 *   <li>every file is written into {@code step-N.tmp-<random>/} and forced to disk;</li>
 *   <li>the {@code COMPLETE} marker is written last, then the directory is renamed to {@code step-N} in one
 *       atomic rename (a directory rename cannot replace a non-empty directory, so an existing {@code step-N}
 *       is first renamed to {@code step-N.old-<random>} and removed afterwards);</li>
 *   <li>old checkpoints beyond {@code keepLast} are renamed to {@code step-N.trash-<random>} before their files
 *       are deleted, so a half-deleted checkpoint never carries its final name.</li>
 * </ol>
 * {@link #latest()} and {@link #list()} see only {@code step-N} directories holding {@code COMPLETE}. They also
 * clear what a crash left behind: temporary directories are removed, except that a finished one whose step
 * has no final directory (the crash fell between the two renames of a replacement) is put in place.
 *
 * <p>Writers hold an exclusive lock on {@code checkpoints/.lock} while saving, and the clean-up only runs when
 * that lock is free, so an evaluation process that watches a live run never removes the trainer's temporary
 * directory. A process killed while holding the lock releases it with its file descriptors.
 */
public final class CheckpointStore {

    public static final String CHECKPOINTS = "checkpoints";
    /** {@code <runDir>/final}: a link to the checkpoint of the finished run, what later stages' recipes name. */
    public static final String FINAL = "final";
    private static final Pattern NAME = Pattern.compile("step-(\\d+)(?:\\.(tmp|old|trash)-[0-9a-f]+)?");

    private final Path root;
    private final int keepLast;

    /**
     * @param runDir   the run directory; checkpoints go to {@code runDir/checkpoints}
     * @param keepLast how many of the newest checkpoints to keep; 0 or less keeps all
     */
    public CheckpointStore(Path runDir, int keepLast) {
        this.root = runDir.resolve(CHECKPOINTS);
        this.keepLast = keepLast;
    }

    public Path directory() {
        return root;
    }

    public static String directoryName(long step) {
        return String.format("step-%06d", step);
    }

    /** The step of a checkpoint directory from its name ({@code step-000123} → 123). */
    public static long stepOf(Path checkpointDir) {
        Matcher m = NAME.matcher(checkpointDir.getFileName().toString());
        if (!m.matches() || m.group(2) != null) {
            throw new IllegalArgumentException(checkpointDir + ": not a checkpoint directory name (step-N)");
        }
        return Long.parseLong(m.group(1));
    }

    /**
     * Saves a checkpoint for {@code step} and returns its directory. The arrays are copied out of native memory
     * first, so the caller may close them as soon as this returns.
     *
     * @param optimizer  optimizer state; null or empty writes no optimizer.safetensors
     * @param state      resume state; null writes no trainer_state.json
     * @param provenance a JSON object (see {@link #provenance}); null for an empty one. "step", "created" and
     *                   (when {@code git rev-parse HEAD} works) "git_commit" are added if absent.
     */
    /**
     * Points {@code <runDir>/final} at {@code checkpoint} (a relative symbolic link, replaced atomically), so recipes
     * can name {@code runs/<stage>/final} without knowing the step count.
     */
    public void markFinal(Path checkpoint) throws IOException {
        Path runDir = root.toAbsolutePath().getParent();
        Path link = runDir.resolve(FINAL);
        Path temporary = runDir.resolve(FINAL + ".tmp-" + Long.toHexString(System.nanoTime()));
        Files.createSymbolicLink(temporary, runDir.relativize(checkpoint.toAbsolutePath()));
        try {
            Files.move(temporary, link, java.nio.file.StandardCopyOption.ATOMIC_MOVE, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        } finally {
            Files.deleteIfExists(temporary);
        }
    }

    public Path save(long step, JsonNode config, Map<String, NDArray> model, Map<String, NDArray> optimizer,
                     TrainerState state, JsonNode provenance) throws IOException {
        return saveHost(step, config, toHost(model), toHost(optimizer), state, provenance);
    }

    /** {@link #save} for tensors already in host memory (conversions, tests, tools). */
    public Path saveHost(long step, JsonNode config, Map<String, HostTensor> model, Map<String, HostTensor> optimizer,
                         TrainerState state, JsonNode provenance) throws IOException {
        if (step < 0) throw new IllegalArgumentException("negative step " + step);
        if (config == null) throw new IllegalArgumentException("a checkpoint needs its config");
        if (model == null || model.isEmpty()) throw new IllegalArgumentException("a checkpoint needs model tensors");
        if (provenance != null && !provenance.isObject()) {
            throw new IllegalArgumentException("provenance must be a JSON object, got " + provenance.getNodeType());
        }
        ObjectNode fullProvenance = provenance == null ? Checkpoint.JSON.createObjectNode() : ((ObjectNode) provenance).deepCopy();
        if (!fullProvenance.has("step")) fullProvenance.put("step", step);
        if (!fullProvenance.has("created")) fullProvenance.put("created", Instant.now().toString());
        if (!fullProvenance.has("git_commit")) {
            GitState git = GitState.current();
            if (git != null) {
                fullProvenance.put("git_commit", git.commit);
                fullProvenance.put("git_dirty", git.dirty);
            }
        }

        Files.createDirectories(root);
        try (FileChannel lockChannel = openLock(); FileLock lock = lockChannel.lock()) {
            String finalName = directoryName(step);
            Path temp = createUnique(finalName + ".tmp-");
            try {
                // step 1: every file into the temporary directory, each forced to disk
                writeDurably(temp.resolve(Checkpoint.CONFIG), Checkpoint.JSON.writerWithDefaultPrettyPrinter().writeValueAsBytes(config));
                SafetensorsWriter.write(temp.resolve(Checkpoint.MODEL), sortedByName(model), Map.of("format", "pt"));
                if (optimizer != null && !optimizer.isEmpty()) {
                    SafetensorsWriter.write(temp.resolve(Checkpoint.OPTIMIZER), sortedByName(optimizer), Map.of("format", "pt"));
                }
                if (state != null) {
                    writeDurably(temp.resolve(Checkpoint.TRAINER_STATE), Checkpoint.JSON.writerWithDefaultPrettyPrinter().writeValueAsBytes(state));
                }
                writeDurably(temp.resolve(Checkpoint.PROVENANCE), Checkpoint.JSON.writerWithDefaultPrettyPrinter().writeValueAsBytes(fullProvenance));
                forceDirectory(temp);
                // step 2: the marker last, so COMPLETE implies every file above is on disk
                writeDurably(temp.resolve(Checkpoint.COMPLETE), ("step " + step + "\n").getBytes(StandardCharsets.UTF_8));
                forceDirectory(temp);
            } catch (IOException | RuntimeException e) {
                deleteTree(temp);
                throw e;
            }
            // step 3: publish with one rename; an existing directory of this step is renamed away first
            Path target = root.resolve(finalName);
            Path replaced = null;
            if (Files.exists(target)) {
                replaced = uniqueName(finalName + ".old-");
                Files.move(target, replaced, StandardCopyOption.ATOMIC_MOVE);
            }
            Files.move(temp, target, StandardCopyOption.ATOMIC_MOVE);
            forceDirectory(root);
            if (replaced != null) deleteTree(replaced);
            // step 4: retention, never touching the checkpoint just written
            if (keepLast > 0) {
                List<Path> complete = completeByStep();
                int excess = complete.size() - keepLast;
                for (Path old : complete) {
                    if (excess <= 0) break;
                    if (old.equals(target)) continue;
                    remove(old);
                    excess--;
                }
            }
            return target;
        }
    }

    /** The complete checkpoint with the highest step, after clearing what a crash left behind. */
    public Optional<Path> latest() throws IOException {
        List<Path> all = list();
        return all.isEmpty() ? Optional.empty() : Optional.of(all.get(all.size() - 1));
    }

    /** Complete checkpoint directories by ascending step, after clearing what a crash left behind. */
    public List<Path> list() throws IOException {
        if (!Files.isDirectory(root)) return List.of();
        recoverIfUnlocked();
        return completeByStep();
    }

    /**
     * A provenance object for {@link #save}: stage id, each data manifest's path, size and sha256, and metrics.
     * Hashing reads the manifests, so build it once per run and pass the same object to every save.
     */
    public static ObjectNode provenance(String stageId, Collection<Path> dataManifests, Map<String, ?> metrics) throws IOException {
        ObjectNode node = Checkpoint.JSON.createObjectNode();
        node.put("stage", stageId);
        ArrayNode data = node.putArray("data");
        for (Path manifest : dataManifests) {
            data.addObject()
                    .put("path", manifest.toString())
                    .put("bytes", Files.size(manifest))
                    .put("sha256", xllm.tensor.FileDigest.sha256(manifest));
        }
        node.set("metrics", Checkpoint.JSON.valueToTree(metrics == null ? Map.of() : metrics));
        return node;
    }


    // ---- directory bookkeeping ----

    private List<Path> completeByStep() throws IOException {
        TreeMap<Long, Path> byStep = new TreeMap<>();
        for (Path dir : children()) {
            Matcher m = NAME.matcher(dir.getFileName().toString());
            if (m.matches() && m.group(2) == null && Files.exists(dir.resolve(Checkpoint.COMPLETE))) {
                byStep.put(Long.parseLong(m.group(1)), dir);
            }
        }
        return new ArrayList<>(byStep.values());
    }

    /** Clears crash leftovers, but only when no writer (this or another process) holds the lock. */
    private void recoverIfUnlocked() throws IOException {
        FileChannel lockChannel;
        try {
            lockChannel = openLock();
        } catch (IOException e) {
            return; // read-only run directory: nothing to clean, and nothing we may clean
        }
        try (lockChannel) {
            FileLock lock;
            try {
                lock = lockChannel.tryLock();
            } catch (OverlappingFileLockException e) {
                return; // another thread of this JVM is saving
            }
            if (lock == null) return; // another process is saving
            try (lock) {
                recover();
            }
        }
    }

    private void recover() throws IOException {
        // Newer writes first: a finished tmp-directory wins over the old directory it was about to replace.
        for (String kind : List.of("tmp", "old", "trash")) {
            for (Path dir : children()) {
                Matcher m = NAME.matcher(dir.getFileName().toString());
                if (!m.matches() || !kind.equals(m.group(2))) continue;
                Path target = root.resolve(directoryName(Long.parseLong(m.group(1))));
                boolean finished = Files.exists(dir.resolve(Checkpoint.COMPLETE));
                if (!kind.equals("trash") && finished && !Files.exists(target)) {
                    // the crash fell between the rename away of the old step-N and the rename in of the new one
                    Files.move(dir, target, StandardCopyOption.ATOMIC_MOVE);
                    forceDirectory(root);
                } else {
                    deleteTree(dir);
                }
            }
        }
    }

    private List<Path> children() throws IOException {
        List<Path> out = new ArrayList<>();
        try (DirectoryStream<Path> stream = Files.newDirectoryStream(root, Files::isDirectory)) {
            stream.forEach(out::add);
        } catch (NoSuchFileException e) {
            return out;
        }
        out.sort(Comparator.naturalOrder());
        return out;
    }

    private FileChannel openLock() throws IOException {
        return FileChannel.open(root.resolve(".lock"), StandardOpenOption.CREATE, StandardOpenOption.WRITE);
    }

    private void remove(Path checkpoint) throws IOException {
        Path trash = uniqueName(checkpoint.getFileName() + ".trash-");
        Files.move(checkpoint, trash, StandardCopyOption.ATOMIC_MOVE);
        deleteTree(trash);
    }

    private Path uniqueName(String prefix) {
        while (true) {
            Path candidate = root.resolve(prefix + Long.toHexString(ThreadLocalRandom.current().nextLong() >>> 1));
            if (!Files.exists(candidate)) return candidate;
        }
    }

    /** Like Files.createTempDirectory, but with the default permissions rather than owner-only. */
    private Path createUnique(String prefix) throws IOException {
        while (true) {
            try {
                return Files.createDirectory(uniqueName(prefix));
            } catch (FileAlreadyExistsException e) {
                // raced with another name; draw again
            }
        }
    }

    private static void writeDurably(Path file, byte[] bytes) throws IOException {
        try (FileChannel out = FileChannel.open(file, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
            ByteBuffer buffer = ByteBuffer.wrap(bytes);
            while (buffer.hasRemaining()) out.write(buffer);
            out.force(true);
        }
    }

    /** Makes renames and new entries in a directory durable; a no-op where directories cannot be opened. */
    private static void forceDirectory(Path dir) {
        try (FileChannel channel = FileChannel.open(dir, StandardOpenOption.READ)) {
            channel.force(true);
        } catch (IOException e) {
            // some platforms (Windows) cannot fsync a directory; the rename is still atomic there
        }
    }

    static void deleteTree(Path dir) throws IOException {
        if (!Files.exists(dir)) return;
        try (var walk = Files.walk(dir)) {
            for (Path p : walk.sorted(Comparator.reverseOrder()).toList()) Files.deleteIfExists(p);
        }
    }

    private static List<HostTensor> sortedByName(Map<String, HostTensor> tensors) {
        List<HostTensor> out = new ArrayList<>();
        tensors.entrySet().stream().sorted(Map.Entry.comparingByKey()).forEach(e -> {
            HostTensor t = e.getValue();
            // the map key is the name on disk, whatever name the tensor object carries
            out.add(t.name().equals(e.getKey()) ? t : new HostTensor(e.getKey(), t.dtype(), t.shape(), t.data()));
        });
        return out;
    }

    private static Map<String, HostTensor> toHost(Map<String, NDArray> arrays) {
        if (arrays == null) return Map.of();
        Map<String, HostTensor> out = new TreeMap<>();
        arrays.forEach((name, array) -> out.put(name, SafetensorsWriter.fromNDArray(name, array)));
        return out;
    }

    /** The source tree's commit, looked up once per JVM; null outside a git work tree or without git. */
    private record GitState(String commit, boolean dirty) {
        private static volatile Optional<GitState> cached;

        static GitState current() {
            Optional<GitState> c = cached;
            if (c == null) {
                String commit = run("git", "rev-parse", "HEAD");
                String status = commit == null ? null : run("git", "status", "--porcelain", "--untracked-files=no");
                c = Optional.ofNullable(commit == null || commit.isBlank() ? null
                        : new GitState(commit.strip(), status != null && !status.isBlank()));
                cached = c;
            }
            return c.orElse(null);
        }

        private static String run(String... command) {
            try {
                Process process = new ProcessBuilder(command).redirectErrorStream(true).start();
                process.getOutputStream().close();
                byte[] output = process.getInputStream().readAllBytes();
                if (!process.waitFor(5, TimeUnit.SECONDS)) {
                    process.destroyForcibly();
                    return null;
                }
                return process.exitValue() == 0 ? new String(output, StandardCharsets.UTF_8) : null;
            } catch (IOException e) {
                return null;
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return null;
            }
        }
    }
}
