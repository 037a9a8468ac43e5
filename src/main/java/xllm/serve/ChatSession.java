package xllm.serve;

import xllm.llm.ChatTemplate;
import xllm.llm.Generator;
import xllm.llm.LanguageModel;

import java.io.PrintStream;
import java.util.ArrayList;
import java.util.List;

/**
 * The conversation state of {@code ./xllm chat}: the message history, the slash commands ({@code /reset},
 * {@code /system TEXT}, {@code /help}, {@code /exit}) and one streamed model reply per user turn. Free of any
 * terminal code so tests drive it directly.
 */
final class ChatSession {

    static final String HELP = """
            Commands:
              /system TEXT   set the system message (and start a new conversation)
              /reset         forget the conversation (keeps the system message)
              /help          this text
              /exit          quit (Ctrl-D too)
            A line ending in \\ continues on the next line; a line with only \"\"\" starts or ends a block.""";

    private final LanguageModel model;
    private final Generator.Options options;
    private final PrintStream out;
    private final List<ChatTemplate.Message> history = new ArrayList<>();
    private String system;

    ChatSession(LanguageModel model, Generator.Options options, PrintStream out, String system) {
        this.model = model;
        this.options = options;
        this.out = out;
        this.system = system;
    }

    List<ChatTemplate.Message> history() {
        return history;
    }

    /** Handles one complete user input; returns false when the session should end. */
    boolean handle(String input) {
        String text = input.strip();
        if (text.isEmpty()) return true;
        if (text.startsWith("/")) return command(text);
        history.add(new ChatTemplate.Message("user", input));
        List<ChatTemplate.Message> messages = new ArrayList<>();
        if (system != null) messages.add(new ChatTemplate.Message("system", system));
        messages.addAll(history);
        long[] prompt = model.chatPrompt(messages);
        Generator.Completion reply = model.generator()
                .generate(List.of(prompt), options, (row, delta) -> out.print(delta)).get(0);
        out.println();
        out.flush();
        history.add(new ChatTemplate.Message("assistant", reply.text().strip()));
        return true;
    }

    private boolean command(String text) {
        String[] parts = text.split("\\s+", 2);
        switch (parts[0]) {
            case "/exit", "/quit" -> {
                return false;
            }
            case "/reset" -> {
                history.clear();
                out.println("(conversation cleared)");
            }
            case "/system" -> {
                system = parts.length > 1 ? parts[1] : null;
                history.clear();
                out.println(system == null ? "(system message removed)" : "(system message set; conversation cleared)");
            }
            case "/help" -> out.println(HELP);
            default -> out.println("unknown command " + parts[0] + " — /help lists them");
        }
        return true;
    }
}
