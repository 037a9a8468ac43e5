package xllm.serve;

import ai.djl.ndarray.NDManager;
import org.jline.reader.EndOfFileException;
import org.jline.reader.LineReader;
import org.jline.reader.LineReaderBuilder;
import org.jline.reader.UserInterruptException;
import org.jline.terminal.Terminal;
import org.jline.terminal.TerminalBuilder;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import xllm.hub.ModelStore;
import xllm.llm.LanguageModel;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.util.concurrent.Callable;

/** {@code ./xllm chat}: an interactive conversation with streamed replies (JLine line editing and history). */
@Command(name = "chat", mixinStandardHelpOptions = true,
        description = {"Chat with a model. Replies stream as they are generated.",
                "Type /help inside the chat for its commands (/reset, /system, /exit).",
                "Input history is kept in <cache>/chat_history. Reads plain lines when stdin is not a terminal."})
public final class ChatCommand implements Callable<Integer> {

    @Mixin ModelOption modelOption;
    @Mixin SamplingOptions sampling;

    @Option(names = "--system", description = "Initial system message.")
    String system;

    @Option(names = "--image", description = "Attach this image to the first message (--model must be an X-LLM "
            + "checkpoint with an image interface); /image FILE attaches one later.")
    java.nio.file.Path image;

    @Option(names = "--video", description = "Attach this video to the first message (a checkpoint with a video "
            + "interface); /video FILE attaches one later.")
    java.nio.file.Path video;

    @Option(names = "--audio", description = "Attach this WAV to the first message (a checkpoint with a speech "
            + "interface); /audio FILE attaches one later, /ask sends it as the question.")
    java.nio.file.Path audio;

    @Option(names = "--frames", description = "Frames sampled per video (default: the checkpoint's).")
    int frames;

    /** Reads one user turn (with continuations), or null at end of input. */
    interface TurnReader {
        String read() throws Exception;
    }

    @Override
    public Integer call() throws Exception {
        xllm.llm.Generator.Options options = sampling.toOptions(); // bad flags fail before a model is loaded
        PrintStream out = new PrintStream(System.out, true, StandardCharsets.UTF_8);
        java.nio.file.Path resolved = ModelStore.defaultStore().resolve(modelOption.model);
        boolean mediaMode = xllm.model.XLlm.isCheckpoint(resolved);
        java.util.Map<xllm.model.Modality, java.nio.file.Path> media = MediaOption.of(image, video, audio);
        if (!media.isEmpty() && !mediaMode) {
            throw new IllegalArgumentException(MediaOption.flags(media) + " need --model <X-LLM checkpoint dir>; "
                    + resolved + " is not one");
        }
        if (frames != 0) xllm.model.VideoInterface.requireFrames(frames);
        try (NDManager manager = NDManager.newBaseManager();
             AutoCloseable owned = mediaMode ? xllm.model.XLlm.load(resolved, frames, manager) : modelOption.open(manager)) {
            ChatSession session;
            if (mediaMode) {
                xllm.model.XLlm model = (xllm.model.XLlm) owned;
                for (xllm.model.Modality m : media.keySet()) model.interfaceOf(m); // names what the checkpoint lacks
                session = new ChatSession(null, new xllm.model.Conversation(model), media, options, out, system);
            } else {
                session = new ChatSession((LanguageModel) owned, options, out, system);
            }
            String name = resolved.getFileName().toString();
            if (System.console() != null) {
                try (Terminal terminal = TerminalBuilder.builder().system(true).build()) {
                    var history = ModelStore.defaultStore().home().resolve("chat_history");
                    Files.createDirectories(history.getParent());
                    LineReader reader = LineReaderBuilder.builder().terminal(terminal)
                            .variable(LineReader.HISTORY_FILE, history).build();
                    out.println("xllm chat with " + name + " — /help for commands, Ctrl-D to quit");
                    run(session, () -> readTurn(prompt -> {
                        try {
                            return reader.readLine(prompt);
                        } catch (UserInterruptException e) {
                            return "";
                        } catch (EndOfFileException e) {
                            return null;
                        }
                    }));
                }
            } else {
                BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
                run(session, () -> readTurn(prompt -> in.readLine()));
            }
        }
        return 0;
    }

    static void run(ChatSession session, TurnReader turns) throws Exception {
        String turn;
        while ((turn = turns.read()) != null) {
            if (!session.handle(turn)) break;
        }
    }

    interface LineSource {
        String line(String prompt) throws Exception;
    }

    /** Joins continuation lines (trailing backslash) and triple-quoted blocks into one turn. */
    static String readTurn(LineSource lines) throws Exception {
        String first = lines.line(">>> ");
        if (first == null) return null;
        if (first.strip().equals("\"\"\"")) {
            StringBuilder block = new StringBuilder();
            String line;
            while ((line = lines.line("... ")) != null && !line.strip().equals("\"\"\"")) {
                if (block.length() > 0) block.append('\n');
                block.append(line);
            }
            return block.toString();
        }
        StringBuilder turn = new StringBuilder(first);
        while (turn.length() > 0 && turn.charAt(turn.length() - 1) == '\\') {
            turn.setLength(turn.length() - 1);
            String next = lines.line("... ");
            if (next == null) break;
            turn.append('\n').append(next);
        }
        return turn.toString();
    }
}
