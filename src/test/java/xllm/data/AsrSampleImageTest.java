package xllm.data;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Multimodal-ASR manifests: the optional image is resolved and confined exactly as the audio. */
class AsrSampleImageTest {

    @TempDir
    Path dir;

    @Test
    void theOptionalImageIsReadWhenPresentAndNullOtherwise() throws IOException {
        Path data = Files.createDirectories(dir.resolve("corpus"));
        Files.write(data.resolve("a.wav"), new byte[] {1});
        Files.write(data.resolve("a.png"), new byte[] {1});
        Path manifest = Files.write(data.resolve("eval.jsonl"), List.of(
                "{\"id\": \"a\", \"audio\": \"a.wav\", \"text\": \"two red circles\", \"image\": \"a.png\"}",
                "{\"id\": \"b\", \"audio\": \"a.wav\", \"text\": \"one blue star\"}"));
        List<AsrSample> samples = AsrSample.readManifest(manifest);
        assertEquals(new AsrSample("a", data.resolve("a.wav"), "two red circles", data.resolve("a.png")), samples.get(0));
        assertNull(samples.get(1).image());
        assertEquals(new AsrSample("b", data.resolve("a.wav"), "one blue star"), samples.get(1));
    }

    @Test
    void anImageOutsideTheTreeOrMissingIsRefused() throws IOException {
        Path data = Files.createDirectories(dir.resolve("corpus"));
        Files.write(data.resolve("a.wav"), new byte[] {1});
        Files.write(dir.resolve("secret.png"), new byte[] {1});
        Path manifest = data.resolve("eval.jsonl");
        for (String[] c : new String[][] {{"\"../secret.png\"", "outside " + data}, {"\"gone.png\"", "image file not found"},
                {"3", "field \"image\" must be a string"}}) {
            Files.write(manifest, List.of("{\"id\": \"a\", \"audio\": \"a.wav\", \"text\": \"red\", \"image\": " + c[0] + "}"));
            IOException e = assertThrows(IOException.class, () -> AsrSample.readManifest(manifest));
            assertTrue(e.getMessage().startsWith(manifest + ":1: ") && e.getMessage().contains(c[1]), e.getMessage());
        }
    }
}
