package xllm.llm;

import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

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

    /**
     * Hostile templates in model metadata: endless-looking loops, exponential string and list growth, recursion and
     * filters asked for gigabytes. Each must fail within seconds (2 s time limit) with an error that says the chat template
     * exceeded a limit, instead of running for minutes into an out-of-memory error.
     */
    @Test
    void hostileTemplatesFailFastNamingTheLimit() {
        Map<String, String> hostile = new LinkedHashMap<>(); // template -> what the error must say
        hostile.put("{% for a in range(1000) %}{% for b in range(1000) %}{% for c in range(1000) %}x{% endfor %}"
                + "{% endfor %}{% endfor %}", "limit");
        hostile.put("{% for a in range(1000) %}{% for b in range(1000) %}{% for c in range(1000) %}{% set q = 1 %}"
                + "{% endfor %}{% endfor %}{% endfor %}", "limit");
        hostile.put("{% for a in range(1000) %}{% for b in range(1000) %}{% for c in range(1000) %}{% endfor %}"
                + "{% endfor %}{% endfor %}", "time limit");
        hostile.put("{% set s = 'ab' %}{% for i in range(64) %}{% set s = s ~ s %}{% endfor %}{{ s|length }}",
                "limit of " + ChatTemplate.MAX_OUTPUT_CHARACTERS + " characters");
        hostile.put("{% set l = [1] %}{% for i in range(64) %}{% set l = l + l %}{% endfor %}{{ l|length }}",
                "limit of " + ChatTemplate.MAX_COLLECTION_ITEMS + " list or dict items");
        hostile.put("{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}", "recursi");
        hostile.put("{{ 'a'|center(2000000000) }}", "'center' is disabled");
        hostile.put("{{ '%2000000000s'|format('a') }}", "'format' is disabled");
        hostile.put("{{ 'a'.repeat(2000000000) }}", "repeat");
        List<ChatTemplate.Message> chat = List.of(new ChatTemplate.Message("user", "hi"));
        for (var entry : hostile.entrySet()) {
            ChatTemplate template = new ChatTemplate(entry.getKey(), null, null);
            long start = System.nanoTime();
            IllegalArgumentException e = assertTimeoutPreemptively(Duration.ofSeconds(20),
                    () -> assertThrows(IllegalArgumentException.class, () -> template.render(chat, true)), entry.getKey());
            double seconds = (System.nanoTime() - start) / 1e9;
            assertTrue(seconds < 5, entry.getKey() + " took " + seconds + " s");
            assertTrue(e.getMessage().startsWith("chat template") && e.getMessage().contains(entry.getValue()),
                    entry.getKey() + ": " + e.getMessage());
        }
    }

    @Test
    void aLongConversationStaysWithinTheLimits() {
        ChatTemplate template = new ChatTemplate(ChatTemplate.CHATML, null, null);
        List<ChatTemplate.Message> chat = new ArrayList<>();
        StringBuilder expected = new StringBuilder();
        for (int turn = 0; turn < 2000; turn++) {
            String role = turn % 2 == 0 ? "user" : "assistant";
            String content = "turn " + turn + " " + "x".repeat(200);
            chat.add(new ChatTemplate.Message(role, content));
            expected.append("<|im_start|>").append(role).append('\n').append(content).append("<|im_end|>\n");
        }
        assertEquals(expected + "<|im_start|>assistant\n", template.render(chat, true));
    }
}
