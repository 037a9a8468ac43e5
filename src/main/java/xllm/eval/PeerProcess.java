package xllm.eval;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.BufferedReader;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.OutputStreamWriter;
import java.io.Writer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.FutureTask;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * Runs a peer benchmark script of {@code tools/reference/} with the reference venv's Python and parses the one
 * JSON object it prints on stdout, or ({@link #open}) keeps it running and exchanges one command line for one JSON
 * line at a time, so that peer runs can interleave with xllm's. Failures come back as exceptions whose message
 * says what to do: its first line what happened, then the last lines the peer wrote to stderr (where a Python
 * traceback ends), each after "  | ". The peer's stderr is also copied to ours as it comes, so its progress stays
 * visible.
 */
public final class PeerProcess {

    /** How much of a failed peer's stderr its error keeps: the last lines, each cut to this many characters. */
    static final int TAIL_LINES = 8;
    static final int TAIL_LINE_CHARS = 200;

    private PeerProcess() {}

    /** The reference Python: {@code $XLLM_REFERENCE_PYTHON}, else {@code tools/reference/.venv/bin/python}. */
    public static Path python() throws IOException {
        String override = System.getenv("XLLM_REFERENCE_PYTHON");
        Path python = override != null ? Path.of(override) : Path.of("tools/reference/.venv/bin/python");
        if (!Files.isExecutable(python)) {
            throw new IOException("reference Python not found at " + python
                    + " (create it with tools/reference/setup.sh, or set XLLM_REFERENCE_PYTHON)");
        }
        return python;
    }

    public static JsonNode run(Path script, List<String> args, long timeoutSeconds) throws IOException, InterruptedException {
        return run(command(script, args), script.toString(), timeoutSeconds);
    }

    /** The reference Python, then {@code script}, then {@code args}. */
    private static List<String> command(Path script, List<String> args) throws IOException {
        List<String> command = new ArrayList<>();
        command.add(python().toString());
        command.add(script.toString());
        command.addAll(args);
        return command;
    }

    /** Runs {@code command} (any program: tests pass a shell script) and parses its stdout; {@code name} names it. */
    static JsonNode run(List<String> command, String name, long timeoutSeconds)
            throws IOException, InterruptedException {
        Process process = new ProcessBuilder(command).start();
        StderrTail stderr = new StderrTail(process);
        // stdout is read on its own thread so that a peer that hangs with stdout open still meets the timeout
        FutureTask<byte[]> stdout = new FutureTask<>(() -> process.getInputStream().readAllBytes());
        Thread reader = new Thread(stdout, "peer-stdout");
        reader.setDaemon(true);
        reader.start();
        if (!process.waitFor(timeoutSeconds, TimeUnit.SECONDS)) {
            process.destroyForcibly();
            throw new IOException(stderr.after(name + " did not finish in " + timeoutSeconds + " s"));
        }
        if (process.exitValue() != 0) {
            throw new IOException(stderr.after(name + " exited with status " + process.exitValue()));
        }
        String text;
        try {
            text = new String(stdout.get(5, TimeUnit.SECONDS), StandardCharsets.UTF_8).strip();
        } catch (ExecutionException | TimeoutException e) {
            throw new IOException(stderr.after(name + " exited but its stdout could not be read: " + e));
        }
        JsonNode result;
        try {
            result = new ObjectMapper().readTree(text);
        } catch (IOException e) {
            result = null;
        }
        if (result == null || !result.isObject()) { // readTree gives an empty node, not an error, for empty text
            throw new IOException(stderr.after(name + " printed no JSON object: \""
                    + text.substring(0, Math.min(200, text.length())) + "\""));
        }
        return result;
    }

    /**
     * Starts {@code script} as a long-lived peer that prints one JSON object per stdout line: the first line it
     * prints (its "ready" line) is returned by {@link Session#ready()}; each {@link Session#request} writes a
     * command line and waits for the next JSON line.
     */
    public static Session open(Path script, List<String> args, long startTimeoutSeconds)
            throws IOException, InterruptedException {
        return open(command(script, args), script.toString(), startTimeoutSeconds);
    }

    /** {@link #open(Path, List, long)} for any program (tests pass a shell script); {@code name} is for messages. */
    static Session open(List<String> command, String name, long startTimeoutSeconds)
            throws IOException, InterruptedException {
        Process process = new ProcessBuilder(command).start();
        Session session = new Session(name, process);
        try {
            session.ready = session.next(startTimeoutSeconds);
        } catch (IOException | InterruptedException e) {
            session.close();
            throw e;
        }
        return session;
    }

    /** A running peer; {@link #close} asks it to quit and kills it if it does not. */
    public static final class Session implements AutoCloseable {
        private static final String END = "\u0000end";
        private final String name;
        private final Process process;
        private final StderrTail stderr;
        private final Writer stdin;
        private final BlockingQueue<String> lines = new LinkedBlockingQueue<>();
        private JsonNode ready;

        private Session(String name, Process process) {
            this.name = name;
            this.process = process;
            this.stderr = new StderrTail(process);
            this.stdin = new OutputStreamWriter(process.getOutputStream(), StandardCharsets.UTF_8);
            Thread reader = new Thread(() -> {
                try (BufferedReader out = new BufferedReader(
                        new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8))) {
                    for (String line; (line = out.readLine()) != null; ) lines.add(line);
                } catch (IOException ignored) {
                    // the process went away: END below tells the waiting side
                } finally {
                    lines.add(END);
                }
            }, "peer-stdout");
            reader.setDaemon(true);
            reader.start();
        }

        /** The first JSON line the peer printed. */
        public JsonNode ready() {
            return ready;
        }

        /** Sends {@code command} and returns the JSON line it answers with. */
        public JsonNode request(String command, long timeoutSeconds) throws IOException, InterruptedException {
            try {
                stdin.write(command + "\n");
                stdin.flush();
            } catch (IOException e) {
                throw new IOException(stderr.after(name + " stopped reading commands (exit status "
                        + (process.isAlive() ? "none yet" : process.exitValue()) + ")"));
            }
            return next(timeoutSeconds);
        }

        private JsonNode next(long timeoutSeconds) throws IOException, InterruptedException {
            String line = lines.poll(timeoutSeconds, TimeUnit.SECONDS);
            if (line == null) throw new IOException(stderr.after(name + " did not answer in " + timeoutSeconds + " s"));
            if (line.equals(END)) {
                lines.add(END);
                process.waitFor(5, TimeUnit.SECONDS);
                throw new IOException(stderr.after(name + " exited"
                        + (process.isAlive() ? "" : " with status " + process.exitValue()) + " before answering"));
            }
            try {
                return new ObjectMapper().readTree(line);
            } catch (IOException e) {
                throw new IOException(stderr.after(name + " printed a line that is not JSON: "
                        + line.substring(0, Math.min(200, line.length()))));
            }
        }

        /** Sends "quit" and returns the peer's last JSON line (null if it printed none). */
        public JsonNode quit(long timeoutSeconds) throws IOException, InterruptedException {
            return request("quit", timeoutSeconds);
        }

        @Override
        public void close() {
            try {
                stdin.close();
            } catch (IOException ignored) {
                // already closed by the peer's exit
            }
            try {
                if (!process.waitFor(5, TimeUnit.SECONDS)) process.destroyForcibly();
            } catch (InterruptedException e) {
                process.destroyForcibly();
                Thread.currentThread().interrupt();
            }
        }
    }

    /**
     * Copies a peer's stderr to ours as it comes and keeps its last {@link #TAIL_LINES} non-blank lines, each cut to
     * {@link #TAIL_LINE_CHARS} characters, for the error that reports the peer's failure. A carriage return not
     * followed by a newline starts the line again, as on a terminal: a progress bar leaves only its last state.
     */
    private static final class StderrTail {
        private static final int LINE_BYTES = 4 * TAIL_LINE_CHARS; // enough for TAIL_LINE_CHARS UTF-8 characters
        private final Deque<String> lines = new ArrayDeque<>();
        private final ByteArrayOutputStream line = new ByteArrayOutputStream();
        private boolean lineCut;
        private boolean carriageReturn;
        private final Process process;
        private final Thread thread;

        StderrTail(Process process) {
            this.process = process;
            thread = new Thread(() -> {
                byte[] buffer = new byte[8192];
                try (InputStream err = process.getErrorStream()) {
                    for (int n; (n = err.read(buffer)) > 0; ) {
                        System.err.write(buffer, 0, n);
                        System.err.flush();
                        for (int i = 0; i < n; i++) take(buffer[i]);
                    }
                } catch (IOException ignored) {
                    // the process went away; what was read is kept
                } finally {
                    endLine();
                }
            }, "peer-stderr");
            thread.setDaemon(true);
            thread.start();
        }

        private synchronized void take(byte b) {
            if (carriageReturn && b != '\n') { // "\r" alone: the text that follows overwrites the line
                line.reset();
                lineCut = false;
            }
            carriageReturn = b == '\r';
            if (b == '\n') {
                endLine();
            } else if (b != '\r') {
                if (line.size() < LINE_BYTES) line.write(b);
                else lineCut = true;
            }
        }

        private synchronized void endLine() {
            String text = line.toString(StandardCharsets.UTF_8).stripTrailing();
            boolean cut = lineCut || text.length() > TAIL_LINE_CHARS;
            line.reset();
            lineCut = false;
            if (text.isBlank()) return;
            if (cut) text = text.substring(0, Math.min(text.length(), TAIL_LINE_CHARS)) + " [...]";
            if (lines.size() == TAIL_LINES) lines.removeFirst();
            lines.addLast(text);
        }

        /** {@code summary}, then the tail of stderr; once the peer has exited, waits (up to 5 s) for its last lines. */
        String after(String summary) throws InterruptedException {
            if (!process.isAlive()) thread.join(5000);
            StringBuilder message = new StringBuilder(summary);
            synchronized (this) {
                if (!lines.isEmpty()) message.append("\nlast lines of its stderr:");
                for (String text : lines) message.append("\n  | ").append(text);
            }
            return message.toString();
        }
    }
}
