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

/** Strict reading of LLaVA-style manifests: roles, order, and media confined to the manifest's directory tree. */
class ConversationSampleTest {

    @TempDir
    Path dir;

    private static String row(String id, String field, String media) {
        return "{\"id\": \"" + id + "\", \"" + field + "\": \"" + media + "\", \"conversations\": ["
                + "{\"from\": \"human\", \"value\": \"<image>\\nWhat is it?\"}, {\"from\": \"gpt\", \"value\": \"A cat.\"}]}";
    }

    private Path manifest(String... rows) throws IOException {
        Path data = Files.createDirectories(dir.resolve("data"));
        return Files.write(data.resolve("train.jsonl"), List.of(rows));
    }

    private static void assertRefused(Path manifest, String... parts) {
        IOException error = assertThrows(IOException.class, () -> ConversationSample.readManifest(manifest));
        for (String part : parts) assertTrue(error.getMessage().contains(part), error.getMessage());
    }

    @Test
    void mediaInsideTheManifestTreeIsRead() throws IOException {
        Path images = Files.createDirectories(dir.resolve("data/images"));
        Files.write(images.resolve("cat.png"), new byte[] {1});
        Path manifest = manifest(row("a", "image", "images/cat.png"), row("b", "image", "images/../images/cat.png"));
        List<ConversationSample> samples = ConversationSample.readManifest(manifest);
        assertEquals(images.resolve("cat.png"), samples.get(0).image());
        assertEquals(images.resolve("cat.png"), samples.get(1).image());
    }

    @Test
    void mediaOutsideTheManifestTreeIsRefusedNamingFileAndLine() throws IOException {
        Path outside = Files.write(dir.resolve("secret.wav"), new byte[] {1});
        Files.write(Files.createDirectories(dir.resolve("data")).resolve("ok.png"), new byte[] {1});
        Path manifest = manifest(row("a", "image", "ok.png"), row("b", "audio", "../secret.wav"));
        assertRefused(manifest, manifest + ":2: ", "audio", "../secret.wav", "outside " + manifest.getParent(),
                "--allow-media-outside-manifest");
        Path absolute = manifest(row("a", "image", outside.toString()));
        assertRefused(absolute, absolute + ":1: ", outside.toString(), "outside");
    }

    @Test
    void aSymbolicLinkLeadingOutIsRefused() throws IOException {
        Path outside = Files.write(dir.resolve("secret.png"), new byte[] {1});
        Path data = Files.createDirectories(dir.resolve("data"));
        Files.createSymbolicLink(data.resolve("innocent.png"), outside);
        Path manifest = manifest(row("a", "image", "innocent.png"));
        assertRefused(manifest, manifest + ":1: ", "innocent.png", "symbolic link", outside.toString());
    }

    @Test
    void theOptOutAllowsMediaAnywhere() throws IOException {
        Path outside = Files.write(dir.resolve("photo.png"), new byte[] {1});
        Path manifest = manifest(row("a", "image", "../photo.png"));
        String previous = System.setProperty(MediaPaths.ALLOW_OUTSIDE_PROPERTY, "true");
        try {
            assertEquals(outside, ConversationSample.readManifest(manifest).get(0).image());
        } finally {
            if (previous == null) System.clearProperty(MediaPaths.ALLOW_OUTSIDE_PROPERTY);
            else System.setProperty(MediaPaths.ALLOW_OUTSIDE_PROPERTY, previous);
        }
    }

    @Test
    void aMediaPathThatIsADirectoryOrMissingIsNamed() throws IOException {
        Files.createDirectories(dir.resolve("data/clip.wav"));
        Path manifest = manifest(row("a", "audio", "clip.wav"));
        assertRefused(manifest, manifest + ":1: ", dir.resolve("data/clip.wav") + ": is a directory, not an audio file");
        Path missing = manifest(row("a", "image", "gone.png"));
        assertRefused(missing, missing + ":1: ", "image file not found: " + dir.resolve("data/gone.png"));
    }

    @Test
    void turnsInTheWrongOrderAreRefused() throws IOException {
        Files.write(Files.createDirectories(dir.resolve("data")).resolve("cat.png"), new byte[] {1});
        Path manifest = manifest(row("a", "image", "cat.png"), "{\"id\": \"b\", \"image\": \"cat.png\", \"conversations\": ["
                + "{\"from\": \"gpt\", \"value\": \"A cat.\"}, {\"from\": \"human\", \"value\": \"<image>\\nWhat is it?\"}]}");
        assertRefused(manifest, manifest + ":2: ", "human turn then one gpt turn");
    }

    @Test
    void trainingManifestsAreReadAsStrictlyAsEvaluationOnes() throws IOException {
        // the same JsonLines reader: a key given twice, a second value, bad bytes are named by file:line, not dropped
        Files.write(dir.resolve("ok.png"), new byte[] {1});
        String good = row("a", "image", "ok.png");
        Path manifest = dir.resolve("train.jsonl");
        for (String[] c : new String[][] {
                {good + "\n" + "{\"id\":\"b\",\"id\":\"c\"}\n", ":2: not valid JSON"},
                {good + " {}\n", ":1: not valid JSON: a second value follows the first"},
                {"[1]\n", ":1: expected a JSON object"}}) {
            Files.writeString(manifest, c[0]);
            IOException e = assertThrows(IOException.class, () -> ConversationSample.readManifest(manifest));
            assertTrue(e.getMessage().startsWith(manifest.toString()) && e.getMessage().contains(c[1]), e.getMessage());
        }
        Files.write(manifest, new byte[] {'{', '"', (byte) 0xff, '"', ':', '1', '}', '\n'});
        IOException e = assertThrows(IOException.class, () -> AsrSample.readManifest(manifest));
        assertEquals(manifest + ":1: not UTF-8 text", e.getMessage());
    }
}
