package xllm.llm;

import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/** The checkpoint's Jinja chat template renders exactly what transformers' apply_chat_template renders. */
class ChatTemplateTest {

    static List<ChatTemplate.Message> messages(JsonNode array) {
        List<ChatTemplate.Message> out = new ArrayList<>();
        for (JsonNode m : array) out.add(new ChatTemplate.Message(m.get("role").asText(), m.get("content").asText()));
        return out;
    }

    @Test
    void smolLm2TemplateMatchesTransformers() throws IOException {
        JsonNode chat = new ReferenceFixture("smollm2-135m-instruct").json.get("chat");
        ChatTemplate template = new ChatTemplate(chat.get("template").asText(), "<|im_start|>", "<|im_end|>");
        for (String caseName : List.of("one_turn", "three_turns")) {
            JsonNode c = chat.get(caseName);
            assertEquals(c.get("text").asText(),
                    template.render(messages(c.get("messages")), c.get("add_generation_prompt").asBoolean()), caseName);
        }
    }

    @Test
    void tinyLlamaTemplateFromTokenizerConfig() throws IOException {
        try (Tokenizer tokenizer = Tokenizer.load(ReferenceFixture.ROOT.resolve("tiny-llama"))) {
            String rendered = ChatTemplate.of(tokenizer).render(List.of(new ChatTemplate.Message("user", "hi")), true);
            assertTrue(rendered.contains("<|im_start|>user\nhi<|im_end|>\n"), rendered);
            assertTrue(rendered.endsWith("<|im_start|>assistant\n"), rendered);
        }
    }

    @Test
    void raiseExceptionInATemplateBecomesAnError() {
        ChatTemplate strict = new ChatTemplate("{% if messages[0]['role'] != 'user' %}{{ raise_exception('first must be user') }}{% endif %}ok",
                null, null);
        assertEquals("ok", strict.render(List.of(new ChatTemplate.Message("user", "x")), false));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> strict.render(List.of(new ChatTemplate.Message("system", "x")), false));
        assertTrue(e.getMessage().contains("first must be user"), e.getMessage());
    }
}
