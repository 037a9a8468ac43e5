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
        if (java.nio.file.Files.isRegularFile(path) && path.getFileName().toString().endsWith(".gguf")) {
            // one parse of the GGUF header (tens of thousands of vocabulary and merge strings) for both parts
            try (xllm.tensor.gguf.GgufFile gguf = xllm.tensor.gguf.GgufFile.open(path)) {
                Tokenizer tokenizer = Tokenizer.fromGguf(gguf);
                return withTokenizer(path, tokenizer, () -> LlamaLoader.loadGguf(gguf, manager));
            }
        }
        return withTokenizer(path, Tokenizer.load(path), () -> LlamaLoader.load(path, manager));
    }

    private interface ModelLoader {
        LlamaModel load() throws IOException;
    }

    private static LanguageModel withTokenizer(Path path, Tokenizer tokenizer, ModelLoader loader) throws IOException {
        try {
            return new LanguageModel(path, loader.load(), tokenizer);
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
