package xllm.data;

import xllm.speech.CharVocabulary;

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
 * One line of an ASR manifest (DESIGN.md §4): {@code {"id", "audio", "text"}} with the audio path relative to the
 * manifest's directory, inside its tree unless the opt-out of {@link MediaPaths} is set (extra keys such as
 * {@code image} or {@code context} are allowed and ignored here).
 */
public record AsrSample(String id, Path audio, String text) {

    private static final ObjectMapper JSON = new ObjectMapper();

    public static List<AsrSample> readManifest(Path manifest) throws IOException {
        List<AsrSample> samples = new ArrayList<>();
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
                if (!node.path("id").isTextual() || !node.path("audio").isTextual() || !node.path("text").isTextual()) {
                    throw new IOException(where + ": expected {\"id\", \"audio\", \"text\"} strings");
                }
                if (CharVocabulary.normalise(node.get("text").asText()).isEmpty()) {
                    throw new IOException(where + ": transcript '" + node.get("text").asText() + "' is empty after normalisation");
                }
                Path audio = MediaPaths.resolve(manifest, node.get("audio").asText(), "audio", where);
                samples.add(new AsrSample(node.get("id").asText(), audio, node.get("text").asText()));
            }
        }
        if (samples.isEmpty()) throw new IOException(manifest + ": no samples");
        return samples;
    }
}
