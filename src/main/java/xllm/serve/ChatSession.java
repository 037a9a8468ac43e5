package xllm.serve;

import xllm.model.Modality;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.EnumMap;
import java.util.Map;

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
              /image FILE    attach an image to your next message (needs an X-LLM checkpoint as --model)
              /video FILE    attach a video to your next message
              /audio FILE    attach a WAV to your next message
              /ask           send the attached WAV as the question itself (the speech is the question)
            Attachments combine in one message; earlier messages and their media stay in the conversation.
              /system TEXT   set the system message (and start a new conversation)
              /reset         forget the conversation and attachments (keeps the system message)
              /help          this text
              /exit          quit (Ctrl-D too)
            A line ending in \\ continues on the next line; a line with only \"\"\" starts or ends a block.""";

    private final LanguageModel model;               // text chat, or null in media mode
    private final xllm.model.Conversation media;     // media mode: the X-LLM conversation, or null
    private final Map<Modality, Path> attached = new EnumMap<>(Modality.class); // for the next message
    private final Generator.Options options;
    private final PrintStream out;
    private final List<ChatTemplate.Message> history = new ArrayList<>();
    private String system;
    private boolean streamed;                     // whether the current reply has printed any text yet

    ChatSession(LanguageModel model, Generator.Options options, PrintStream out, String system) {
        this(model, null, null, options, out, system);
    }

    /**
     * Media mode: each message goes to the X-LLM conversation with the media attached since the last one
     * ({@code attached}: those of the command line, for the first message); the history keeps every turn.
     */
    ChatSession(LanguageModel model, xllm.model.Conversation media, Map<Modality, Path> attached,
                Generator.Options options, PrintStream out, String system) {
        this.model = model;
        this.media = media;
        if (attached != null) this.attached.putAll(attached);
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
        if (media != null) {
            ask(input);
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

    /** One media turn: the attached media and {@code question}; the attachments are used up when it succeeds. */
    private void ask(String question) {
        if (question.isBlank() && !attached.containsKey(Modality.SPEECH)) return;
        Generator.Completion reply = turn(() -> media.ask(attached, question, options, this::stream));
        if (reply != null) attached.clear();
    }

    /** {@code /image FILE} and its kin: checks the model reads that kind and the file exists, then attaches it. */
    private void attach(String kind, String file) {
        Modality modality = java.util.Arrays.stream(Modality.values()).filter(m -> m.flag().equals(kind)).findFirst()
                .orElseThrow();
        if (media == null || !media.model().modalities().contains(modality)) {
            String reads = media == null ? "text only" : String.join(", ", media.model().modalities().stream()
                    .map(m -> "/" + m.flag()).toList());
            out.println("(this model has no " + modality.id() + " interface; it reads " + reads + ")");
        } else if (file.isEmpty() || !Files.isRegularFile(Path.of(file))) {
            out.println("(no such " + kind + " file: " + file + ")");
        } else {
            attached.put(modality, Path.of(file));
            out.println("(" + kind + " attached to your next message: " + file + ")");
        }
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
                attached.clear();
                if (media != null) media.reset();
                out.println("(conversation cleared)");
            }
            case "/system" -> {
                system = parts.length > 1 ? parts[1] : null;
                history.clear();
                out.println(system == null ? "(system message removed)" : "(system message set; conversation cleared)");
            }
            case "/help" -> out.println(HELP);
            case "/ask" -> {
                if (media == null || !attached.containsKey(Modality.SPEECH)) {
                    out.println("(/ask needs an X-LLM checkpoint with a speech interface and an attached WAV: /audio FILE)");
                    return true;
                }
                ask("");
            }
            case "/image", "/video", "/audio" -> attach(parts[0].substring(1), parts.length < 2 ? "" : parts[1].strip());
            default -> out.println("unknown command " + parts[0] + " — /help lists them");
        }
        return true;
    }
}
