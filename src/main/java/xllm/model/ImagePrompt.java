package xllm.model;

import xllm.llm.Tokenizer;

/**
 * The paper's prompt template around one image, {@code <Image>{image}</Image>Question: {question}\n Answer:}, as
 * token ids before and after the image vectors (for a video: {@code <Video>{video}</Video>...}, DESIGN.md §1). Training ({@link ImageInstructionTask}) and inference
 * ({@link MediaChat}) both build their prompts here, so they cannot drift apart.
 */
final class ImagePrompt {

    private final Tokenizer tokenizer;
    private final long[] beforeImage; // "<Image>"
    private final long[] imageClose;  // "</Image>"

    ImagePrompt(Tokenizer tokenizer) {
        this(tokenizer, "Image");
    }

    /** {@code tag} "Image" or "Video": the segment's opening and closing tags. */
    ImagePrompt(Tokenizer tokenizer, String tag) {
        this.tokenizer = tokenizer;
        this.beforeImage = tokenizer.encode("<" + tag + ">");
        this.imageClose = tokenizer.encode("</" + tag + ">");
    }

    long[] beforeImage() {
        return beforeImage;
    }

    /** "</Image>Question: {question}\n Answer:" */
    long[] afterImage(String question) {
        return concat(imageClose, tokenizer.encode("Question: " + question + "\n Answer:"));
    }

    static long[] concat(long[] a, long[] b) {
        long[] out = new long[a.length + b.length];
        System.arraycopy(a, 0, out, 0, a.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }
}
