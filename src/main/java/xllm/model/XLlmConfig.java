package xllm.model;

/**
 * The architecture of an X-LLM checkpoint, as {@code config.json} records it under {@code "model"}: the frozen LLM,
 * each interface it was built with (null when absent) and the prompt template. Read strictly: an unknown field is an
 * error, and {@link XLlm#load} checks every recorded field against what it rebuilds.
 *
 * @param type     always {@link #TYPE}
 * @param llm      the frozen decoder: model-store name, GGUF file or Hugging Face dir
 * @param llmWidth its embedding width D
 */
public record XLlmConfig(String type, String llm, int llmWidth, InterfaceConfig.Image image,
                         InterfaceConfig.Video video, InterfaceConfig.Speech speech, String prompt) {

    public static final String TYPE = "x-llm";

    /** The modalities the model reads, in prompt order. */
    public java.util.Set<Modality> modalities() {
        java.util.Set<Modality> out = java.util.EnumSet.noneOf(Modality.class);
        for (Modality m : Modality.values()) if (of(m) != null) out.add(m);
        return out;
    }

    /** The record of the interface of {@code modality}, or null. */
    public InterfaceConfig of(Modality modality) {
        return switch (modality) {
            case IMAGE -> image;
            case VIDEO -> video;
            case SPEECH -> speech;
        };
    }
}
