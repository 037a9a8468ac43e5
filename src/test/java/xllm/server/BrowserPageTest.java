package xllm.server;

import org.junit.jupiter.api.Test;
import xllm.serve.TinyJointModel;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The web page in headless Chromium (Playwright with Debian's chromium; tools/clients/browser-test.mjs): on an X-LLM
 * it uploads an image and asks, records speech through the fake microphone and sends it, uploads a WAV, and sees each
 * answer stream in (screenshot kept at target/browser-test/chat.png); on the real SmolLM2 behind a key it asks for
 * the key, takes it from Settings, keeps the media buttons disabled and streams a Markdown conversation.
 */
class BrowserPageTest {

    @Test
    void thePageUploadsRecordsAndStreamsAnswers() throws Exception {
        try (XllmServer server = XllmServer.start(TinyJointModel.checkpoint().toString(), ServerOptions.local())) {
            Path shot = Path.of("target", "browser-test", "chat.png").toAbsolutePath();
            Files.createDirectories(shot.getParent());
            Files.deleteIfExists(shot);
            ClientScripts.Result result = ClientScripts.node("browser-test.mjs", List.of("--base-url", server.uri().toString(),
                    "--image", ChatCompletionsMedia.file("image-qa", "image").toString(),
                    "--wav", ChatCompletionsMedia.file("asr", "audio").toString(), "--screenshot", shot.toString()));
            assertEquals(0, result.exitCode(), result.output());
            assertTrue(Files.size(shot) > 10_000, "screenshot written: " + shot);
        }
    }

    @Test
    void onATextModelBehindAKeyThePageAsksForTheKeyAndAnswers() throws Exception {
        try (XllmServer server = XllmServer.start("smollm2-135m-instruct", ServerOptions.local().withApiKey("secret"))) {
            Path shot = Path.of("target", "browser-test", "text.png").toAbsolutePath();
            Files.createDirectories(shot.getParent());
            Files.deleteIfExists(shot);
            ClientScripts.Result result = ClientScripts.node("browser-test.mjs", List.of("--base-url",
                    server.uri().toString(), "--text-only", "--api-key", "secret", "--screenshot", shot.toString()));
            assertEquals(0, result.exitCode(), result.output());
            assertTrue(Files.size(shot) > 10_000, "screenshot written: " + shot);
        }
    }
}
