package xllm.server;

import org.junit.jupiter.api.Test;
import xllm.serve.TinyJointModel;

import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * The official {@code openai} clients, npm and Python, unchanged, against the server on the tiny joint checkpoint:
 * text, an image, audio, image + spoken question and video, each streamed and not (tools/clients/openai-client.mjs
 * and openai_client.py check the answers, the usage and the client's own errors for a wrong model and bad base64).
 */
class OpenAiClientTest {

    @Test
    void theOfficialNpmClientGetsAnswersForEveryKindOfRequest() throws Exception {
        try (XllmServer server = XllmServer.start(TinyJointModel.checkpoint().toString(), ServerOptions.local())) {
            Path image = ChatCompletionsMedia.file("image-qa", "image"), wav = ChatCompletionsMedia.file("asr", "audio"),
                    video = ChatCompletionsMedia.file("video-qa", "video");
            ClientScripts.Result result = ClientScripts.node("openai-client.mjs", List.of("--base-url",
                    server.uri() + "/v1", "--image", image.toString(), "--wav", wav.toString(), "--video", video.toString()));
            assertEquals(0, result.exitCode(), result.output());
        }
    }

    @Test
    void theOfficialPythonClientGetsAnswersForEveryKindOfRequest() throws Exception {
        try (XllmServer server = XllmServer.start(TinyJointModel.checkpoint().toString(), ServerOptions.local())) {
            ClientScripts.Result result = ClientScripts.python("openai_client.py", List.of("--base-url",
                    server.uri() + "/v1", "--image", ChatCompletionsMedia.file("image-qa", "image").toString(),
                    "--wav", ChatCompletionsMedia.file("asr", "audio").toString(),
                    "--video", ChatCompletionsMedia.file("video-qa", "video").toString()));
            assertEquals(0, result.exitCode(), result.output());
        }
    }
}
