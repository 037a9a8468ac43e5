package xllm.train;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import javax.imageio.ImageIO;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

/** The loss-curve PNG: valid, of the expected size, with the curves drawn; headless; empty logs still draw. */
class LossCurvePlotTest {

    @Test
    void drawsLossEvalLossAndLearningRate(@TempDir Path runDir) throws IOException {
        Path metrics = MetricsLog.in(runDir);
        try (MetricsLog log = MetricsLog.start(metrics)) {
            for (long step = 1; step <= 200; step++) {
                Map<String, Object> values = new LinkedHashMap<>();
                values.put("loss", 3 * Math.exp(-step / 50.0) + 0.2 * Math.sin(step)); // noisy decay
                values.put("lr", 1e-4 * Math.min(1, step / 20.0));                      // warm-up then flat
                log.log(step, values);
                if (step % 50 == 0) log.log(step, Map.of("eval_loss", 3 * Math.exp(-step / 50.0) + 0.1));
            }
            log.log(201, Map.of("loss", Double.NaN, "lr", 1e-4)); // a diverged step breaks the line, no crash
        }
        Path png = runDir.resolve("loss.png");
        LossCurvePlot.write(metrics, png);

        byte[] header = Arrays.copyOf(Files.readAllBytes(png), 8);
        assertArrayEquals(new byte[] {(byte) 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'}, header);
        BufferedImage image = ImageIO.read(png.toFile());
        assertNotNull(image);
        assertEquals(LossCurvePlot.WIDTH, image.getWidth());
        assertEquals(LossCurvePlot.HEIGHT, image.getHeight());
        assertTrue(variance(image) > 100, "image looks blank");
        assertTrue(countColor(image, 31, 119, 180) > 200, "train loss curve missing");
        assertTrue(countColor(image, 255, 127, 14) > 20, "eval loss markers missing");
        assertTrue(countColor(image, 44, 160, 44) > 200, "learning rate curve missing");
        assertTrue(Boolean.parseBoolean(System.getProperty("java.awt.headless")));
    }

    @Test
    void anEmptyLogStillGivesAPicture(@TempDir Path runDir) throws IOException {
        Path metrics = MetricsLog.in(runDir);
        MetricsLog.start(metrics).close();
        Path png = runDir.resolve("plots/loss.png");
        LossCurvePlot.write(metrics, png, 400, 300);
        BufferedImage image = ImageIO.read(png.toFile());
        assertEquals(400, image.getWidth());
        assertEquals(300, image.getHeight());
        assertTrue(variance(image) > 10); // axes and the "nothing yet" notes
    }

    /** Variance of the grey level over all pixels. */
    private static double variance(BufferedImage image) {
        double sum = 0, sumSquares = 0;
        long n = (long) image.getWidth() * image.getHeight();
        for (int y = 0; y < image.getHeight(); y++) {
            for (int x = 0; x < image.getWidth(); x++) {
                int rgb = image.getRGB(x, y);
                double grey = (((rgb >> 16) & 0xff) + ((rgb >> 8) & 0xff) + (rgb & 0xff)) / 3.0;
                sum += grey;
                sumSquares += grey * grey;
            }
        }
        double mean = sum / n;
        return sumSquares / n - mean * mean;
    }

    private static int countColor(BufferedImage image, int r, int g, int b) {
        int count = 0;
        for (int y = 0; y < image.getHeight(); y++) {
            for (int x = 0; x < image.getWidth(); x++) {
                int rgb = image.getRGB(x, y);
                if (Math.abs(((rgb >> 16) & 0xff) - r) < 8 && Math.abs(((rgb >> 8) & 0xff) - g) < 8 && Math.abs((rgb & 0xff) - b) < 8) count++;
            }
        }
        return count;
    }
}
