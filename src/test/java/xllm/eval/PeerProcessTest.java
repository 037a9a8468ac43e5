package xllm.eval;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A peer that fails: the last lines of its stderr reach the exception, the report's JSON and the printed table.
 * The peers here are shell scripts standing in for tools/reference/*.py, so no Python is needed.
 */
class PeerProcessTest {

    private static final String NAME = "tools/reference/bench_vision.py";
    private static final String LAST_LINE = "ModuleNotFoundError: No module named 'efficientnet_lite_pytorch'";

    /** A script that logs 30 progress lines, a 5000-character line and a Python-like traceback, then exits 1. */
    private static List<String> failingPeer(Path dir) throws IOException {
        Path script = dir.resolve("peer.sh");
        Files.writeString(script, """
                i=1
                while [ $i -le 30 ]; do echo "progress line $i" >&2; i=$((i + 1)); done
                head -c 5000 /dev/zero | tr '\\0' x >&2; echo >&2
                echo 'Traceback (most recent call last):' >&2
                echo '  File "tools/reference/bench_vision.py", line 58, in main' >&2
                echo '    from efficientnet_lite_pytorch import EfficientNet' >&2
                echo "%s" >&2
                exit 1
                """.formatted(LAST_LINE));
        return List.of("/bin/sh", script.toString());
    }

    @Test
    void failedRunCarriesTheTailOfStderr(@TempDir Path dir) {
        IOException e = assertThrows(IOException.class, () -> PeerProcess.run(failingPeer(dir), NAME, 60));
        String message = e.getMessage();
        assertTrue(message.startsWith(NAME + " exited with status 1"), message);
        assertTrue(message.contains(LAST_LINE), message);
        assertTrue(message.contains("Traceback (most recent call last):"), message);
        assertFalse(message.contains("progress line 1\n"), "only the tail is kept: " + message);
        assertTrue(message.lines().allMatch(line -> line.length() <= PeerProcess.TAIL_LINE_CHARS + 10),
                "long lines are trimmed: " + message);
        assertTrue(message.lines().count() <= PeerProcess.TAIL_LINES + 2, message); // + summary and heading
    }

    @Test
    void progressBarLeavesOnlyItsLastStateInTheTail(@TempDir Path dir) throws IOException {
        Path script = dir.resolve("progress.sh");
        Files.writeString(script, "printf 'tensors: 10/272\\rtensors: 136/272\\rtensors: 272/272\\n' >&2\n"
                + "printf 'first\\r\\nsecond\\r\\n' >&2\nexit 3\n");
        IOException e = assertThrows(IOException.class,
                () -> PeerProcess.run(List.of("/bin/sh", script.toString()), NAME, 60));
        assertEquals(NAME + " exited with status 3\nlast lines of its stderr:\n  | tensors: 272/272\n  | first\n  | second",
                e.getMessage());
    }

    @Test
    void hungRunStopsAtItsTimeout(@TempDir Path dir) throws IOException {
        Path script = dir.resolve("hung.sh");
        Files.writeString(script, "echo 'loading the model' >&2\nexec sleep 20\n");
        long start = System.nanoTime();
        IOException e = assertThrows(IOException.class,
                () -> PeerProcess.run(List.of("/bin/sh", script.toString()), NAME, 1));
        double seconds = (System.nanoTime() - start) / 1e9;
        assertTrue(e.getMessage().startsWith(NAME + " did not finish in 1 s"), e.getMessage());
        assertTrue(e.getMessage().contains("loading the model"), e.getMessage());
        assertTrue(seconds < 10, "the timeout held: " + seconds + " s");
    }

    @Test
    void runWithoutOutputIsAnError(@TempDir Path dir) throws IOException {
        Path script = dir.resolve("silent.sh");
        Files.writeString(script, "echo 'nothing to report' >&2\n");
        IOException e = assertThrows(IOException.class,
                () -> PeerProcess.run(List.of("/bin/sh", script.toString()), NAME, 60));
        assertTrue(e.getMessage().startsWith(NAME + " printed no JSON object: \"\""), e.getMessage());
        assertTrue(e.getMessage().contains("nothing to report"), e.getMessage());
    }

    @Test
    void failedSessionCarriesTheTailOfStderr(@TempDir Path dir) {
        IOException e = assertThrows(IOException.class, () -> PeerProcess.open(failingPeer(dir), NAME, 60));
        assertTrue(e.getMessage().startsWith(NAME + " exited with status 1 before answering"), e.getMessage());
        assertTrue(e.getMessage().contains(LAST_LINE), e.getMessage());
    }

    @Test
    void tableShowsTheTailOfAFailedPeerOnce(@TempDir Path dir) {
        IOException e = assertThrows(IOException.class, () -> PeerProcess.run(failingPeer(dir), NAME, 60));
        BenchmarkReport report = new BenchmarkReport("vision");
        report.add("xllm", "images_per_s", 8.87, "img/s");
        report.failed("pytorch-eager", "images_per_s", "img/s", e.getMessage());
        report.failed("pytorch-eager", "peak_rss", "MiB", e.getMessage());
        report.ratio("images_per_s", "xllm", "pytorch-eager", true);

        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        report.printTable(new PrintStream(bytes, true, StandardCharsets.UTF_8));
        String table = bytes.toString(StandardCharsets.UTF_8);
        assertTrue(table.contains(LAST_LINE), table);
        assertTrue(table.contains("from efficientnet_lite_pytorch import EfficientNet"), table);
        assertEquals(1, table.split(LAST_LINE, -1).length - 1, "the tail is printed once per failure: " + table);
        assertTrue(table.lines().anyMatch(line -> line.startsWith("pytorch-eager") && line.contains("n/a")
                && line.contains(NAME + " exited with status 1")), table);
        assertFalse(table.contains("progress line 1\n"), table);

        @SuppressWarnings("unchecked")
        List<Map<String, Object>> results = (List<Map<String, Object>>) report.toMap().get("results");
        assertTrue(results.stream().anyMatch(r -> String.valueOf(r.get("error")).contains(LAST_LINE)),
                results.toString());
    }
}
