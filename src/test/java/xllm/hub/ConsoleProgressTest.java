package xllm.hub;

import org.junit.jupiter.api.Test;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.util.concurrent.atomic.AtomicLong;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ConsoleProgressTest {

    private static final long MS = 1_000_000L;
    private final AtomicLong clock = new AtomicLong();
    private final StringWriter text = new StringWriter();

    private ConsoleProgress progress(boolean terminal) {
        return new ConsoleProgress(new PrintWriter(text), terminal, clock::get);
    }

    @Test
    void terminalRedrawsOneLineAtMostFiveTimesASecond() {
        ConsoleProgress p = progress(true);
        p.begin("model.safetensors", 100L << 20, 0);
        for (int i = 1; i <= 100; i++) { // 1 second, 1 MiB every 10 ms
            clock.addAndGet(10 * MS);
            p.advance((long) i << 20);
        }
        String shown = text.toString();
        assertEquals(1 + 5, shown.chars().filter(c -> c == '\r').count(), "begin plus one redraw per 200 ms");
        assertEquals(-1, shown.indexOf('\n'), "no new lines while the transfer runs");
        assertTrue(p.statusLine().startsWith("model.safetensors  100.0 MiB / 100.0 MiB  100%  100.0 MiB/s"),
                p.statusLine());

        p.begin("model.safetensors", 100L << 20, 0);
        clock.addAndGet(2000 * MS);
        p.advance(20L << 20);
        assertTrue(p.statusLine().endsWith("  20%  10.0 MiB/s  ETA 8s"), p.statusLine());
        p.end();
        assertTrue(text.toString().endsWith("model.safetensors: 20.0 MiB in 2.0 s (10.0 MiB/s)\n"), text.toString());
    }

    @Test
    void resumedTransferCountsOnlyNewBytesInTheRate() {
        ConsoleProgress p = progress(true);
        p.begin("w", 100L << 20, 90L << 20);
        clock.addAndGet(1000 * MS);
        p.advance(95L << 20);
        assertTrue(p.statusLine().contains("5.0 MiB/s  ETA 1s"), p.statusLine());
    }

    @Test
    void plainOutputPrintsFewLines() {
        ConsoleProgress p = progress(false);
        p.note("fetching acme/tiny");
        p.begin("config.json", 600, 0);            // small: no start line
        p.advance(600);
        p.end();
        p.begin("model.safetensors", 1L << 30, 0);
        for (int i = 1; i <= 250; i++) {           // 25 s in 100 ms steps
            clock.addAndGet(100 * MS);
            p.advance((long) i << 22);
        }
        p.end();
        String[] lines = text.toString().split("\n");
        assertEquals(6, lines.length, text.toString()); // note, config end, start, 2 status lines (10 s, 20 s), end
        assertEquals("fetching acme/tiny", lines[0]);
        assertTrue(lines[1].startsWith("config.json: 600 B in "), lines[1]);
        assertEquals("model.safetensors: 1.0 GiB", lines[2]);
        assertTrue(lines[3].startsWith("model.safetensors  400.0 MiB / 1.0 GiB   39%"), lines[3]);
        assertTrue(text.toString().indexOf('\r') < 0);
    }
}
