package xllm.server;

import com.fasterxml.jackson.databind.JsonNode;
import xllm.serve.TinyJointModel;

import java.nio.file.Files;
import java.nio.file.Path;

/** Media files of the tiny joint instruction set's held-out samples, for the server tests. */
final class ChatCompletionsMedia {

    private ChatCompletionsMedia() {
    }

    /** The {@code field} file (image, video, audio) of the first eval sample of {@code task}. */
    static Path file(String task, String field) throws Exception {
        Path data = TinyJointModel.data();
        for (String line : Files.readAllLines(data.resolve("eval.jsonl"))) {
            JsonNode node = Http.JSON.readTree(line);
            if (node.path("task").asText().equals(task)) return data.resolve(node.get(field).asText());
        }
        throw new AssertionError("no " + task + " sample in " + data);
    }
}
