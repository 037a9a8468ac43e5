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
              /image FILE    ask about this image from now on (needs a training checkpoint as --model)
              /video FILE    ask about this video from now on (needs a video-interface checkpoint)
              /audio FILE    talk about this WAV from now on (needs a speech-interface checkpoint)
              /ask           answer the current WAV's spoken question (the speech is the question)
              /system TEXT   set the system message (and start a new conversation)
              /reset         forget the conversation (keeps the system message)
              /help          this text
              /exit          quit (Ctrl-D too)
            A line ending in \\ continues on the next line; a line with only \"\"\" starts or ends a block.""";

    private final LanguageModel model;          // text chat, or null in image mode
    private final xllm.model.MediaChat imageChat; // media mode: a trained image, video or speech interface, or null
    private java.nio.file.Path image;             // the current image, video or WAV
    private final Generator.Options options;
    private final PrintStream out;
    private final List<ChatTemplate.Message> history = new ArrayList<>();
    private String system;

    ChatSession(LanguageModel model, Generator.Options options, PrintStream out, String system) {
        this(model, null, null, options, out, system);
    }

    /** Image mode: each turn asks {@code imageChat} about the current image (the paper's single-turn template). */
    ChatSession(LanguageModel model, xllm.model.MediaChat imageChat, java.nio.file.Path image, Generator.Options options,
                PrintStream out, String system) {
        this.model = model;
        this.imageChat = imageChat;
        this.image = image;
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
        if (imageChat != null) {
            if (image == null) {
                String kind = xllm.model.MediaChat.flag(imageChat.modality());
                out.println("(no " + kind + " yet: /" + kind + " FILE)");
                return true;
            }
            try {
                imageChat.answer(image, input, options, (row, delta) -> out.print(delta));
            } catch (java.io.IOException e) {
                out.print("error: " + e.getMessage());
            }
            out.println();
            out.flush();
            return true;
        }
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
            case "/ask" -> {
                if (imageChat == null || !imageChat.modality().equals("Speech") || image == null) {
                    out.println("(/ask needs a speech-interface checkpoint and a WAV: /audio FILE)");
                    return true;
                }
                try {
                    imageChat.answer(image, "", options, (row, delta) -> out.print(delta));
                } catch (java.io.IOException e) {
                    out.print("error: " + e.getMessage());
                }
                out.println();
                out.flush();
            }
            case "/image", "/video", "/audio" -> {
                String kind = parts[0].substring(1);
                if (imageChat == null) {
                    out.println("(this model has no " + kind + " interface: start chat with --model <training checkpoint>)");
                } else if (!xllm.model.MediaChat.flag(imageChat.modality()).equals(kind)) {
                    String have = xllm.model.MediaChat.flag(imageChat.modality());
                    out.println("(this checkpoint has a " + (have.equals("audio") ? "speech" : have) + " interface; use /"
                            + have + ")");
                } else if (parts.length < 2 || !java.nio.file.Files.isRegularFile(java.nio.file.Path.of(parts[1].strip()))) {
                    out.println("(no such " + kind + " file: " + (parts.length < 2 ? "" : parts[1]) + ")");
                } else {
                    image = java.nio.file.Path.of(parts[1].strip());
                    out.println("(" + kind + ": " + image + ")");
                }
            }
            default -> out.println("unknown command " + parts[0] + " — /help lists them");
        }
        return true;
    }
}
