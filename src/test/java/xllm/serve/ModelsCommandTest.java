package xllm.serve;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;
import xllm.hub.Carrier;
import xllm.hub.CarrierFetcher;
import xllm.hub.HubClient;
import xllm.hub.ModelStore;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@code ./xllm models ...} against a store in a temp dir and a tiny local imitation of the hub. */
class ModelsCommandTest {

    @TempDir
    Path home;
    private com.sun.net.httpserver.HttpServer hub;
    private StringWriter out;
    private StringWriter err;

    @BeforeEach
    void startHub() throws Exception {
        hub = com.sun.net.httpserver.HttpServer.create(
                new java.net.InetSocketAddress(java.net.InetAddress.getLoopbackAddress(), 0), 0);
        byte[] listing = ("{\"sha\":\"abc\",\"siblings\":[{\"rfilename\":\"config.json\",\"size\":2},"
                + "{\"rfilename\":\"model.safetensors\",\"size\":4}]}").getBytes();
        hub.createContext("/api/models/acme/tiny/revision/main", e -> reply(e, 200, listing));
        hub.createContext("/acme/tiny/resolve/abc/config.json", e -> reply(e, 200, "{}".getBytes()));
        hub.createContext("/acme/tiny/resolve/abc/model.safetensors", e -> reply(e, 200, "WXYZ".getBytes()));
        hub.createContext("/", e -> reply(e, 404, "{\"error\":\"Repository not found\"}".getBytes()));
        hub.start();
    }

    @AfterEach
    void stopHub() {
        hub.stop(0);
    }

    private static void reply(com.sun.net.httpserver.HttpExchange e, int status, byte[] body) throws java.io.IOException {
        e.sendResponseHeaders(status, body.length);
        e.getResponseBody().write(body);
        e.close();
    }

    private int run(String... args) {
        ModelStore store = new ModelStore(home, Carrier.BUILT_IN,
                new HubClient(java.net.URI.create("http://127.0.0.1:" + hub.getAddress().getPort()), null, 0,
                        Duration.ZERO), new CarrierFetcher(List.of("false"), List.of()));
        CommandLine cl = new CommandLine(new ModelsCommand(() -> store));
        out = new StringWriter();
        err = new StringWriter();
        cl.setOut(new PrintWriter(out));
        cl.setErr(new PrintWriter(err));
        return cl.execute(args);
    }

    @Test
    void pullListRemove() {
        assertEquals(0, run("pull", "acme/tiny"), err.toString());
        Path dir = home.resolve("models/acme--tiny");
        assertEquals(dir.toString(), out.toString().trim());
        assertTrue(err.toString().contains("fetching acme/tiny (revision main)"), err.toString());
        assertTrue(Files.isRegularFile(dir.resolve("model.safetensors")));

        assertEquals(0, run("list"));
        String[] lines = out.toString().split("\n");
        assertTrue(lines[0].matches("NAME +SOURCE +SIZE +PATH"), lines[0]);
        assertTrue(lines[1].matches("acme/tiny +hf:acme/tiny@main +\\d+ B +" + java.util.regex.Pattern.quote(
                dir.toString())), lines[1]);
        assertTrue(out.toString().contains("not pulled (./xllm models pull NAME): smollm2-135m-instruct"));

        assertEquals(0, run("rm", "acme/tiny"));
        assertFalse(Files.exists(dir));
        assertEquals(0, run("list"));
        assertTrue(out.toString().startsWith("no models in " + home.resolve("models")), out.toString());
    }

    @Test
    void errorsExitWithOneAndAMessage() {
        assertEquals(1, run("pull", "acme/missing"));
        assertTrue(err.toString().contains("error: repository acme/missing not found (HTTP 404"), err.toString());
        assertEquals(1, run("pull", "nonsense"));
        assertTrue(err.toString().contains("error: unknown model 'nonsense'"), err.toString());
        assertEquals(1, run("rm", "acme/tiny"));
        assertTrue(err.toString().contains("is not in the cache"), err.toString());
        assertEquals(2, run("pull"), "missing parameter is a usage error");
    }

    @Test
    void helpSaysWhereTheCacheIsAndHowToMoveIt() {
        String previous = System.getProperty("xllm.home");
        System.setProperty("xllm.home", home.toString());
        try {
            assertEquals(0, run("--help"));
            String help = out.toString();
            assertTrue(help.contains("Cache: "), help);
            assertTrue(help.contains("XLLM_HOME=DIR") && help.contains("-Dxllm.home=DIR"), help);
            if (System.getenv("XLLM_HOME") == null) assertTrue(help.contains("Cache: " + home + "/models"), help);
            assertEquals(0, run("pull", "--help"));
            assertTrue(out.toString().contains("--revision=R") && out.toString().contains("--file=F"));
            assertTrue(out.toString().contains("set XLLM_HOME or -Dxllm.home"), out.toString());
        } finally {
            if (previous == null) System.clearProperty("xllm.home");
            else System.setProperty("xllm.home", previous);
        }
    }

    @Test
    void mainRegistersTheModelsCommand() {
        assertTrue(Main.commandLine().getSubcommands().containsKey("models"));
    }
}
