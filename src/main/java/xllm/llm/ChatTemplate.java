package xllm.llm;

import com.hubspot.jinjava.Jinjava;
import com.hubspot.jinjava.JinjavaConfig;
import com.hubspot.jinjava.interpret.RenderResult;
import com.hubspot.jinjava.lib.fn.ELFunctionDefinition;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Renders a conversation with the checkpoint's own Jinja chat template (tokenizer_config.json or GGUF
 * {@code tokenizer.chat_template}), in the environment transformers uses: {@code trim_blocks}, {@code lstrip_blocks},
 * {@code bos_token}/{@code eos_token} variables and {@code raise_exception}. Without a template, ChatML.
 * Tested against transformers' {@code apply_chat_template} output in {@code ChatTemplateTest}.
 */
public final class ChatTemplate {

    public record Message(String role, String content) {}

    /** ChatML, the template of SmolLM2 and Qwen2 chat models. */
    public static final String CHATML = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + "
            + "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}"
            + "{{ '<|im_start|>assistant\\n' }}{% endif %}";

    private final String source;
    private final String bosToken;
    private final String eosToken;
    private final Jinjava jinja;

    public ChatTemplate(String source, String bosToken, String eosToken) {
        this.source = source;
        this.bosToken = bosToken;
        this.eosToken = eosToken;
        JinjavaConfig config = JinjavaConfig.newBuilder().withTrimBlocks(true).withLstripBlocks(true).build();
        this.jinja = new Jinjava(config);
        jinja.getGlobalContext().registerFunction(new ELFunctionDefinition("", "raise_exception",
                ChatTemplate.class, "raiseException", String.class));
    }

    public static ChatTemplate of(Tokenizer tokenizer) {
        return new ChatTemplate(tokenizer.chatTemplate().orElse(CHATML), tokenizer.bosToken(), tokenizer.eosToken());
    }

    public static String raiseException(String message) {
        throw new IllegalArgumentException("chat template: " + message);
    }

    public String render(List<Message> messages, boolean addGenerationPrompt) {
        List<Map<String, Object>> list = new ArrayList<>();
        for (Message m : messages) list.add(Map.of("role", m.role(), "content", m.content()));
        Map<String, Object> context = new HashMap<>();
        context.put("messages", list);
        context.put("add_generation_prompt", addGenerationPrompt);
        context.put("bos_token", bosToken == null ? "" : bosToken);
        context.put("eos_token", eosToken == null ? "" : eosToken);
        RenderResult result = jinja.renderForResult(source, context);
        if (!result.getErrors().isEmpty()) {
            var error = result.getErrors().get(0);
            String message = error.getMessage();
            for (Throwable t = error.getException(); t != null; t = t.getCause()) {
                if (t.getMessage() != null && t.getMessage().startsWith("chat template: ")) message = t.getMessage();
            }
            throw new IllegalArgumentException(message.startsWith("chat template: ") ? message
                    : "chat template failed: " + message);
        }
        return result.getOutput();
    }
}
