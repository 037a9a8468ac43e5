package xllm.vision;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The CNN tokens' 2-D positions: rows in the first half of the channels, columns in the second, centred, distinct. */
class GridPositionsTest {

    private static final int ROWS = 7, COLS = 7, WIDTH = 1280;

    private static float[] token(float[] table, int row, int col) {
        float[] out = new float[WIDTH];
        System.arraycopy(table, (row * COLS + col) * WIDTH, out, 0, WIDTH);
        return out;
    }

    @Test
    void rowsLiveInTheFirstHalfAndColumnsInTheSecond() {
        float[] table = GridPositions.sinusoid(ROWS, COLS, WIDTH);
        assertEquals(ROWS * COLS * WIDTH, table.length);
        for (int r = 0; r < ROWS; r++) {
            for (int c = 1; c < COLS; c++) {
                float[] a = token(table, r, 0), b = token(table, r, c);
                for (int d = 0; d < WIDTH / 2; d++) assertEquals(a[d], b[d], 0f, "same row " + r + ", channel " + d);
            }
        }
        for (int c = 0; c < COLS; c++) {
            for (int r = 1; r < ROWS; r++) {
                float[] a = token(table, 0, c), b = token(table, r, c);
                for (int d = WIDTH / 2; d < WIDTH; d++) assertEquals(a[d], b[d], 0f, "same column " + c + ", channel " + d);
            }
        }
        // before centring, channel 0 is sin(row) and channel 1 cos(row) (ω_0 = 1): differences survive centring
        float[] top = token(table, 0, 0), third = token(table, 3, 0);
        assertEquals(Math.sin(3), third[0] - top[0], 1e-6);
        assertEquals(Math.cos(3) - 1, third[1] - top[1], 1e-6);
        float[] left = token(table, 0, 0), right = token(table, 0, 6);
        assertEquals(Math.sin(6), right[WIDTH / 2] - left[WIDTH / 2], 1e-6);
    }

    @Test
    void everyChannelIsCentredAndEveryCellIsDistinct() {
        float[] table = GridPositions.sinusoid(ROWS, COLS, WIDTH);
        for (int d = 0; d < WIDTH; d++) {
            double mean = 0;
            for (int t = 0; t < ROWS * COLS; t++) mean += table[t * WIDTH + d];
            assertEquals(0, mean / (ROWS * COLS), 1e-6, "channel " + d);
        }
        double closest = Double.MAX_VALUE;
        for (int a = 0; a < ROWS * COLS; a++) {
            for (int b = a + 1; b < ROWS * COLS; b++) {
                double distance = 0;
                for (int d = 0; d < WIDTH; d++) {
                    double diff = table[a * WIDTH + d] - table[b * WIDTH + d];
                    distance += diff * diff;
                }
                closest = Math.min(closest, Math.sqrt(distance));
            }
        }
        assertTrue(closest > 0.5, "the nearest two cells are " + closest + " apart");
    }

    @Test
    void aWidthThatDoesNotSplitIntoSinCosPairsPerAxisIsRefused() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> GridPositions.sinusoid(7, 7, 1282));
        assertTrue(e.getMessage().contains("multiple of 4"), e.getMessage());
    }
}
