package xllm.hub;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ModelStoreTest {

    @TempDir
    Path home;

    private ModelStore store(FakeHub hub) {
        return new ModelStore(home, Carrier.BUILT_IN, new HubClient(hub.endpoint(), null, 0, Duration.ZERO),
                new CarrierFetcher(List.of("false"), List.of()));
    }

    @Test
    void missingModelNamesTheCacheAndThePullCommand() {
        ModelStore store = new ModelStore(home);

        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> store.resolve("smollm2-135m-instruct"));

        assertEquals("model 'smollm2-135m-instruct' is not in the cache (" + home.toAbsolutePath().resolve("models")
                + "); fetch it with: ./xllm models pull smollm2-135m-instruct", e.getMessage());
        IllegalArgumentException hub = assertThrows(IllegalArgumentException.class, () -> store.resolve("acme/x"));
        assertTrue(hub.getMessage().endsWith("fetch it with: ./xllm models pull acme/x"));
        IllegalArgumentException typo = assertThrows(IllegalArgumentException.class, () -> store.resolve("runs/nope/final"));
        assertTrue(typo.getMessage().contains("nor a file or directory (" + java.nio.file.Path.of("runs/nope/final").toAbsolutePath()
                + ")"), typo.getMessage());
    }

    @Test
    void existingPathsResolveToThemselves() throws IOException {
        Path file = Files.writeString(home.resolve("local.gguf"), "GGUF");

        assertEquals(file, new ModelStore(home).resolve(file.toString()));
        assertEquals(home, new ModelStore(home).resolve(home.toString()));
    }

    /** A directory in the working directory named like a model never replaces the cached model. */
    @Test
    void bareNamesResolveToTheCacheAndPathsOnlyWhenExplicit(@TempDir Path work) throws IOException {
        ModelStore store = new ModelStore(home);
        Path cached = home.resolve("models/smollm2-135m-instruct");
        Files.createDirectories(cached);
        Files.writeString(cached.resolve("config.json"), "{}");
        new Manifest("smollm2-135m-instruct", "pypi:x", null, null, "", List.of(),
                List.of(new Manifest.FileRecord("config.json", 2, Transfer.sha256(cached.resolve("config.json")))),
                "2026-01-01T00:00:00Z").write(cached);
        Path local = Files.createDirectories(work.resolve("smollm2-135m-instruct"));
        Files.createDirectories(work.resolve("my-run"));
        Files.writeString(work.resolve("local.gguf"), "GGUF");

        assertEquals(cached, store.resolve("smollm2-135m-instruct", work), "the bare name is the cached model");
        assertEquals(work.resolve("./smollm2-135m-instruct"), store.resolve("./smollm2-135m-instruct", work),
                "./name is the local directory");
        assertEquals(local, store.resolve(local.toString(), work), "so is an absolute path");
        assertEquals(work.resolve("local.gguf"), store.resolve("local.gguf", work), "a file name with a model extension");
        IllegalArgumentException bare = assertThrows(IllegalArgumentException.class, () -> store.resolve("my-run", work));
        assertEquals("model 'my-run' is not in the cache (" + home.resolve("models") + "); to use the local directory "
                + "write ./my-run", bare.getMessage());
        IllegalArgumentException gguf = assertThrows(IllegalArgumentException.class, () -> store.resolve("other.gguf", work));
        assertEquals("model 'other.gguf' is not in the cache (" + home.resolve("models") + "), nor a file or directory ("
                + work.resolve("other.gguf").toAbsolutePath() + ")", gguf.getMessage());
    }

    @Test
    void aFileWhereTheCacheBelongsIsNamed() throws IOException {
        Path file = Files.writeString(home.resolve("not-a-dir"), "x");
        IOException e = assertThrows(IOException.class,
                () -> new ModelStore(file).pull("smollm2-135m-instruct", ProgressListener.SILENT));
        assertEquals(file + ": is a file, expected a directory (the model cache; XLLM_HOME moves it)", e.getMessage());
    }

    @Test
    void listAndRemoveRoundTrip() throws IOException {
        try (FakeHub hub = new FakeHub()) {
            hub.addFile("acme/one", "config.json", "{}".getBytes(), false);
            hub.addFile("acme/one", "model.safetensors", new byte[5000], true);
            hub.addFile("acme/two", "config.json", "{\"a\":1}".getBytes(), false);
            hub.addFile("acme/two", "model.safetensors", new byte[9000], true);
            ModelStore store = store(hub);
            assertEquals(List.of(), store.list());
            Path one = store.pull("acme/one", ProgressListener.SILENT);
            hub.dropNextCdnAfter = 4000;
            assertThrows(IOException.class, () -> store.pull("acme/two", ProgressListener.SILENT));

            List<ModelEntry> entries = store.list();

            assertEquals(2, entries.size());
            ModelEntry first = entries.get(0);
            assertEquals("acme/one", first.name());
            assertEquals("hf:acme/one@main", first.source());
            assertEquals(one, first.path());
            assertTrue(first.complete());
            assertTrue(first.sizeBytes() > 5002, "weights + config + manifest");
            ModelEntry partial = entries.get(1);
            assertEquals(new ModelEntry("acme/two", "hf:acme/two", home.resolve("models/acme--two"),
                    7 + 4000, false), partial, "the partial download is listed as incomplete, with its bytes");

            store.remove("acme/two");
            store.remove("acme/one");

            assertEquals(List.of(), store.list());
            assertFalse(Files.exists(one));
            IllegalArgumentException gone = assertThrows(IllegalArgumentException.class, () -> store.remove("acme/one"));
            assertTrue(gone.getMessage().startsWith("model 'acme/one' is not in the cache"), gone.getMessage());
        }
    }

    @Test
    void damagedModelIsNotResolvedAndIsPulledAgain() throws IOException {
        try (FakeHub hub = new FakeHub()) {
            hub.addFile("acme/one", "config.json", "{}".getBytes(), false);
            hub.addFile("acme/one", "model.safetensors", new byte[5000], true);
            ModelStore store = store(hub);
            Path dir = store.pull("acme/one", ProgressListener.SILENT);
            Files.write(dir.resolve("model.safetensors"), new byte[10]); // truncated by something else

            assertThrows(IllegalArgumentException.class, () -> store.resolve("acme/one"));
            assertFalse(store.list().get(0).complete());
            store.pull("acme/one", ProgressListener.SILENT);

            assertEquals(5000, Files.size(dir.resolve("model.safetensors")));
            assertEquals(dir, store.resolve("acme/one"));
        }
    }

    @Test
    void unknownNamesAndBadIdsAreRefused() {
        ModelStore store = new ModelStore(home);
        for (String bad : List.of("no-such-model", "a/b/c", "../etc", "acme/a--b")) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> store.pull(bad, ProgressListener.SILENT), bad);
            assertTrue(e.getMessage().startsWith("unknown model '" + bad + "'"), e.getMessage());
            assertTrue(e.getMessage().contains("smollm2-135m-instruct"), e.getMessage());
        }
        assertThrows(IllegalArgumentException.class, () -> store.remove("../outside"));
    }

    @Test
    void defaultHomeFollowsEnvironmentThenProperty() {
        String previous = System.getProperty("xllm.home");
        try {
            System.setProperty("xllm.home", home.toString());
            String env = System.getenv("XLLM_HOME");
            Path expected = env != null && !env.isBlank() ? Path.of(env) : home;
            assertEquals(expected.toAbsolutePath(), ModelStore.defaultStore().home());
            System.clearProperty("xllm.home");
            if (env == null || env.isBlank()) {
                assertEquals(Path.of(System.getProperty("user.home"), ".cache", "xllm"), ModelStore.defaultHome());
            }
        } finally {
            if (previous == null) System.clearProperty("xllm.home");
            else System.setProperty("xllm.home", previous);
        }
    }
}
