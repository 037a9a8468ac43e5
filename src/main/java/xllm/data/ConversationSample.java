package xllm.data;

import com.fasterxml.jackson.databind.JsonNode;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * One LLaVA-style single-turn sample of a JSONL manifest (DESIGN.md §4):
 * {@code {"id", "image"?, "video"?, "audio"?, "conversations": [{"from": "human", "value": "<image>\n..."},
 * {"from": "gpt", "value": "..."}]}}. Media paths are resolved against the manifest's directory and must stay
 * inside its tree ({@link MediaPaths}). Reading is strict: a malformed line, a missing field, an unexpected role or
 * turn order, or a media path that is missing, a directory or outside the tree is an error naming file and line.
 */
public record ConversationSample(String id, Path image, Path video, Path audio, String question, String answer) {

    public static List<ConversationSample> readManifest(Path manifest) throws IOException {
        List<ConversationSample> samples = new ArrayList<>();
        JsonLines.read(manifest, line -> samples.add(fromJson(line.object(), manifest, line.where())));
        if (samples.isEmpty()) throw new IOException(manifest + ": no samples");
        return samples;
    }

    /** The human turn without its media placeholders ({@code <image>}, {@code <video>}, {@code <audio>}). */
    public static String questionText(String humanTurn) {
        return humanTurn.replace("<image>", "").replace("<video>", "").replace("<audio>", "").strip();
    }

    /**
     * One manifest row, checked as {@link #readManifest} checks each line: an {@code id}, a human turn then a gpt
     * turn, a non-empty answer, and media that exist inside the manifest's directory tree ({@link MediaPaths}).
     * For readers that keep the row's other fields (task, language, keywords); {@code where} is "file:line".
     */
    public static ConversationSample fromJson(JsonNode node, Path manifest, String where) throws IOException {
        JsonNode conversations = node.path("conversations");
        if (!node.path("id").isTextual() || !conversations.isArray()) {
            throw new IOException(where + ": expected {\"id\", \"conversations\": [human, gpt]}");
        }
        requireHumanThenGpt(conversations, where);
        String question = questionText(conversations.get(0).path("value").asText());
        String answer = conversations.get(1).path("value").asText();
        if (answer.isEmpty()) throw new IOException(where + ": empty answer");
        return new ConversationSample(node.get("id").asText(), media(node, "image", manifest, where),
                media(node, "video", manifest, where), media(node, "audio", manifest, where), question, answer);
    }

    /** Refuses anything but exactly two turns, human then gpt (the order the prompt and the loss assume). */
    public static void requireHumanThenGpt(JsonNode conversations, String where) throws IOException {
        if (!conversations.isArray() || conversations.size() != 2
                || !conversations.get(0).path("from").asText().equals("human")
                || !conversations.get(1).path("from").asText().equals("gpt")) {
            throw new IOException(where + ": conversations must be one human turn then one gpt turn, got "
                    + roles(conversations));
        }
    }

    private static String roles(JsonNode conversations) {
        if (!conversations.isArray()) return conversations.isMissingNode() ? "none" : conversations.getNodeType().toString();
        java.util.List<String> roles = new java.util.ArrayList<>();
        for (JsonNode turn : conversations) roles.add(turn.path("from").asText("?"));
        return roles.toString();
    }

    private static Path media(JsonNode node, String field, Path manifest, String where) throws IOException {
        if (!node.has(field)) return null;
        if (!node.get(field).isTextual()) throw new IOException(where + ": \"" + field + "\" must be a path string");
        return MediaPaths.resolve(manifest, node.get(field).asText(), field, where);
    }
}
