package xllm.eval;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.OutputStreamWriter;
import java.io.Writer;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

/**
 * Runs a peer benchmark script of {@code tools/reference/} with the reference venv's Python and parses the one
 * JSON object it prints on stdout, or ({@link #open}) keeps it running and exchanges one command line for one JSON
 * line at a time, so that peer runs can interleave with xllm's. Failures come back as exceptions whose message
 * says what to do.
 */
public final class PeerProcess {

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
        List<String> command = new ArrayList<>();
        command.add(python().toString());
        command.add(script.toString());
        command.addAll(args);
        Process process = new ProcessBuilder(command).redirectError(ProcessBuilder.Redirect.INHERIT).start();
        byte[] stdout = process.getInputStream().readAllBytes();
        if (!process.waitFor(timeoutSeconds, TimeUnit.SECONDS)) {
            process.destroyForcibly();
            throw new IOException(script + " did not finish in " + timeoutSeconds + " s");
        }
        if (process.exitValue() != 0) throw new IOException(script + " exited with status " + process.exitValue());
        String text = new String(stdout, StandardCharsets.UTF_8).strip();
        try {
            return new ObjectMapper().readTree(text);
        } catch (IOException e) {
            throw new IOException(script + " printed no JSON: " + text.substring(0, Math.min(200, text.length())));
        }
    }

    /**
     * Starts {@code script} as a long-lived peer that prints one JSON object per stdout line: the first line it
     * prints (its "ready" line) is returned by {@link Session#ready()}; each {@link Session#request} writes a
     * command line and waits for the next JSON line.
     */
    public static Session open(Path script, List<String> args, long startTimeoutSeconds)
            throws IOException, InterruptedException {
        List<String> command = new ArrayList<>();
        command.add(python().toString());
        command.add(script.toString());
        command.addAll(args);
        Process process = new ProcessBuilder(command).redirectError(ProcessBuilder.Redirect.INHERIT).start();
        Session session = new Session(script, process);
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
        private final Path script;
        private final Process process;
        private final Writer stdin;
        private final BlockingQueue<String> lines = new LinkedBlockingQueue<>();
        private JsonNode ready;

        private Session(Path script, Process process) {
            this.script = script;
            this.process = process;
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
                throw new IOException(script + " stopped reading commands (exit status "
                        + (process.isAlive() ? "none yet" : process.exitValue()) + ")");
            }
            return next(timeoutSeconds);
        }

        private JsonNode next(long timeoutSeconds) throws IOException, InterruptedException {
            String line = lines.poll(timeoutSeconds, TimeUnit.SECONDS);
            if (line == null) throw new IOException(script + " did not answer in " + timeoutSeconds + " s");
            if (line.equals(END)) {
                lines.add(END);
                process.waitFor(5, TimeUnit.SECONDS);
                throw new IOException(script + " exited" + (process.isAlive() ? "" : " with status " + process.exitValue())
                        + " before answering");
            }
            try {
                return new ObjectMapper().readTree(line);
            } catch (IOException e) {
                throw new IOException(script + " printed a line that is not JSON: "
                        + line.substring(0, Math.min(200, line.length())));
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
}
