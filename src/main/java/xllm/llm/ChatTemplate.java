package xllm.llm;

import com.hubspot.jinjava.Jinjava;
import com.hubspot.jinjava.JinjavaConfig;
import com.hubspot.jinjava.el.JinjavaProcessors;
import com.hubspot.jinjava.interpret.CollectionTooBigException;
import com.hubspot.jinjava.interpret.Context;
import com.hubspot.jinjava.interpret.MacroTagCycleException;
import com.hubspot.jinjava.interpret.OutputTooBigException;
import com.hubspot.jinjava.interpret.RenderResult;
import com.hubspot.jinjava.interpret.TemplateError;
import com.hubspot.jinjava.lib.fn.ELFunctionDefinition;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Renders a conversation with the checkpoint's own Jinja chat template (tokenizer_config.json or GGUF
 * {@code tokenizer.chat_template}), in the environment transformers uses: {@code trim_blocks}, {@code lstrip_blocks},
 * {@code bos_token}/{@code eos_token} variables and {@code raise_exception}. Without a template, ChatML.
 * Tested against transformers' {@code apply_chat_template} output in {@code ChatTemplateTest}.
 *
 * <p>The template comes with the model file, so it is treated as hostile: rendering is bounded in output and string
 * size, list and dict size, range length, macro recursion, template steps and wall-clock time, and the filters and
 * methods that allocate whatever size their argument asks for are switched off. A template past any bound fails in
 * about a second with "chat template exceeded ... limit" ({@code ChatTemplateTest.hostileTemplatesFailFastNamingTheLimit}).
 */
public final class ChatTemplate {

    public record Message(String role, String content) {}

    /** ChatML, the template of SmolLM2 and Qwen2 chat models. */
    public static final String CHATML = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + "
            + "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}"
            + "{{ '<|im_start|>assistant\\n' }}{% endif %}";

    /** Characters a rendered prompt, or any string built on the way, may have: far beyond any model's context. */
    static final long MAX_OUTPUT_CHARACTERS = 4L << 20;
    /** Items a list or dict built by the template may have. */
    static final int MAX_COLLECTION_ITEMS = 100_000;
    /** Longest range(); each loop then costs little between two checks of the step and time limits. */
    static final int MAX_RANGE = 10_000;
    /** Template nodes (text, expressions, tags) one render may evaluate; a 2,000-turn chat in ChatML needs ~6,000. */
    static final long MAX_STEPS = 200_000;
    /** Wall-clock bound of one render; real templates take milliseconds. */
    static final long MAX_RENDER_NANOS = 2_000_000_000L;
    /** Steps a render takes before the wall clock is consulted. */
    private static final long MIN_STEPS_BEFORE_CLOCK = 1_000;
    /** Filters that allocate the width their argument names ({{ 'a'|center(2000000000) }}). */
    private static final Set<String> DISABLED_FILTERS = Set.of("center", "format");
    /** Java String methods reachable from a template that allocate on request and have no Jinja meaning. */
    private static final Set<String> RESTRICTED_METHODS = Set.of("repeat", "indent");

    /** Steps and start time of the render running on this thread (Jinjava renders on the caller's thread). */
    private static final ThreadLocal<long[]> BUDGET = new ThreadLocal<>();

    /** Thrown from Jinjava's node hook when a render runs past {@link #MAX_STEPS} or {@link #MAX_RENDER_NANOS}. */
    private static final class LimitExceeded extends RuntimeException {
        LimitExceeded(String message) {
            super(message);
        }
    }

    private final String source;
    private final String bosToken;
    private final String eosToken;
    private final Jinjava jinja;

    public ChatTemplate(String source, String bosToken, String eosToken) {
        this.source = source;
        this.bosToken = bosToken;
        this.eosToken = eosToken;
        JinjavaConfig config = JinjavaConfig.newBuilder().withTrimBlocks(true).withLstripBlocks(true)
                .withMaxOutputSize(MAX_OUTPUT_CHARACTERS).withMaxStringLength(MAX_OUTPUT_CHARACTERS)
                .withMaxListSize(MAX_COLLECTION_ITEMS).withMaxMapSize(MAX_COLLECTION_ITEMS).withRangeLimit(MAX_RANGE)
                .withEnableRecursiveMacroCalls(false)
                .withDisabled(Map.of(Context.Library.FILTER, DISABLED_FILTERS))
                .withRestrictedMethods(RESTRICTED_METHODS)
                .withProcessors(JinjavaProcessors.newBuilder().withNodePreProcessor((node, interpreter) -> countStep()).build())
                .build();
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
        RenderResult result;
        long[] outer = BUDGET.get();
        BUDGET.set(new long[] {0, System.nanoTime()});
        try {
            result = jinja.renderForResult(source, context);
        } finally {
            if (outer == null) BUDGET.remove(); else BUDGET.set(outer);
        }
        if (!result.getErrors().isEmpty()) throw new IllegalArgumentException(describe(result.getErrors().get(0)));
        return result.getOutput();
    }

    private static void countStep() {
        long[] budget = BUDGET.get();
        if (budget == null) return;
        if (++budget[0] > MAX_STEPS) {
            throw new LimitExceeded("chat template exceeded the limit of " + MAX_STEPS + " steps (a runaway loop?)");
        }
        // The clock is read only past the steps any ordinary chat needs, so a cold first render (class loading)
        // never trips it; a loop with empty bodies still passes a step per for tag, i.e. every MAX_RANGE iterations.
        if (budget[0] >= MIN_STEPS_BEFORE_CLOCK && (budget[0] & 63) == 0
                && System.nanoTime() - budget[1] > MAX_RENDER_NANOS) {
            throw new LimitExceeded("chat template exceeded the time limit of " + MAX_RENDER_NANOS / 1_000_000 + " ms");
        }
    }

    /** One line for a failed render: raise_exception's text, or which limit the template ran into. */
    private static String describe(TemplateError error) {
        String message = error.getMessage();
        for (Throwable t = error.getException(); t != null; t = t.getCause()) {
            if (t instanceof LimitExceeded) return t.getMessage();
            if (t instanceof OutputTooBigException) {
                return "chat template exceeded the limit of " + MAX_OUTPUT_CHARACTERS + " characters of output or string";
            }
            if (t instanceof CollectionTooBigException) {
                return "chat template exceeded the limit of " + MAX_COLLECTION_ITEMS + " list or dict items";
            }
            if (t instanceof MacroTagCycleException) {
                return "chat template calls a macro recursively, beyond the limit of no macro recursion: " + message;
            }
            if (t instanceof OutOfMemoryError) {
                return "chat template exceeded the memory limit: " + t.getMessage();
            }
            if (t.getMessage() != null && t.getMessage().startsWith("chat template: ")) return t.getMessage();
        }
        if (message != null && message.endsWith("is disabled in this context")) {
            return "chat template failed: " + message.replace(" in this context", "")
                    + " (it allocates whatever size it is asked for)";
        }
        return "chat template failed: " + message;
    }
}
