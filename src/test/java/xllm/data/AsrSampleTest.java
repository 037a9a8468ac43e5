package xllm.data;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** ASR manifests: audio paths stay inside the manifest's directory tree unless the opt-out is set. */
class AsrSampleTest {

    @TempDir
    Path dir;

    @Test
    void audioOutsideTheManifestTreeIsRefused() throws IOException {
        Path data = Files.createDirectories(dir.resolve("corpus"));
        Files.write(data.resolve("a.wav"), new byte[] {1});
        Files.write(dir.resolve("b.wav"), new byte[] {1});
        Path manifest = Files.write(data.resolve("train.jsonl"), List.of(
                "{\"id\": \"a\", \"audio\": \"a.wav\", \"text\": \"red circle\"}",
                "{\"id\": \"b\", \"audio\": \"../b.wav\", \"text\": \"blue square\"}"));
        IOException error = assertThrows(IOException.class, () -> AsrSample.readManifest(manifest));
        assertTrue(error.getMessage().startsWith(manifest + ":2: "), error.getMessage());
        assertTrue(error.getMessage().contains("../b.wav") && error.getMessage().contains("outside " + data),
                error.getMessage());
        Files.write(manifest, List.of("{\"id\": \"a\", \"audio\": \"" + dir.resolve("b.wav") + "\", \"text\": \"red\"}"));
        assertThrows(IOException.class, () -> AsrSample.readManifest(manifest));
    }

    @Test
    void theProjectsOwnFixtureManifestIsRead() throws IOException {
        List<AsrSample> clips = AsrSample.readManifest(Path.of("src/test/resources/fixtures/asr/manifest.jsonl"));
        assertEquals(4, clips.size());
    }
}
