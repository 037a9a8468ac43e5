package xllm.data;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The real-photo evaluation set, built from a stand-in of python3-skimage's data directory (the test fixtures' photos
 * under the package's file names): manifest shape, copied images, and errors that name what is missing or broken.
 */
class DebianPhotosTest {

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final Path FIXTURES = Path.of("src/test/resources/fixtures/vision");

    @TempDir
    Path dir;

    private Path standIn() throws IOException {
        Path root = Files.createDirectories(dir.resolve("skimage-data"));
        for (DebianPhotos.Item item : DebianPhotos.ITEMS) {
            Path source = FIXTURES.resolve(item.photo().endsWith(".jpg") ? "espresso.jpg" : "cat.png");
            Files.copy(source, root.resolve(item.photo()), java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        }
        return root;
    }

    @Test
    void writesOneSamplePerItemWithKeywordsAndCopiesEachPhotoOnce() throws Exception {
        DebianPhotos.Summary summary = DebianPhotos.build(standIn(), dir.resolve("out"));
        List<String> rows = Files.readAllLines(summary.manifest(), StandardCharsets.UTF_8);
        assertEquals(DebianPhotos.ITEMS.size(), rows.size());
        assertEquals(summary.samples(), rows.size());
        assertEquals(10, summary.photos());
        java.util.Set<String> ids = new java.util.HashSet<>();
        for (String row : rows) {
            JsonNode node = JSON.readTree(row);
            assertTrue(ids.add(node.get("id").asText()), "duplicate id " + node.get("id"));
            assertTrue(Files.isRegularFile(dir.resolve("out").resolve(node.get("image").asText())), row);
            assertTrue(node.get("conversations").get(0).get("value").asText().startsWith("<image>\n"), row);
            assertFalse(node.get("keywords").isEmpty(), row);
            // the reference answer itself always scores as right
            String answer = node.get("conversations").get(1).get("value").asText().toLowerCase(java.util.Locale.ROOT);
            boolean hit = false;
            for (JsonNode k : node.get("keywords")) hit |= answer.contains(k.asText());
            assertTrue(hit, "reference answer misses its own keywords: " + row);
        }
        assertEquals(List.of(), Files.list(dir.resolve("out")).filter(p -> p.toString().endsWith(".tmp")).toList());
    }

    @Test
    void errorsNameTheMissingPackageTheMissingPhotoAndTheBrokenOne() throws Exception {
        IOException noPackage = assertThrows(IOException.class, () -> DebianPhotos.build(dir.resolve("absent"), dir.resolve("o1")));
        assertTrue(noPackage.getMessage().contains("apt-get install python3-skimage"), noPackage.getMessage());

        Path root = standIn();
        Files.delete(root.resolve("rocket.jpg"));
        IOException missing = assertThrows(IOException.class, () -> DebianPhotos.build(root, dir.resolve("o2")));
        assertTrue(missing.getMessage().contains("rocket.jpg"), missing.getMessage());

        Files.copy(FIXTURES.resolve("espresso.jpg"), root.resolve("rocket.jpg"));
        Files.write(root.resolve("coins.png"), new byte[0]);
        IOException broken = assertThrows(IOException.class, () -> DebianPhotos.build(root, dir.resolve("o3")));
        assertTrue(broken.getMessage().contains("coins.png"), broken.getMessage());
        assertFalse(Files.exists(dir.resolve("o3/eval.jsonl")), "no manifest after a failed build");
    }
}
