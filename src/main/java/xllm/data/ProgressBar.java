package xllm.data;

import java.io.PrintStream;
import java.util.Locale;
import java.util.function.LongSupplier;

/**
 * Training progress on stderr:
 * {@code step 120/2000 [#-------------------] 6% loss 1.2345 lr 1.0e-04 3.2 samples/s ETA 00:09:47}.
 * On a terminal the line is redrawn in place ({@code \r}) at most {@value #REDRAW_PER_SECOND} times a second;
 * elsewhere (log files, pipes, CI) a plain line is printed at the first step, every {@code logEverySeconds} and
 * at the last step. Step time, samples per step, and therefore the rate and the ETA, are exponential moving
 * averages, so one slow step (an evaluation, a checkpoint) moves the ETA only a little. The clock and the stream
 * are injected, which is how {@code ProgressBarTest} drives it.
 */
public final class ProgressBar {

    private static final int REDRAW_PER_SECOND = 5;
    private static final int BAR_WIDTH = 20;
    /** Weight of the newest step in the moving averages (about the last 10 steps count). */
    private static final double SMOOTHING = 0.1;

    private final long totalSteps;
    private final PrintStream out;
    private final boolean terminal;
    private final LongSupplier nanoTime;
    private final long logEveryNanos;
    private final String unit;                    // what is counted: "step", "image", ...

    private long lastStep = -1;
    private long lastNanos;
    private double stepSeconds = Double.NaN;      // moving average of seconds per step
    private double samplesPerStep = Double.NaN;   // moving average of samples per step
    private long lastPrintNanos;
    private boolean printedOnce;
    private int drawnWidth;                       // length of the line on screen, to blank a shorter redraw
    private String lastLine;
    private boolean lastLinePrinted;

    /**
     * @param totalSteps      the step the run ends at
     * @param out             where the line goes
     * @param terminal        redraw one line in place, instead of printing lines
     * @param nanoTime        the clock (System::nanoTime)
     * @param logEverySeconds seconds between plain lines when not on a terminal
     */
    public ProgressBar(long totalSteps, PrintStream out, boolean terminal, LongSupplier nanoTime, double logEverySeconds) {
        this(totalSteps, "step", out, terminal, nanoTime, logEverySeconds);
    }

    /** As above, counting {@code unit}s ("image", "utterance") instead of training steps. */
    public ProgressBar(long totalSteps, String unit, PrintStream out, boolean terminal, LongSupplier nanoTime,
                       double logEverySeconds) {
        this.unit = unit;
        this.totalSteps = totalSteps;
        this.out = out;
        this.terminal = terminal;
        this.nanoTime = nanoTime;
        this.logEveryNanos = (long) (logEverySeconds * 1e9);
    }

    /** On stderr, redrawn in place when a console is attached, otherwise a line every 30 s. */
    public static ProgressBar stderr(long totalSteps) {
        return stderr(totalSteps, "step");
    }

    /** On stderr, counting {@code unit}s; update with NaN loss and learning rate to leave those fields out. */
    public static ProgressBar stderr(long totalSteps, String unit) {
        boolean terminal = System.console() != null && !"dumb".equals(System.getenv("TERM"));
        return new ProgressBar(totalSteps, unit, System.err, terminal, System::nanoTime, 30);
    }

    /** Marks where timing begins: step 0 for a new run, the checkpoint's step for a resumed one. */
    public void start(long step) {
        lastStep = step;
        lastNanos = nanoTime.getAsLong();
    }

    /**
     * Reports that {@code step} is done.
     *
     * @param samples samples processed since the previous update (batch size × accumulation × steps)
     */
    public void update(long step, double loss, double learningRate, long samples) {
        long now = nanoTime.getAsLong();
        if (lastStep < 0) start(0);
        long steps = step - lastStep;
        if (steps > 0) {
            double seconds = (now - lastNanos) / 1e9 / steps;
            double perStep = (double) samples / steps;
            stepSeconds = Double.isNaN(stepSeconds) ? seconds : stepSeconds + SMOOTHING * (seconds - stepSeconds);
            samplesPerStep = Double.isNaN(samplesPerStep) ? perStep : samplesPerStep + SMOOTHING * (perStep - samplesPerStep);
            lastStep = step;
            lastNanos = now;
        }
        lastLine = line(step, loss, learningRate);
        lastLinePrinted = false;
        boolean last = step >= totalSteps;
        if (terminal) {
            if (!printedOnce || last || now - lastPrintNanos >= 1_000_000_000L / REDRAW_PER_SECOND) draw(now);
        } else if (!printedOnce || last || now - lastPrintNanos >= logEveryNanos) {
            out.println(lastLine);
            out.flush();
            printedOnce = true;
            lastPrintNanos = now;
            lastLinePrinted = true;
        }
    }

    /** Prints a message on its own line (an evaluation result, a checkpoint path) without breaking the bar. */
    public void message(String text) {
        if (terminal && drawnWidth > 0) {
            out.print("\r" + " ".repeat(drawnWidth) + "\r");
            drawnWidth = 0;
        }
        out.println(text);
        if (terminal && lastLine != null) draw(nanoTime.getAsLong());
        out.flush();
    }

    /** Ends the bar: the terminal line is kept and closed with a newline; elsewhere the newest line is printed. */
    public void finish() {
        if (terminal) {
            if (lastLine != null && !lastLinePrinted) draw(nanoTime.getAsLong());
            if (drawnWidth > 0) out.println();
            drawnWidth = 0;
        } else if (lastLine != null && !lastLinePrinted) {
            out.println(lastLine);
            lastLinePrinted = true;
        }
        out.flush();
    }

    private void draw(long now) {
        String padding = lastLine.length() < drawnWidth ? " ".repeat(drawnWidth - lastLine.length()) : "";
        out.print("\r" + lastLine + padding);
        out.flush();
        drawnWidth = lastLine.length();
        printedOnce = true;
        lastPrintNanos = now;
        lastLinePrinted = true;
    }

    String line(long step, double loss, double learningRate) {
        double fraction = totalSteps > 0 ? Math.min(1.0, Math.max(0.0, (double) step / totalSteps)) : 0.0;
        int filled = (int) Math.floor(fraction * BAR_WIDTH);
        StringBuilder line = new StringBuilder();
        line.append(unit).append(' ').append(step).append('/').append(totalSteps)
                .append(" [").append("#".repeat(filled)).append("-".repeat(BAR_WIDTH - filled)).append("] ")
                .append((int) Math.floor(fraction * 100)).append('%');
        if (!Double.isNaN(learningRate)) { // counting work that is not a training step: no loss, no learning rate
            line.append(" loss ").append(Double.isFinite(loss) ? String.format(Locale.ROOT, "%.4f", loss) : String.valueOf(loss).toLowerCase(Locale.ROOT));
            line.append(" lr ").append(String.format(Locale.ROOT, "%.1e", learningRate));
        }
        if (!Double.isNaN(stepSeconds) && stepSeconds > 0) {
            line.append(' ').append(String.format(Locale.ROOT, "%.1f", samplesPerStep / stepSeconds)).append(unit.equals("step") ? " samples" : " " + unit + "s").append("/s");
        }
        line.append(" ETA ").append(eta(step));
        return line.toString();
    }

    private String eta(long step) {
        if (Double.isNaN(stepSeconds)) return "--:--:--";
        long seconds = Math.round(Math.max(0, totalSteps - step) * stepSeconds);
        return String.format(Locale.ROOT, "%02d:%02d:%02d", seconds / 3600, seconds / 60 % 60, seconds % 60);
    }
}
