package xllm.server;

import org.junit.jupiter.api.Test;
import xllm.serve.TinyJointModel;

import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * The official {@code openai} npm client, unchanged, against the server on the tiny joint checkpoint: text, an
 * image, audio, image + spoken question and video, each streamed and not (tools/clients/openai-client.mjs checks
 * the answers, the usage and the client's own errors for a wrong model and bad base64).
 */
class OpenAiClientTest {

    @Test
    void theOfficialNpmClientGetsAnswersForEveryKindOfRequest() throws Exception {
        try (XllmServer server = XllmServer.start(TinyJointModel.checkpoint().toString(), ServerOptions.local())) {
            Path image = ChatCompletionsMedia.file("image-qa", "image"), wav = ChatCompletionsMedia.file("asr", "audio"),
                    video = ChatCompletionsMedia.file("video-qa", "video");
            NodeClients.Result result = NodeClients.run("openai-client.mjs", List.of("--base-url",
                    server.uri() + "/v1", "--image", image.toString(), "--wav", wav.toString(), "--video", video.toString()));
            assertEquals(0, result.exitCode(), result.output());
        }
    }
}
