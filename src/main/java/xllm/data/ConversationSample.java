package xllm.data;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.BufferedReader;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * One LLaVA-style single-turn sample of a JSONL manifest (DESIGN.md §4):
 * {@code {"id", "image"?, "video"?, "audio"?, "conversations": [{"from": "human", "value": "<image>\n..."},
 * {"from": "gpt", "value": "..."}]}}. Media paths are resolved against the manifest's directory.
 * Reading is strict: a malformed line, a missing field or an unexpected role is an error naming file and line.
 */
public record ConversationSample(String id, Path image, Path video, Path audio, String question, String answer) {

    private static final ObjectMapper JSON = new ObjectMapper();

    public static List<ConversationSample> readManifest(Path manifest) throws IOException {
        List<ConversationSample> samples = new ArrayList<>();
        Path base = manifest.toAbsolutePath().getParent();
        try (BufferedReader reader = Files.newBufferedReader(manifest, StandardCharsets.UTF_8)) {
            String line;
            int number = 0;
            while ((line = reader.readLine()) != null) {
                number++;
                if (line.isBlank()) continue;
                String where = manifest + ":" + number;
                JsonNode node;
                try {
                    node = JSON.readTree(line);
                } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
                    throw new IOException(where + ": malformed JSON: " + e.getOriginalMessage());
                }
                JsonNode conversations = node.path("conversations");
                if (!node.path("id").isTextual() || !conversations.isArray() || conversations.size() != 2) {
                    throw new IOException(where + ": expected {\"id\", \"conversations\": [human, gpt]}");
                }
                if (!conversations.get(0).path("from").asText().equals("human")
                        || !conversations.get(1).path("from").asText().equals("gpt")) {
                    throw new IOException(where + ": conversations must be one human turn then one gpt turn");
                }
                String question = questionText(conversations.get(0).path("value").asText());
                String answer = conversations.get(1).path("value").asText();
                if (answer.isEmpty()) throw new IOException(where + ": empty answer");
                samples.add(new ConversationSample(node.get("id").asText(), media(node, "image", base, where),
                        media(node, "video", base, where), media(node, "audio", base, where), question, answer));
            }
        }
        if (samples.isEmpty()) throw new IOException(manifest + ": no samples");
        return samples;
    }

    /** The human turn without its media placeholders ({@code <image>}, {@code <video>}, {@code <audio>}). */
    public static String questionText(String humanTurn) {
        return humanTurn.replace("<image>", "").replace("<video>", "").replace("<audio>", "").strip();
    }

    private static Path media(JsonNode node, String field, Path base, String where) throws IOException {
        if (!node.has(field)) return null;
        Path path = base.resolve(node.get(field).asText());
        if (!Files.isRegularFile(path)) throw new IOException(where + ": " + field + " file not found: " + path);
        return path;
    }
}
