package xllm.server;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

/**
 * Runs a script of tools/clients (the official openai npm and Python clients, the Playwright page test) against a
 * running server. Missing Node packages or a missing Python venv fail the test with the command that installs them;
 * nothing is skipped.
 */
final class ClientScripts {

    static final Path DIR = Path.of("tools", "clients");

    record Result(int exitCode, String output) {}

    static Result node(String script, List<String> args) throws IOException, InterruptedException {
        if (!Files.isDirectory(DIR.resolve("node_modules"))) {
            throw new AssertionError(DIR.resolve("node_modules") + " is missing: run tools/test-setup.sh (it runs npm ci "
                    + "in tools/clients)");
        }
        return run(script, "node", args);
    }

    static Result python(String script, List<String> args) throws IOException, InterruptedException {
        Path python = DIR.resolve(".venv/bin/python");
        if (!Files.isExecutable(python)) {
            throw new AssertionError(python + " is missing: run tools/test-setup.sh (it installs "
                    + "tools/clients/requirements.txt into tools/clients/.venv)");
        }
        return run(script, python.toString(), args);
    }

    private static Result run(String script, String interpreter, List<String> args)
            throws IOException, InterruptedException {
        List<String> command = new ArrayList<>(List.of(interpreter, DIR.resolve(script).toString()));
        command.addAll(args);
        Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
        CompletableFuture<String> out = CompletableFuture.supplyAsync(() -> {
            try {
                return new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            } catch (IOException e) {
                return "(output unreadable: " + e + ")";
            }
        });
        if (!p.waitFor(240, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            throw new AssertionError(script + " did not finish in 240 s:\n" + out.getNow(""));
        }
        return new Result(p.exitValue(), out.join());
    }
}
