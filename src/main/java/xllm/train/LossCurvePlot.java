package xllm.train;

import javax.imageio.ImageIO;
import java.awt.BasicStroke;
import java.awt.Color;
import java.awt.Font;
import java.awt.Graphics2D;
import java.awt.RenderingHints;
import java.awt.geom.Ellipse2D;
import java.awt.geom.Path2D;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Draws a run's {@code metrics.jsonl} as a PNG: training loss (raw, and an exponential moving average once
 * there are enough points) and {@code eval_loss} against step in the upper panel, the learning rate {@code lr}
 * against step in the lower one. Plain Java 2D on an off-screen image, so it runs headless (servers, CI) and
 * needs no plotting library. The file is replaced atomically, so a viewer never sees half a PNG while a run
 * redraws it. Tested in {@code LossCurvePlotTest}.
 */
public final class LossCurvePlot {

    public static final int WIDTH = 1000;
    public static final int HEIGHT = 700;

    private static final Color TRAIN_RAW = new Color(31, 119, 180, 90);
    private static final Color TRAIN = new Color(31, 119, 180);
    private static final Color EVAL = new Color(255, 127, 14);
    private static final Color LEARNING_RATE = new Color(44, 160, 44);
    private static final Color GRID = new Color(225, 225, 225);
    /** Weight of history in the smoothed training curve, as TensorBoard's smoothing slider. */
    private static final double SMOOTHING = 0.9;
    private static final int MARGIN_LEFT = 90, MARGIN_RIGHT = 30, MARGIN_TOP = 40, MARGIN_BOTTOM = 50, PANEL_GAP = 70;

    static {
        if (System.getProperty("java.awt.headless") == null) System.setProperty("java.awt.headless", "true");
    }

    private LossCurvePlot() {}

    /** One curve: x = step, y = value, in file order. */
    private record Series(List<double[]> points) {
        static Series of(List<Map<String, Object>> records, String key) {
            List<double[]> points = new ArrayList<>();
            for (Map<String, Object> r : records) {
                double step = number(r.get("step"));
                double value = number(r.get(key));
                if (!Double.isNaN(step) && r.containsKey(key)) points.add(new double[] {step, value});
            }
            return new Series(points);
        }

        Series smoothed() {
            List<double[]> out = new ArrayList<>();
            double average = Double.NaN;
            for (double[] p : points) {
                if (!Double.isFinite(p[1])) continue;
                average = Double.isNaN(average) ? p[1] : SMOOTHING * average + (1 - SMOOTHING) * p[1];
                out.add(new double[] {p[0], average});
            }
            return new Series(out);
        }
    }

    /** Value range of one axis, widened to nice tick marks. */
    private record Axis(double min, double max, double tick) {
        static Axis of(double lo, double hi, boolean headroom) {
            if (!(hi > lo)) {
                double pad = lo == 0 ? 1 : Math.abs(lo) * 0.1;
                lo -= pad;
                hi += pad;
            }
            if (headroom) hi += (hi - lo) * 0.03; // a flat curve at the maximum must not hide in the frame
            double tick = niceStep((hi - lo) / 5);
            return new Axis(Math.floor(lo / tick) * tick, Math.ceil(hi / tick) * tick, tick);
        }

        private static double niceStep(double rough) {
            double magnitude = Math.pow(10, Math.floor(Math.log10(rough)));
            double fraction = rough / magnitude;
            return (fraction <= 1 ? 1 : fraction <= 2 ? 2 : fraction <= 5 ? 5 : 10) * magnitude;
        }
    }

    /** Writes a {@value #WIDTH}×{@value #HEIGHT} PNG of the metrics file. */
    public static void write(Path metricsJsonl, Path png) throws IOException {
        write(metricsJsonl, png, WIDTH, HEIGHT);
    }

    public static void write(Path metricsJsonl, Path png, int width, int height) throws IOException {
        List<Map<String, Object>> records = MetricsLog.read(metricsJsonl);
        BufferedImage image = render(records, width, height, metricsJsonl.getFileName().toString());
        Path parent = png.toAbsolutePath().getParent();
        Files.createDirectories(parent);
        Path temp = Files.createTempFile(parent, "." + png.getFileName() + ".", ".tmp");
        try {
            if (!ImageIO.write(image, "png", temp.toFile())) throw new IOException("no PNG writer in this JVM");
            Files.move(temp, png, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        } finally {
            Files.deleteIfExists(temp);
        }
    }

    static BufferedImage render(List<Map<String, Object>> records, int width, int height, String title) {
        Series train = Series.of(records, "loss");
        Series eval = Series.of(records, "eval_loss");
        Series learningRate = Series.of(records, "lr");

        BufferedImage image = new BufferedImage(width, height, BufferedImage.TYPE_INT_RGB);
        Graphics2D g = image.createGraphics();
        try {
            g.setRenderingHint(RenderingHints.KEY_ANTIALIASING, RenderingHints.VALUE_ANTIALIAS_ON);
            g.setRenderingHint(RenderingHints.KEY_TEXT_ANTIALIASING, RenderingHints.VALUE_TEXT_ANTIALIAS_ON);
            g.setColor(Color.WHITE);
            g.fillRect(0, 0, width, height);
            g.setFont(new Font(Font.SANS_SERIF, Font.PLAIN, 12));

            // step 1: a shared step axis, so the panels line up
            double[] steps = range(List.of(train, eval, learningRate), 0);
            Axis x = Axis.of(steps[0], steps[1], false);

            // step 2: the panels — loss takes 60 % of the height, the learning rate the rest
            int plotHeight = height - MARGIN_TOP - MARGIN_BOTTOM - PANEL_GAP;
            int lossHeight = (int) (plotHeight * 0.6);
            Panel loss = new Panel(MARGIN_LEFT, MARGIN_TOP, width - MARGIN_LEFT - MARGIN_RIGHT, lossHeight);
            Panel lr = new Panel(MARGIN_LEFT, MARGIN_TOP + lossHeight + PANEL_GAP, loss.width, plotHeight - lossHeight);

            double[] lossRange = range(List.of(train, eval), 1);
            loss.draw(g, x, Axis.of(lossRange[0], lossRange[1], true), "step", "loss", title + " — loss", false);
            if (train.points.size() >= 20) {
                loss.curve(g, train, TRAIN_RAW, 1f);
                loss.curve(g, train.smoothed(), TRAIN, 2f);
            } else {
                loss.curve(g, train, TRAIN, 2f);
            }
            loss.curve(g, eval, EVAL, 2f);
            loss.markers(g, eval, EVAL);
            List<String> legend = new ArrayList<>();
            List<Color> colors = new ArrayList<>();
            if (!train.points.isEmpty()) { legend.add("train loss"); colors.add(TRAIN); }
            if (!eval.points.isEmpty()) { legend.add("eval loss"); colors.add(EVAL); }
            loss.legend(g, legend, colors);
            if (train.points.isEmpty() && eval.points.isEmpty()) loss.note(g, "no loss recorded yet");

            double[] lrRange = range(List.of(learningRate), 1);
            lr.draw(g, x, Axis.of(Math.min(0, lrRange[0]), lrRange[1], true), "step", "lr", "learning rate", true);
            lr.curve(g, learningRate, LEARNING_RATE, 2f);
            if (learningRate.points.isEmpty()) lr.note(g, "no learning rate recorded");
        } finally {
            g.dispose();
        }
        return image;
    }

    /** Finite min and max of coordinate {@code index} over the series; [0, 1] when there is nothing. */
    private static double[] range(List<Series> series, int index) {
        double lo = Double.POSITIVE_INFINITY, hi = Double.NEGATIVE_INFINITY;
        for (Series s : series) {
            for (double[] p : s.points) {
                if (!Double.isFinite(p[index])) continue;
                lo = Math.min(lo, p[index]);
                hi = Math.max(hi, p[index]);
            }
        }
        return lo > hi ? new double[] {0, 1} : new double[] {lo, hi};
    }

    private static double number(Object value) {
        if (value instanceof Number n) return n.doubleValue();
        if (value instanceof String s) {
            try {
                return Double.parseDouble(s); // "NaN", "Infinity" as some writers quote them
            } catch (NumberFormatException e) {
                return Double.NaN;
            }
        }
        return Double.NaN;
    }

    /** One plotting area in pixels, with the axes it was last drawn with. */
    private static final class Panel {
        final int left, top, width, height;
        Axis x, y;

        Panel(int left, int top, int width, int height) {
            this.left = left;
            this.top = top;
            this.width = width;
            this.height = height;
        }

        double px(double step) { return left + (step - x.min) / (x.max - x.min) * width; }

        double py(double value) { return top + height - (value - y.min) / (y.max - y.min) * height; }

        void draw(Graphics2D g, Axis x, Axis y, String xLabel, String yLabel, String title, boolean scientific) {
            this.x = x;
            this.y = y;
            g.setStroke(new BasicStroke(1f));
            for (double v = x.min; v <= x.max + x.tick / 2; v += x.tick) {
                int p = (int) Math.round(px(v));
                g.setColor(GRID);
                g.drawLine(p, top, p, top + height);
                g.setColor(Color.DARK_GRAY);
                centered(g, label(v, x.tick, false), p, top + height + 16);
            }
            for (double v = y.min; v <= y.max + y.tick / 2; v += y.tick) {
                int p = (int) Math.round(py(v));
                g.setColor(GRID);
                g.drawLine(left, p, left + width, p);
                g.setColor(Color.DARK_GRAY);
                String text = label(v, y.tick, scientific);
                text(g, text, left - 8 - g.getFontMetrics().stringWidth(text), p + 4);
            }
            g.setColor(Color.BLACK);
            g.drawRect(left, top, width, height);
            centered(g, xLabel, left + width / 2, top + height + 34);
            text(g, yLabel, 8, top + height / 2);
            Font font = g.getFont();
            g.setFont(font.deriveFont(Font.BOLD, 14f));
            centered(g, title, left + width / 2, top - 12);
            g.setFont(font);
        }

        void curve(Graphics2D g, Series s, Color color, float stroke) {
            Path2D.Double path = new Path2D.Double();
            boolean open = false;
            for (double[] p : s.points) {
                if (!Double.isFinite(p[1])) { open = false; continue; } // a diverged value breaks the line
                if (open) path.lineTo(px(p[0]), py(p[1])); else path.moveTo(px(p[0]), py(p[1]));
                open = true;
            }
            g.setColor(color);
            g.setStroke(new BasicStroke(stroke, BasicStroke.CAP_ROUND, BasicStroke.JOIN_ROUND));
            g.setClip(left, top, width + 1, height + 1);
            g.draw(path);
            g.setClip(null);
        }

        void markers(Graphics2D g, Series s, Color color) {
            g.setColor(color);
            for (double[] p : s.points) {
                if (Double.isFinite(p[1])) g.fill(new Ellipse2D.Double(px(p[0]) - 3.5, py(p[1]) - 3.5, 7, 7));
            }
        }

        void legend(Graphics2D g, List<String> names, List<Color> colors) {
            int yPos = top + 18;
            for (int i = 0; i < names.size(); i++) {
                int xPos = left + width - 120;
                g.setColor(colors.get(i));
                g.fillRect(xPos, yPos - 9, 18, 4);
                g.setColor(Color.BLACK);
                text(g, names.get(i), xPos + 24, yPos - 3);
                yPos += 18;
            }
        }

        void note(Graphics2D g, String text) {
            g.setColor(Color.GRAY);
            centered(g, text, left + width / 2, top + height / 2);
        }

        private static String label(double v, double tick, boolean scientific) {
            if (Math.abs(v) < tick * 1e-6) v = 0; // -0.0 and rounding residue from repeated addition
            if (v == 0) return "0";
            if (scientific) return String.format(Locale.ROOT, "%.1e", v);
            int decimals = Math.max(0, (int) -Math.floor(Math.log10(tick)));
            return String.format(Locale.ROOT, "%." + decimals + "f", v);
        }

        private static void centered(Graphics2D g, String s, int centerX, int baseline) {
            text(g, s, centerX - g.getFontMetrics().stringWidth(s) / 2, baseline);
        }

        private static void text(Graphics2D g, String s, int xPos, int baseline) {
            g.drawString(s, xPos, baseline);
        }
    }
}
