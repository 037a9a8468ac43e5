package xllm.hub;

import java.io.PrintWriter;
import java.util.Locale;
import java.util.function.LongSupplier;

/**
 * Progress on a console: on a terminal one line redrawn in place (bytes, rate, ETA) at most ~5 times a second;
 * elsewhere (logs, pipes, CI) plain lines: one when a large file starts, one every {@value #LOG_EVERY_SECONDS} s
 * while it runs, one when any file ends, so logs show life without being flooded.
 */
public final class ConsoleProgress implements ProgressListener {

    private static final long REDRAW_NANOS = 200_000_000L; // ~5 Hz
    private static final int LOG_EVERY_SECONDS = 10;
    private static final long LARGE_FILE = 8L << 20;        // non-terminal: announce files from 8 MiB on

    private final PrintWriter out;
    private final boolean terminal;
    private final LongSupplier nanoTime;

    private String label;
    private long totalBytes;
    private long startBytes;     // bytes present when this transfer began (resume); the rate counts only new bytes
    private long doneBytes;
    private long startNanos;
    private long lastDrawNanos;
    private int lastWidth;

    public ConsoleProgress(PrintWriter out, boolean terminal, LongSupplier nanoTime) {
        this.out = out;
        this.terminal = terminal;
        this.nanoTime = nanoTime;
    }

    /** On stderr; redraws in place only when a console is attached and TERM is not "dumb". */
    public static ConsoleProgress stderr() {
        return new ConsoleProgress(new PrintWriter(System.err, true), isTerminal(), System::nanoTime);
    }

    public static boolean isTerminal() {
        return System.console() != null && !"dumb".equals(System.getenv("TERM"));
    }

    @Override
    public void note(String message) {
        clearLine();
        out.println(message);
        out.flush();
    }

    @Override
    public void begin(String label, long totalBytes, long doneBytes) {
        this.label = label;
        this.totalBytes = totalBytes;
        this.startBytes = doneBytes;
        this.doneBytes = doneBytes;
        this.startNanos = nanoTime.getAsLong();
        this.lastDrawNanos = startNanos;
        if (terminal) {
            draw();
        } else if (totalBytes < 0 || totalBytes >= LARGE_FILE || doneBytes > 0) {
            String resume = doneBytes > 0 ? ", resuming at " + bytes(doneBytes) : "";
            out.println(label + ": " + (totalBytes >= 0 ? bytes(totalBytes) : "size unknown") + resume);
            out.flush();
        }
    }

    @Override
    public void advance(long doneBytes) {
        this.doneBytes = doneBytes;
        long now = nanoTime.getAsLong();
        if (terminal && now - lastDrawNanos >= REDRAW_NANOS) {
            lastDrawNanos = now;
            draw();
        } else if (!terminal && now - lastDrawNanos >= LOG_EVERY_SECONDS * 1_000_000_000L) {
            lastDrawNanos = now;
            out.println(statusLine());
            out.flush();
        }
    }

    @Override
    public void end() {
        if (label == null) return;
        double seconds = Math.max(1e-9, (nanoTime.getAsLong() - startNanos) / 1e9);
        String line = String.format(Locale.ROOT, "%s: %s in %.1f s (%s/s)", label, bytes(doneBytes), seconds,
                bytes((long) ((doneBytes - startBytes) / seconds)));
        clearLine();
        out.println(line);
        out.flush();
        label = null;
    }

    /** The line a terminal shows now, e.g. {@code model.safetensors  12.0 MiB / 86.7 MiB  14%  5.1 MiB/s  ETA 15s}. */
    String statusLine() {
        double seconds = (nanoTime.getAsLong() - startNanos) / 1e9;
        double rate = seconds > 0 ? (doneBytes - startBytes) / seconds : 0;
        StringBuilder line = new StringBuilder(label).append("  ").append(bytes(doneBytes));
        if (totalBytes >= 0) {
            line.append(" / ").append(bytes(totalBytes));
            line.append(String.format(Locale.ROOT, "  %3d%%", totalBytes == 0 ? 100 : doneBytes * 100 / totalBytes));
        }
        line.append("  ").append(bytes((long) rate)).append("/s");
        if (totalBytes >= 0 && rate > 0) line.append("  ETA ").append(duration((totalBytes - doneBytes) / rate));
        return line.toString();
    }

    private void draw() {
        String line = statusLine();
        int pad = Math.max(0, lastWidth - line.length());
        out.print("\r" + line + " ".repeat(pad));
        out.flush();
        lastWidth = line.length();
    }

    private void clearLine() {
        if (terminal && lastWidth > 0) {
            out.print("\r" + " ".repeat(lastWidth) + "\r");
            lastWidth = 0;
        }
    }

    static String bytes(long n) {
        if (n < 1024) return n + " B";
        double v = n;
        String[] units = {"KiB", "MiB", "GiB", "TiB"};
        int u = -1;
        while (v >= 1024 && u < units.length - 1) { v /= 1024; u++; }
        return String.format(Locale.ROOT, "%.1f %s", v, units[u]);
    }

    static String duration(double seconds) {
        long s = Math.round(seconds);
        if (s < 60) return s + "s";
        if (s < 3600) return (s / 60) + "m" + String.format(Locale.ROOT, "%02ds", s % 60);
        return (s / 3600) + "h" + String.format(Locale.ROOT, "%02dm", (s % 3600) / 60);
    }
}
