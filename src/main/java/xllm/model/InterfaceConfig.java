package xllm.model;

import xllm.x2l.BertEncoder;
import xllm.x2l.QFormerConfig;

import java.util.List;

/**
 * The architecture of one interface as config.json records it. {@link XLlm#load} rebuilds each interface from its
 * record, derives the record again from what it built (encoder identity with the weights' SHA-256, feature shape,
 * widths) and refuses a checkpoint whose recorded field differs, naming the field.
 */
public sealed interface InterfaceConfig permits InterfaceConfig.Image, InterfaceConfig.Video, InterfaceConfig.Speech {

    /** Width D of the LLM embeddings the interface produces. */
    int llmWidth();

    /**
     * A frozen vision encoder.
     *
     * @param source       model-store name or path ({@code efficientnet-lite0}, a CLIP dir, {@code random})
     * @param identity     the weights and feature choices ({@code VisionEncoder#identity}), with their SHA-256
     * @param featureShape (N, C) features per image
     * @param positions    whether fixed 2-D sinusoidal positions are added to the features before the Q-Former
     */
    record VisionEncoderRecord(String source, String identity, List<Long> featureShape, boolean positions) {}

    /** Encoder → Q-Former (null: none, the adapter reads the features) → I-Adapter. */
    record Image(VisionEncoderRecord encoder, QFormerConfig qformer, int llmWidth) implements InterfaceConfig {}

    /** Encoder and Q-Former per frame, {@code frames} frames sampled uniformly, → V-Adapter (T × Q tokens). */
    record Video(VisionEncoderRecord encoder, int frames, QFormerConfig qformer, int llmWidth) implements InterfaceConfig {}

    /**
     * Frozen CIF ASR encoder + CIF → C-Former → S-Adapter.
     *
     * @param source     the convert-asr checkpoint dir
     * @param identity   its weights' SHA-256
     * @param tokenWidth width d of the fired CIF tokens
     * @param cformer    the C-Former transformer's shape
     */
    record Speech(String source, String identity, int tokenWidth, BertEncoder.Config cformer, int llmWidth)
            implements InterfaceConfig {}
}
