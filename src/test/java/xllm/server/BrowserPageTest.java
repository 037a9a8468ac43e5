package xllm.server;

import org.junit.jupiter.api.Test;
import xllm.serve.TinyJointModel;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The web page in headless Chromium (Playwright with Debian's chromium; tools/clients/browser-test.mjs): it uploads an
 * image and asks, records speech through the fake microphone and sends it, uploads a WAV, and sees each answer
 * stream in. The screenshot is kept at target/browser-test/chat.png.
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
}
