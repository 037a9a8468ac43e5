package xllm.model;

import java.util.Locale;

/**
 * The foreign languages X-LLM reads, in the order the paper's prompt splices them (§3.1):
 * {@code <Image>…</Image><Video>…</Video><Speech>…</Speech>Question: …\n Answer:}.
 */
public enum Modality {
    IMAGE("Image", "image", "image"),
    VIDEO("Video", "video", "video"),
    SPEECH("Speech", "audio", "audio");

    private final String tag;
    private final String flag;
    private final String field;

    Modality(String tag, String flag, String field) {
        this.tag = tag;
        this.flag = flag;
        this.field = field;
    }

    /** The prompt tag: {@code Image} → {@code <Image>…</Image>}. */
    public String tag() {
        return tag;
    }

    /** The command-line option without dashes ({@code --image}, {@code --video}, {@code --audio}). */
    public String flag() {
        return flag;
    }

    /** The manifest field and placeholder word ({@code "image"} / {@code <image>}). */
    public String field() {
        return field;
    }

    /** The name in config.json and checkpoint parameter prefixes ({@code imageInterface.…}). */
    public String id() {
        return name().toLowerCase(Locale.ROOT);
    }

    /** The checkpoint parameter prefix of this modality's interface, e.g. {@code imageInterface.}. */
    public String parameterPrefix() {
        return id() + "Interface.";
    }
}
