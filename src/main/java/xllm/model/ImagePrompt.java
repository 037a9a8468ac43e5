package xllm.model;

import xllm.llm.Tokenizer;

/**
 * The paper's prompt template around one image, {@code <Image>{image}</Image>Question: {question}\n Answer:}, as
 * token ids before and after the image vectors. Training ({@link ImageInstructionTask}) and inference
 * ({@link ImageChat}) both build their prompts here, so they cannot drift apart.
 */
final class ImagePrompt {

    private final Tokenizer tokenizer;
    private final long[] beforeImage; // "<Image>"
    private final long[] imageClose;  // "</Image>"

    ImagePrompt(Tokenizer tokenizer) {
        this.tokenizer = tokenizer;
        this.beforeImage = tokenizer.encode("<Image>");
        this.imageClose = tokenizer.encode("</Image>");
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
