package xllm.data;

import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.atomic.AtomicLong;

import static org.junit.jupiter.api.Assertions.*;

/** The progress line, its ETA from smoothed step times, redraws on a terminal and timed lines elsewhere. */
class ProgressBarTest {

    private static final long SECOND = 1_000_000_000L;

    private final AtomicLong clock = new AtomicLong(0);
    private final ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    private final PrintStream out = new PrintStream(bytes, true, StandardCharsets.UTF_8);

    private String output() {
        return bytes.toString(StandardCharsets.UTF_8);
    }

    @Test
    void lineShowsStepBarLossRateAndEta() {
        ProgressBar bar = new ProgressBar(2000, out, false, clock::get, 30);
        bar.start(0);
        clock.addAndGet(120 * SECOND / 4); // 120 steps of 0.25 s, 8 samples each → 32 samples/s
        bar.update(120, 1.23454, 1e-4, 120 * 8);
        // 1880 steps left × 0.25 s = 470 s
        assertEquals("step 120/2000 [#-------------------] 6% loss 1.2345 lr 1.0e-04 32.0 samples/s ETA 00:07:50\n", output());
    }

    @Test
    void countingOtherWorkShowsItsUnitAndNoLossOrLearningRate() {
        ProgressBar bar = new ProgressBar(100, "image", out, false, clock::get, 30);
        bar.start(0);
        clock.addAndGet(2 * SECOND); // 16 images in 2 s
        bar.update(16, Double.NaN, Double.NaN, 16);
        assertEquals("image 16/100 [###-----------------] 16% 8.0 images/s ETA 00:00:11\n", output()); // 84 / 8 per s
    }

    @Test
    void etaFollowsAMovingAverageSoOneSlowStepMovesItLittle() {
        ProgressBar bar = new ProgressBar(1000, out, false, clock::get, 0);
        bar.start(0);
        for (int step = 1; step <= 100; step++) {
            clock.addAndGet(SECOND);
            bar.update(step, 1, 1e-3, 4);
        }
        assertTrue(output().endsWith("ETA 00:15:00\n"), output()); // 900 steps × 1 s
        clock.addAndGet(60 * SECOND); // one step that also ran an evaluation
        bar.update(101, 1, 1e-3, 4);
        String last = output().lines().reduce((a, b) -> b).orElseThrow();
        // smoothing 0.1: the step time estimate becomes 1 + 0.1 × 59 = 6.9 s, not 60 s
        assertTrue(last.endsWith("ETA 01:43:23"), last); // 899 × 6.9 s = 6203 s
        assertTrue(last.contains(" 0.6 samples/s "), last);
    }

    @Test
    void plainLinesComeEveryIntervalAndAtTheEnd() {
        ProgressBar bar = new ProgressBar(100, out, false, clock::get, 10);
        bar.start(0);
        for (int step = 1; step <= 100; step++) {
            clock.addAndGet(SECOND / 2);
            bar.update(step, 0.5, 1e-3, 1);
        }
        bar.finish();
        // the first step, then one line per 10 s (20 steps of 0.5 s: 21, 41, 61, 81), and the last step
        assertEquals(6, output().lines().count(), output());
        assertTrue(output().lines().allMatch(line -> line.startsWith("step ")));
        assertTrue(output().endsWith("step 100/100 [####################] 100% loss 0.5000 lr 1.0e-03 2.0 samples/s ETA 00:00:00\n"), output());
        assertFalse(output().contains("\r"));
    }

    @Test
    void terminalRedrawsOneLineInPlaceAndKeepsMessagesAbove() {
        ProgressBar bar = new ProgressBar(10, out, true, clock::get, 30);
        bar.start(0);
        clock.addAndGet(SECOND);
        bar.update(1, Double.NaN, 1e-3, 1);
        String first = "step 1/10 [##------------------] 10% loss nan lr 1.0e-03 1.0 samples/s ETA 00:00:09";
        assertEquals("\r" + first, output());
        clock.addAndGet(SECOND / 100);
        bar.update(2, 2.0, 1e-3, 1); // 10 ms later: not redrawn (at most 5 redraws per second)
        assertEquals(1, output().chars().filter(c -> c == '\r').count());
        bar.message("eval loss 1.9");
        assertTrue(output().contains("\r" + " ".repeat(first.length()) + "\reval loss 1.9\n\rstep 2/10"), output());
        for (int step = 3; step <= 10; step++) {
            clock.addAndGet(SECOND);
            bar.update(step, 2.0, 1e-3, 1);
        }
        bar.finish();
        assertTrue(output().endsWith("step 10/10 [####################] 100% loss 2.0000 lr 1.0e-03 1.0 samples/s ETA 00:00:00\n"), output());
        assertFalse(output().contains("\n\n"));
    }

    @Test
    void beforeAnyTimingTheEtaIsUnknown() {
        ProgressBar bar = new ProgressBar(10, out, false, clock::get, 30);
        assertEquals("step 0/10 [--------------------] 0% loss 3.0000 lr 0.0e+00 ETA --:--:--", bar.line(0, 3.0, 0.0));
    }
}
