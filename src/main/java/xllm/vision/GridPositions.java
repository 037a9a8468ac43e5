package xllm.vision;

/**
 * Fixed 2-D sinusoidal position embeddings for the tokens of a convolutional feature map (the scheme of DETR,
 * Carion et al. 2020, §3.2 and its {@code PositionEmbeddingSine}): the first half of the channels encodes the row
 * of a cell, the second half its column, each half as sin/cos pairs of the Transformer's frequencies
 * ω_i = 10000^(−2i/(D/2)) applied to the cell index.
 *
 * <p>Why: a ViT's patch features carry its learned position embeddings, but a CNN feature map flattened to tokens
 * does not; cross-attention over them is then permutation-invariant, and a Q-Former cannot tell where in the image
 * anything is (left/right, top/bottom, and across video frames the direction of motion). Adding positions to the
 * frozen features before the Q-Former's cross-attention fixes that.
 *
 * <p>Each channel is centred over the grid (its mean over the h·w cells is subtracted), so the many slowly varying
 * channels (the high i, where sin ≈ 0 and cos ≈ 1 on a 7×7 grid) add no constant shift to the features that the
 * Q-Former's cross-attention, trained before positions were added, would first have to unlearn.
 */
public final class GridPositions {

    private static final double TEMPERATURE = 10000.0;

    private GridPositions() {}

    /** (rows·cols, width) row-major (token t = row·cols + col), width a multiple of 4. */
    public static float[] sinusoid(int rows, int cols, int width) {
        if (rows <= 0 || cols <= 0) throw new IllegalArgumentException("grid must be positive, got " + rows + "×" + cols);
        if (width % 4 != 0) throw new IllegalArgumentException("width must be a multiple of 4, got " + width);
        int half = width / 2;
        int tokens = rows * cols;
        double[] omega = new double[half / 2];
        for (int i = 0; i < omega.length; i++) omega[i] = Math.pow(TEMPERATURE, -2.0 * i / half);
        double[] table = new double[tokens * width];
        for (int r = 0; r < rows; r++) {
            for (int c = 0; c < cols; c++) {
                int base = (r * cols + c) * width;
                for (int i = 0; i < omega.length; i++) {
                    table[base + 2 * i] = Math.sin(r * omega[i]);
                    table[base + 2 * i + 1] = Math.cos(r * omega[i]);
                    table[base + half + 2 * i] = Math.sin(c * omega[i]);
                    table[base + half + 2 * i + 1] = Math.cos(c * omega[i]);
                }
            }
        }
        float[] out = new float[tokens * width];
        for (int d = 0; d < width; d++) {
            double mean = 0;
            for (int t = 0; t < tokens; t++) mean += table[t * width + d];
            mean /= tokens;
            for (int t = 0; t < tokens; t++) out[t * width + d] = (float) (table[t * width + d] - mean);
        }
        return out;
    }
}
