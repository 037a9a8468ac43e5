package xllm.hub;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Hub pulls through {@link ModelStore} against {@link FakeHub}: no network beyond 127.0.0.1. */
class HubPullTest {

    private static final String REPO = "acme/tiny-bert";
    private static final byte[] CONFIG = "{\"model_type\":\"bert\",\"hidden_size\":8}".getBytes(StandardCharsets.UTF_8);
    private static final byte[] TOKENIZER = "{\"version\":\"1.0\",\"model\":{}}".getBytes(StandardCharsets.UTF_8);
    private static final byte[] WEIGHTS = randomBytes(300_000, 7);
    private static final byte[] GGUF = randomBytes(50_000, 8);

    @TempDir
    Path home;
    private FakeHub hub;

    @BeforeEach
    void startHub() throws IOException {
        hub = new FakeHub();
        hub.addFile(REPO, "config.json", CONFIG, false);
        hub.addFile(REPO, "tokenizer.json", TOKENIZER, false);
        hub.addFile(REPO, "model.safetensors", WEIGHTS, true);
        hub.addFile(REPO, "README.md", "# tiny".getBytes(), false);          // not in the default selection
        hub.addFile(REPO, "tiny.Q4_0.gguf", GGUF, true);                      // only with --file
        hub.addFile(REPO, "onnx/model.safetensors", WEIGHTS, true);           // not top level: not fetched
    }

    @AfterEach
    void stopHub() {
        hub.close();
    }

    private ModelStore store(String token, int retries) {
        return new ModelStore(home, List.of(), new HubClient(hub.endpoint(), token, retries, Duration.ZERO),
                new CarrierFetcher(List.of("false"), List.of()));
    }

    private Path modelDir() {
        return home.resolve("models").resolve("acme--tiny-bert");
    }

    @Test
    void fullDownloadVerifiesAndRecordsTheSnapshot() throws IOException {
        Path main = store(null, 0).pull(REPO, ProgressListener.SILENT);

        assertEquals(modelDir(), main, "a safetensors repo resolves to its snapshot dir");
        assertArrayEquals(CONFIG, Files.readAllBytes(main.resolve("config.json")));
        assertArrayEquals(TOKENIZER, Files.readAllBytes(main.resolve("tokenizer.json")));
        assertArrayEquals(WEIGHTS, Files.readAllBytes(main.resolve("model.safetensors")));
        assertFalse(Files.exists(main.resolve("README.md")));
        assertFalse(Files.exists(main.resolve("tiny.Q4_0.gguf")));
        assertFalse(Files.exists(main.resolve("onnx")));
        assertFalse(Files.exists(main.resolve("model.safetensors.part")));

        Manifest manifest = Manifest.read(main);
        assertEquals("hf:" + REPO, manifest.source());
        assertEquals(FakeHub.COMMIT, manifest.commit());
        assertEquals(3, manifest.files().size());
        assertTrue(manifest.files().contains(new Manifest.FileRecord("model.safetensors", WEIGHTS.length,
                FakeHub.sha256(WEIGHTS))));
        // Downloads used the listed commit, and the LFS file went through the CDN redirect.
        assertTrue(hub.requests().stream().anyMatch(r -> r.path().equals(
                "/" + REPO + "/resolve/" + FakeHub.COMMIT + "/model.safetensors") && r.status() == 302));
        assertEquals(1, hub.cdnRequests().size());
        assertEquals(WEIGHTS.length, hub.cdnRequests().get(0).bytesServed());
        assertEquals(main, store(null, 0).resolve(REPO));
    }

    @Test
    void secondPullMakesNoRequests() throws IOException {
        Path first = store(null, 0).pull(REPO, ProgressListener.SILENT);
        int requests = hub.requests().size();
        assertTrue(requests >= 4);

        Path second = store(null, 0).pull(REPO, ProgressListener.SILENT);

        assertEquals(first, second);
        assertEquals(requests, hub.requests().size(), "a complete model must not touch the network");
    }

    @Test
    void interruptedDownloadResumesWithRangeOnTheNextPull() throws IOException {
        hub.dropNextCdnAfter = 120_000;
        IOException dropped = assertThrows(IOException.class, () -> store(null, 0).pull(REPO, ProgressListener.SILENT));
        assertTrue(dropped.getMessage().contains("run the pull again to resume"), dropped.getMessage());
        assertTrue(dropped.getMessage().contains("/resolve/"), "names the URL: " + dropped.getMessage());
        Path part = modelDir().resolve("model.safetensors.part");
        long kept = Files.size(part);
        // The fake CDN aborts the connection after writing 120,000 bytes; bytes still in its socket buffer may be lost
        // with the reset, so the client keeps what actually arrived: some, at most all of them.
        assertTrue(kept > 0 && kept <= 120_000, "bytes kept in the .part file: " + kept);
        assertNull(Manifest.read(modelDir()), "not complete");
        assertThrows(IllegalArgumentException.class, () -> store(null, 0).resolve(REPO));

        Path main = store(null, 0).pull(REPO, ProgressListener.SILENT);

        List<FakeHub.Request> cdn = hub.cdnRequests();
        assertEquals(2, cdn.size());
        assertNull(cdn.get(0).range());
        assertEquals(120_000, cdn.get(0).bytesServed());
        assertEquals("bytes=" + kept + "-", cdn.get(1).range(), "resumes exactly where the kept bytes end");
        assertEquals(206, cdn.get(1).status());
        assertEquals(WEIGHTS.length - kept, cdn.get(1).bytesServed(), "only the missing bytes were sent again");
        assertArrayEquals(WEIGHTS, Files.readAllBytes(main.resolve("model.safetensors")));
        assertFalse(Files.exists(part));
    }

    @Test
    void droppedConnectionIsRetriedWithinOnePull() throws IOException {
        hub.dropNextCdnAfter = 50_000;

        Path main = store(null, 2).pull(REPO, ProgressListener.SILENT);

        List<FakeHub.Request> cdn = hub.cdnRequests();
        assertEquals(2, cdn.size());
        // a reset may discard some of the 50,000 bytes in flight: the retry must start where the kept bytes end
        long resumedAt = rangeStart(cdn.get(1).range());
        assertTrue(resumedAt > 0 && resumedAt <= 50_000, "resumed at " + resumedAt);
        assertEquals(WEIGHTS.length - resumedAt, cdn.get(1).bytesServed());
        assertArrayEquals(WEIGHTS, Files.readAllBytes(main.resolve("model.safetensors")));
    }

    @Test
    void serverIgnoringRangeStillGivesTheRightFile() throws IOException {
        hub.dropNextCdnAfter = 100_000;
        assertThrows(IOException.class, () -> store(null, 0).pull(REPO, ProgressListener.SILENT));
        hub.ignoreRange = true;

        Path main = store(null, 0).pull(REPO, ProgressListener.SILENT);

        FakeHub.Request second = hub.cdnRequests().get(1);
        long askedFrom = rangeStart(second.range());
        assertTrue(askedFrom > 0 && askedFrom <= 100_000, "asked from " + askedFrom);
        assertEquals(200, second.status());
        assertEquals(WEIGHTS.length, second.bytesServed());
        assertArrayEquals(WEIGHTS, Files.readAllBytes(main.resolve("model.safetensors")),
                "the part must be restarted, not appended to");
    }

    @Test
    void checksumMismatchFailsAndLeavesNoFile() {
        hub.lieAboutSha256("model.safetensors", "ab".repeat(32));

        IOException e = assertThrows(IOException.class, () -> store(null, 0).pull(REPO, ProgressListener.SILENT));

        assertTrue(e.getMessage().contains("sha256 " + FakeHub.sha256(WEIGHTS) + " != expected " + "ab".repeat(32)),
                e.getMessage());
        assertFalse(Files.exists(modelDir().resolve("model.safetensors")));
        assertFalse(Files.exists(modelDir().resolve("model.safetensors.part")));
        assertNull(Manifest.read(modelDir()));
    }

    @Test
    void missingRepoAndMissingFileAreNamed() {
        IOException repo = assertThrows(IOException.class,
                () -> store(null, 0).pull("acme/nope", ProgressListener.SILENT));
        assertTrue(repo.getMessage().startsWith("repository acme/nope not found (HTTP 404"), repo.getMessage());
        assertTrue(repo.getMessage().contains(hub.endpoint() + "/api/models/acme/nope/revision/main"), repo.getMessage());

        IOException file = assertThrows(IOException.class,
                () -> store(null, 0).pull(REPO, null, List.of("missing.gguf"), ProgressListener.SILENT));
        assertTrue(file.getMessage().startsWith("file missing.gguf not found in " + REPO), file.getMessage());
    }

    @Test
    void privateRepoAsksForTokenAndTheTokenStaysOnTheHub() throws IOException {
        hub.makePrivate(REPO, "hf_secret");

        IOException denied = assertThrows(IOException.class, () -> store(null, 0).pull(REPO, ProgressListener.SILENT));
        assertTrue(denied.getMessage().contains("HTTP 401"), denied.getMessage());
        assertTrue(denied.getMessage().contains("set HF_TOKEN"), denied.getMessage());
        IOException wrong = assertThrows(IOException.class,
                () -> store("hf_wrong", 0).pull(REPO, ProgressListener.SILENT));
        assertTrue(wrong.getMessage().contains("HF_TOKEN was rejected"), wrong.getMessage());

        Path main = store("hf_secret", 0).pull(REPO, ProgressListener.SILENT);

        assertArrayEquals(WEIGHTS, Files.readAllBytes(main.resolve("model.safetensors")));
        assertEquals(1, hub.cdnRequests().size());
        assertNull(hub.cdnRequests().get(0).authorization(), "the token must not follow the redirect to the CDN");
    }

    @Test
    void ggufOnRequestResolvesToTheFile() throws IOException {
        Path main = store(null, 0).pull(REPO, null, List.of("tiny.Q4_0.gguf"), ProgressListener.SILENT);

        assertEquals(modelDir().resolve("tiny.Q4_0.gguf"), main);
        assertArrayEquals(GGUF, Files.readAllBytes(main));
        assertFalse(Files.exists(modelDir().resolve("model.safetensors")));
        assertEquals(main, store(null, 0).resolve(REPO));
    }

    @Test
    void repoWithoutSafetensorsPointsToFile() {
        hub.addFile("acme/gguf-only", "model.Q8_0.gguf", GGUF, true);

        IOException e = assertThrows(IOException.class,
                () -> store(null, 0).pull("acme/gguf-only", ProgressListener.SILENT));

        assertTrue(e.getMessage().contains("--file: model.Q8_0.gguf"), e.getMessage());
    }

    @Test
    void unreachableHubNamesTheUrl() {
        ModelStore store = new ModelStore(home, List.of(),
                new HubClient(URI.create("http://127.0.0.1:1"), null, 0, Duration.ZERO),
                new CarrierFetcher(List.of("false"), List.of()));

        IOException e = assertThrows(IOException.class, () -> store.pull(REPO, ProgressListener.SILENT));

        assertTrue(e.getMessage().startsWith("could not reach http://127.0.0.1:1/api/models/" + REPO), e.getMessage());
    }

    @Test
    void newRevisionRefetchesOnlyChangedFiles() throws IOException {
        store(null, 0).pull(REPO, ProgressListener.SILENT);
        hub.addFile(REPO, "config.json", "{\"model_type\":\"bert\",\"hidden_size\":16}".getBytes(), false);
        int cdnBefore = hub.cdnRequests().size();

        Path main = store(null, 0).pull(REPO, "v2", List.of(), ProgressListener.SILENT);

        assertEquals("{\"model_type\":\"bert\",\"hidden_size\":16}", Files.readString(main.resolve("config.json")));
        assertEquals(cdnBefore, hub.cdnRequests().size(), "unchanged weights (same sha256) are not downloaded again");
        assertEquals("v2", Manifest.read(main).revision());
    }

    private static byte[] randomBytes(int n, long seed) {
        byte[] bytes = new byte[n];
        new Random(seed).nextBytes(bytes);
        return bytes;
    }

    /** N of a {@code bytes=N-} Range header. */
    private static long rangeStart(String range) {
        assertNotNull(range, "a Range header was sent");
        assertTrue(range.startsWith("bytes=") && range.endsWith("-"), range);
        return Long.parseLong(range.substring(6, range.length() - 1));
    }
}
