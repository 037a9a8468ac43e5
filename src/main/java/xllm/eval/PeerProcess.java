package xllm.eval;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * Runs a peer benchmark script of {@code tools/reference/} with the reference venv's Python and parses the one
 * JSON object it prints on stdout. Failures come back as exceptions whose message says what to do.
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
}
