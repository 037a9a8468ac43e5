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
 * Runs a script of tools/clients (the official openai npm client, the Playwright page test) against a running server.
 * Missing Node packages fail the test with the command that installs them; nothing is skipped.
 */
final class NodeClients {

    static final Path DIR = Path.of("tools", "clients");

    record Result(int exitCode, String output) {}

    static Result run(String script, List<String> args) throws IOException, InterruptedException {
        if (!Files.isDirectory(DIR.resolve("node_modules"))) {
            throw new AssertionError(DIR.resolve("node_modules") + " is missing: run tools/test-setup.sh (it runs npm ci "
                    + "in tools/clients)");
        }
        List<String> command = new ArrayList<>(List.of("node", DIR.resolve(script).toString()));
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
