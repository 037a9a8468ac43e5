package xllm.speech;

import java.util.List;

/**
 * Sizes of the CIF ASR model ({@link CifAsrModel}): conv2d front end + conformer encoder, CIF predictor, and a
 * non-autoregressive transformer decoder. {@link #full()} is the paper's (Appendix A.3), {@link #demo()} trains on
 * 2 CPU cores, {@link #tiny()} is for tests.
 *
 * @param melBins             input feature dims (80 log-mel bins)
 * @param frontEndChannels    channels of each conv2d (k3, s2, no padding) of the front end
 * @param frontEndLayers      how many conv2d layers (each halves time and frequency)
 * @param modelDim            d of the conformer (and width of the CIF predictor)
 * @param encoderLayers       conformer blocks
 * @param encoderHeads        attention heads of each block
 * @param encoderFfnDim       inner width of the (half-step) feed-forward modules
 * @param convKernel          depthwise convolution kernel (odd)
 * @param poolAfter           1-based block numbers followed by a time max-pooling (k2, s2)
 * @param decoderDim          width of the decoder transformer
 * @param decoderLayers       decoder blocks
 * @param decoderHeads        decoder attention heads
 * @param decoderFfnDim       decoder feed-forward inner width
 * @param decoderCrossAttention per decoder block: "none", "visual" or "linguistic" (multimodal ASR memory)
 * @param visualWidth         width of the visual memory (ViT-g: 1408)
 * @param linguisticWidth     width of the linguistic memory (BERT-base: 768)
 * @param quantityWeight      weight of the CIF quantity loss (per target token) added to the token cross-entropy
 * @param ctcWeight           weight of an auxiliary CTC loss on the encoder (a linear head to vocabulary + blank);
 *                            0 = no CTC head. It gives the encoder a direct alignment signal early in training, when
 *                            the CIF/decoder path alone learns slowly (the CIF paper trains with one as well)
 * @param tailThreshold       CIF tail threshold at inference (FunASR 0.45)
 */
public record CifAsrConfig(int melBins, int frontEndChannels, int frontEndLayers, int modelDim, int encoderLayers,
                           int encoderHeads, int encoderFfnDim, int convKernel, List<Integer> poolAfter,
                           int decoderDim, int decoderLayers, int decoderHeads, int decoderFfnDim,
                           List<String> decoderCrossAttention, int visualWidth, int linguisticWidth,
                           double quantityWeight, double ctcWeight, double tailThreshold) {

    public static final String NONE = "none", VISUAL = "visual", LINGUISTIC = "linguistic";

    public CifAsrConfig {
        poolAfter = List.copyOf(poolAfter);
        decoderCrossAttention = List.copyOf(decoderCrossAttention);
        if (modelDim % encoderHeads != 0 || decoderDim % decoderHeads != 0) {
            throw new IllegalArgumentException("widths must divide into heads: " + modelDim + "/" + encoderHeads + ", "
                    + decoderDim + "/" + decoderHeads);
        }
        if (convKernel % 2 != 1) throw new IllegalArgumentException("convKernel must be odd, got " + convKernel);
        if (frontEndLayers < 1) throw new IllegalArgumentException("frontEndLayers must be >= 1");
        if (decoderCrossAttention.size() != decoderLayers) {
            throw new IllegalArgumentException("decoderCrossAttention needs one entry per decoder block (" + decoderLayers
                    + "), got " + decoderCrossAttention);
        }
        for (String kind : decoderCrossAttention) {
            if (!List.of(NONE, VISUAL, LINGUISTIC).contains(kind)) {
                throw new IllegalArgumentException("decoderCrossAttention entries are none, visual or linguistic, got '" + kind + "'");
            }
        }
        if (!(ctcWeight >= 0) || !(quantityWeight >= 0)) throw new IllegalArgumentException("loss weights must be >= 0");
        for (int block : poolAfter) {
            if (block < 1 || block > encoderLayers) throw new IllegalArgumentException("poolAfter block " + block + " out of range");
        }
    }

    /** Paper A.3: one conv2d (256 ch, k3, s2), 18 blocks d 512 / ffn 2048 / 8 heads / kernel 31, pooling after 6 and 12. */
    public static CifAsrConfig full() {
        return new CifAsrConfig(80, 256, 1, 512, 18, 8, 2048, 31, List.of(6, 12), 512, 6, 8, 2048,
                List.of(NONE, NONE, VISUAL, VISUAL, LINGUISTIC, LINGUISTIC), 1408, 768, 1.0, 0.0, 0.45);
    }

    /**
     * 2 CPU cores: two conv2d (4× subsampling), 6 blocks d 144 / 4 heads / ffn 576 / kernel 15, 2 decoder blocks,
     * CTC weight 1.
     */
    public static CifAsrConfig demo() {
        return new CifAsrConfig(80, 64, 2, 144, 6, 4, 576, 15, List.of(), 144, 2, 4, 576,
                List.of(NONE, NONE), 1408, 768, 1.0, 1.0, 0.45);
    }

    /** Tests: d 32, 2 blocks; the second decoder block cross-attends to an 8-wide visual memory. */
    public static CifAsrConfig tiny() {
        return new CifAsrConfig(80, 8, 2, 32, 2, 2, 64, 5, List.of(), 32, 2, 2, 64,
                List.of(NONE, VISUAL), 8, 8, 1.0, 0.5, 0.45);
    }

    /** Time subsampling of the encoder: 2 per front-end conv and per pooling. */
    public int subsampling() {
        return 1 << (frontEndLayers + poolAfter.size());
    }

    public int memoryWidth(String kind) {
        return kind.equals(VISUAL) ? visualWidth : linguisticWidth;
    }
}
