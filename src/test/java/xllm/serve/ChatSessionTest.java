package xllm.serve;

import ai.djl.ndarray.NDManager;
import org.junit.jupiter.api.Test;
import xllm.llm.Generator;
import xllm.llm.LanguageModel;
import xllm.llm.Sampler;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/** The chat REPL's state on the tiny random Llama (256 positions): a failed turn leaves the history as it was. */
class ChatSessionTest {

    @Test
    void aTurnOverTheContextFailsAloneAndIsNotAddedToTheHistory() throws Exception {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        PrintStream out = new PrintStream(bytes, true, StandardCharsets.UTF_8);
        Generator.Options options = new Generator.Options(4, Sampler.Options.greedy(), List.of());
        try (NDManager manager = NDManager.newBaseManager();
             LanguageModel model = LanguageModel.open(Path.of(ChatAndGenerateTest.TINY_LLAMA), manager)) {
            ChatSession session = new ChatSession(model, options, out, null);
            assertTrue(session.handle("hello"));
            assertEquals(2, session.history().size());
            var before = List.copyOf(session.history());

            assertTrue(session.handle("word ".repeat(400)), "the session goes on");

            assertEquals(before, session.history(), "the failed turn left no trace in the history");
            String printed = bytes.toString(StandardCharsets.UTF_8);
            String last = printed.lines().reduce((a, b) -> b).orElseThrow();
            assertTrue(last.startsWith("error: prompt of ") && last.contains("exceeds the model's context of 256"), printed);
            assertTrue(session.handle("hello again"));
            assertEquals(4, session.history().size(), "the next good turn is answered and kept");
        }
    }
}
