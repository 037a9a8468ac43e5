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
 * terminal code so tests drive it directly. A turn that fails (a prompt over the context, an unreadable or too
 * long media file) prints one {@code error:} line and leaves the history as it was; the conversation goes on.
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
    private boolean streamed;                     // whether the current reply has printed any text yet

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
        if (text.startsWith("/")) {
            try {
                return command(text);
            } catch (RuntimeException e) { // e.g. a file name the file system cannot take
                out.println("error: " + Main.describe(e));
                return true;
            }
        }
        if (imageChat != null) {
            if (image == null) {
                String kind = xllm.model.MediaChat.flag(imageChat.modality());
                out.println("(no " + kind + " yet: /" + kind + " FILE)");
                return true;
            }
            turn(() -> imageChat.answer(image, input, options, this::stream));
            return true;
        }
        ChatTemplate.Message user = new ChatTemplate.Message("user", input);
        List<ChatTemplate.Message> messages = new ArrayList<>();
        if (system != null) messages.add(new ChatTemplate.Message("system", system));
        messages.addAll(history);
        messages.add(user);
        Generator.Completion reply = turn(() -> model.generator()
                .generate(List.of(model.chatPrompt(messages)), options, this::stream).get(0));
        if (reply != null) { // a failed turn leaves the history as it was, so the next turn starts from there
            history.add(user);
            history.add(new ChatTemplate.Message("assistant", reply.text().strip()));
        }
        return true;
    }

    /** The reply's listener: prints its text as it is generated. */
    private void stream(int row, String delta) {
        streamed = true;
        out.print(delta);
    }

    /** One model reply; its text streams to {@code out} as it is generated. */
    private interface Reply {
        Generator.Completion generate() throws java.io.IOException;
    }

    /**
     * Runs one reply and ends its line. Any failure of the turn (a prompt over the context, an unreadable or
     * too-long media file, an engine error, the heap running out on a huge prompt) is printed as one
     * {@code error:} line and returns null; the session goes on. Out-of-memory is caught too: it is thrown by the
     * turn's own allocations, which are garbage once it unwinds. Other {@link Error}s mean the JVM itself is broken
     * and end the session.
     */
    private Generator.Completion turn(Reply reply) {
        Generator.Completion completion = null;
        streamed = false;
        try {
            completion = reply.generate();
        } catch (java.io.IOException | RuntimeException e) {
            out.print((streamed ? "\n" : "") + "error: " + Main.describe(e));
        } catch (OutOfMemoryError e) {
            out.print((streamed ? "\n" : "") + "error: out of memory in this turn (" + e.getMessage()
                    + "); try a shorter input, or a larger heap: XLLM_JAVA_OPTS=-Xmx<size>");
        }
        out.println();
        out.flush();
        return completion;
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
                turn(() -> imageChat.answer(image, "", options, this::stream));
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
