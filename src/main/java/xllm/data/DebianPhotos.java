package xllm.data;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import xllm.vision.ImageLoader;

import java.io.IOException;
import java.io.Writer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.List;

/**
 * A small image evaluation set of real photos (DESIGN.md §5: no caption set ships, so the questions and answers
 * here are written by us): the photographs that the Debian package python3-skimage installs under
 * {@value #DEFAULT_ROOT}. Each photo gets a caption sample and one or two questions, in the LLaVA-style JSONL of
 * the synthetic scenes, plus {@code "keywords"}: an answer counts as right when it contains one of them
 * (free-form answers about a photo cannot be scored by exact match; {@code eval image} reads the field). The
 * photos are copied under {@code OUT/images/} (never committed: they come from the package) and listed in
 * {@code OUT/eval.jsonl}. Evaluation only: nothing trains on them.
 */
public final class DebianPhotos {

    public static final String DEFAULT_ROOT = "/usr/lib/python3/dist-packages/skimage/data";

    /** One hand-written sample: {@code task} caption or question, the expected answer and accepted keywords. */
    record Item(String photo, String task, String question, String answer, List<String> keywords) {}

    /** What {@link #build} wrote. */
    public record Summary(Path manifest, int photos, int samples) {}

    private static final String CAPTION = "Write a short caption for the image.";

    static final List<Item> ITEMS = List.of(
            new Item("astronaut.png", "caption", CAPTION, "An astronaut in a white space suit in front of a flag.",
                    List.of("astronaut", "space suit", "spacesuit")),
            new Item("astronaut.png", "question", "What is the person wearing?", "A white space suit.",
                    List.of("space suit", "spacesuit", "suit")),
            new Item("chelsea.png", "caption", CAPTION, "A ginger tabby cat looking to the side.", List.of("cat", "kitten")),
            new Item("chelsea.png", "question", "What animal is this?", "A cat.", List.of("cat", "kitten")),
            new Item("coffee.png", "caption", CAPTION, "A cup of coffee on a saucer with a spoon.",
                    List.of("coffee", "cup", "mug")),
            new Item("coffee.png", "question", "What drink is in the cup?", "Coffee.", List.of("coffee", "espresso")),
            new Item("rocket.jpg", "caption", CAPTION, "A rocket standing on its launch pad.", List.of("rocket")),
            new Item("rocket.jpg", "question", "What is standing on the launch pad?", "A rocket.", List.of("rocket")),
            new Item("motorcycle_left.png", "caption", CAPTION, "A red motorcycle parked on the floor.",
                    List.of("motorcycle", "motorbike", "bike")),
            new Item("motorcycle_left.png", "question", "What colour is the motorcycle?", "Red.", List.of("red")),
            new Item("camera.png", "caption", CAPTION, "A black and white photo of a man with a camera on a tripod.",
                    List.of("camera", "photographer")),
            new Item("camera.png", "question", "What is the man standing behind?", "A camera on a tripod.",
                    List.of("camera", "tripod")),
            new Item("coins.png", "caption", CAPTION, "Old coins laid out in rows.", List.of("coin")),
            new Item("coins.png", "question", "What objects are shown?", "Coins.", List.of("coin")),
            new Item("moon.png", "caption", CAPTION, "The cratered surface of the moon.", List.of("moon", "crater")),
            new Item("horse.png", "question", "What animal is shown in silhouette?", "A horse.", List.of("horse")),
            new Item("hubble_deep_field.jpg", "caption", CAPTION, "Galaxies in the Hubble deep field.",
                    List.of("galax", "space", "stars")),
            new Item("chelsea.png", "question", "这是什么动物？", "猫。", List.of("猫")));

    private static final ObjectMapper JSON = new ObjectMapper();

    private DebianPhotos() {}

    /**
     * Copies the photos from {@code root} to {@code outDir/images} (each decoded once, so a damaged file fails here,
     * named) and writes {@code outDir/eval.jsonl} atomically.
     */
    public static Summary build(Path root, Path outDir) throws IOException {
        if (!Files.isDirectory(root)) {
            throw new IOException("python3-skimage's photos not found at " + root
                    + "; install them: apt-get install python3-skimage (or pass --data DIR)");
        }
        Path images = outDir.resolve("images");
        Files.createDirectories(images);
        java.util.Set<String> copied = new java.util.LinkedHashSet<>();
        for (Item item : ITEMS) {
            if (!copied.add(item.photo())) continue;
            Path source = root.resolve(item.photo());
            if (!Files.isRegularFile(source)) throw new IOException(source + ": missing from python3-skimage's data");
            ImageLoader.load(source); // a clear error naming the file if it is not a readable image
            Files.copy(source, images.resolve(item.photo()), StandardCopyOption.REPLACE_EXISTING);
        }
        Path manifest = outDir.resolve("eval.jsonl");
        Path temp = outDir.resolve("eval.jsonl.tmp");
        int n = 0;
        try (Writer writer = Files.newBufferedWriter(temp, StandardCharsets.UTF_8)) {
            for (Item item : ITEMS) {
                String stem = item.photo().substring(0, item.photo().lastIndexOf('.'));
                ObjectNode line = JSON.createObjectNode();
                line.put("id", "photo-" + stem + "-q" + n);
                line.put("image", "images/" + item.photo());
                ArrayNode conversations = line.putArray("conversations");
                conversations.addObject().put("from", "human").put("value", "<image>\n" + item.question());
                conversations.addObject().put("from", "gpt").put("value", item.answer());
                line.put("task", item.task());
                line.put("language", item.question().codePoints().anyMatch(c -> Character.UnicodeScript.of(c) == Character.UnicodeScript.HAN) ? "zh" : "en");
                ArrayNode keywords = line.putArray("keywords");
                item.keywords().forEach(keywords::add);
                line.put("source", "python3-skimage:" + item.photo());
                writer.write(JSON.writeValueAsString(line));
                writer.write('\n');
                n++;
            }
        }
        Files.move(temp, manifest, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        return new Summary(manifest, copied.size(), n);
    }
}
