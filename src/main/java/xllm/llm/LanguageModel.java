package xllm.llm;

import ai.djl.ndarray.NDManager;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;

/**
 * A loaded decoder LLM with everything needed to talk to it: weights, tokenizer, chat template and generator.
 * Opened from a GGUF file or a Hugging Face directory.
 */
public final class LanguageModel implements AutoCloseable {

    private final Path source;
    private final LlamaModel model;
    private final Tokenizer tokenizer;
    private final ChatTemplate chatTemplate;
    private final Generator generator;

    private LanguageModel(Path source, LlamaModel model, Tokenizer tokenizer) {
        this.source = source;
        this.model = model;
        this.tokenizer = tokenizer;
        this.chatTemplate = ChatTemplate.of(tokenizer);
        this.generator = new Generator(model, tokenizer);
    }

    public static LanguageModel open(Path path, NDManager manager) throws IOException {
        Tokenizer tokenizer = Tokenizer.load(path);
        try {
            LlamaModel model = LlamaLoader.load(path, manager);
            if (model.config().vocabSize() < 1) throw new IOException(path + ": empty vocabulary");
            return new LanguageModel(path, model, tokenizer);
        } catch (IOException | RuntimeException e) {
            tokenizer.close();
            throw e;
        }
    }

    public Path source() {
        return source;
    }

    public LlamaModel model() {
        return model;
    }

    public Tokenizer tokenizer() {
        return tokenizer;
    }

    public ChatTemplate chatTemplate() {
        return chatTemplate;
    }

    public Generator generator() {
        return generator;
    }

    /** Prompt ids for a conversation, rendered with the checkpoint's chat template and a generation prompt. */
    public long[] chatPrompt(List<ChatTemplate.Message> messages) {
        return tokenizer.encode(chatTemplate.render(messages, true));
    }

    /** Prompt ids for raw text (BOS prepended when the model asks for it). */
    public long[] textPrompt(String text) {
        long[] ids = tokenizer.encode(text);
        if (!tokenizer.addsBos() || tokenizer.bosToken() == null) return ids;
        long bos = tokenizer.specialTokenId(tokenizer.bosToken()).orElseThrow();
        long[] withBos = new long[ids.length + 1];
        withBos[0] = bos;
        System.arraycopy(ids, 0, withBos, 1, ids.length);
        return withBos;
    }

    @Override
    public void close() {
        model.close();
        tokenizer.close();
    }
}
