package xllm.llm;

import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import xllm.tensor.gguf.GgufFile;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * Text ↔ token ids, run by the Hugging Face {@code tokenizers} library (Rust, bundled by DJL) so ids are those of
 * the reference by construction. A Hugging Face directory supplies {@code tokenizer.json} (+ chat template and
 * special tokens from {@code tokenizer_config.json}); a GGUF file supplies vocabulary, merges, token types and
 * pre-tokenizer name, from which the equivalent {@code tokenizer.json} is rebuilt. Tested in {@code TokenizerTest}
 * against HF's ids on a 200-line mixed-script corpus.
 */
public final class Tokenizer implements AutoCloseable {

    private static final ObjectMapper JSON = new ObjectMapper();

    /** Split regexes of the Llama-3 and Qwen2 pre-tokenisers (from their tokenizer.json files). */
    private static final String LLAMA3_SPLIT =
            "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
    private static final String QWEN2_SPLIT =
            "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

    private final HuggingFaceTokenizer tokenizer;
    private final Map<String, Long> specialIds;
    private final String chatTemplate;  // Jinja source, or null
    private final String bosToken;      // or null
    private final String eosToken;      // or null
    private final boolean addBos;

    private Tokenizer(HuggingFaceTokenizer tokenizer, Map<String, Long> specialIds, String chatTemplate,
                      String bosToken, String eosToken, boolean addBos) {
        this.tokenizer = tokenizer;
        this.specialIds = specialIds;
        this.chatTemplate = chatTemplate;
        this.bosToken = bosToken;
        this.eosToken = eosToken;
        this.addBos = addBos;
    }

    private static Map<String, String> options() {
        Map<String, String> options = new HashMap<>();
        options.put("addSpecialTokens", "false");
        options.put("truncation", "false");
        options.put("padding", "false");
        options.put("modelMaxLength", String.valueOf(Integer.MAX_VALUE));
        return options;
    }

    /** From a GGUF file or a Hugging Face directory (or a file inside one). */
    public static Tokenizer load(Path path) throws IOException {
        if (Files.isRegularFile(path) && path.getFileName().toString().endsWith(".gguf")) {
            try (GgufFile gguf = GgufFile.open(path)) {
                return fromGguf(gguf);
            }
        }
        Path dir = Files.isDirectory(path) ? path : path.getParent();
        Path json = dir.resolve("tokenizer.json");
        if (!Files.exists(json)) throw new IOException(dir + ": no tokenizer.json");
        JsonNode tokenizerJson = readJson(json);
        Map<String, Long> special = new HashMap<>();
        for (JsonNode t : tokenizerJson.path("added_tokens")) special.put(t.path("content").asText(), t.path("id").asLong());
        String template = null, bos = null, eos = null;
        boolean addBos = false;
        Path configFile = dir.resolve("tokenizer_config.json");
        if (Files.exists(configFile)) {
            JsonNode config = readJson(configFile);
            if (config.path("chat_template").isTextual()) template = config.path("chat_template").asText();
            bos = tokenText(config.get("bos_token"));
            eos = tokenText(config.get("eos_token"));
            addBos = config.path("add_bos_token").asBoolean(false);
        }
        try (var in = Files.newInputStream(json)) {
            return new Tokenizer(HuggingFaceTokenizer.newInstance(in, options()), special, template, bos, eos, addBos);
        } catch (RuntimeException e) {
            throw new IOException(json + ": cannot build tokenizer: " + e.getMessage(), e);
        }
    }

    private static String tokenText(JsonNode node) {
        if (node == null || node.isNull()) return null;
        return node.isTextual() ? node.asText() : node.path("content").asText(null);
    }

    private static JsonNode readJson(Path file) throws IOException {
        try {
            return JSON.readTree(file.toFile());
        } catch (IOException e) {
            throw new IOException(file + ": malformed JSON: " + e.getMessage(), e);
        }
    }

    /** Rebuilds the Hugging Face tokenizer.json that a GGUF's tokenizer metadata describes. */
    public static Tokenizer fromGguf(GgufFile gguf) throws IOException {
        String model = gguf.getString("tokenizer.ggml.model");
        if (!model.equals("gpt2")) {
            throw new IOException(gguf.path() + ": tokenizer.ggml.model='" + model
                    + "' is not supported (xllm rebuilds byte-level BPE 'gpt2' tokenizers from GGUF)");
        }
        String pre = gguf.get("tokenizer.ggml.pre").map(Object::toString).orElse("default");
        List<?> tokens = list(gguf, "tokenizer.ggml.tokens", true);
        List<?> merges = list(gguf, "tokenizer.ggml.merges", true);
        List<?> types = list(gguf, "tokenizer.ggml.token_type", false);
        for (Object type : types) {
            if (!(type instanceof Long)) {
                throw new IOException(gguf.path() + ": tokenizer.ggml.token_type holds " + type + ", not an integer");
            }
        }

        ObjectNode root = JSON.createObjectNode();
        root.put("version", "1.0");
        root.putNull("truncation");
        root.putNull("padding");
        ArrayNode added = root.putArray("added_tokens");
        Map<String, Long> special = new HashMap<>();
        ObjectNode vocab = JSON.createObjectNode();
        for (int i = 0; i < tokens.size(); i++) {
            String token = tokens.get(i).toString();
            vocab.put(token, i);
            long type = i < types.size() ? (Long) types.get(i) : 1;
            if (type == 3 || type == 4) { // control or user-defined tokens are matched before BPE
                ObjectNode t = added.addObject();
                t.put("id", i).put("content", token).put("single_word", false).put("lstrip", false)
                        .put("rstrip", false).put("normalized", type == 4).put("special", type == 3);
                special.put(token, (long) i);
            }
        }
        root.putNull("normalizer");
        root.set("pre_tokenizer", preTokenizer(pre, gguf.path()));
        ObjectNode byteLevel = JSON.createObjectNode();
        byteLevel.put("type", "ByteLevel").put("add_prefix_space", true).put("trim_offsets", false).put("use_regex", true);
        root.set("post_processor", byteLevel);
        ObjectNode decoder = JSON.createObjectNode();
        decoder.put("type", "ByteLevel").put("add_prefix_space", true).put("trim_offsets", true).put("use_regex", true);
        root.set("decoder", decoder);
        ObjectNode bpe = root.putObject("model");
        bpe.put("type", "BPE").putNull("dropout");
        bpe.putNull("unk_token").putNull("continuing_subword_prefix").putNull("end_of_word_suffix");
        bpe.put("fuse_unk", false).put("byte_fallback", false).put("ignore_merges", pre.equals("llama-bpe"));
        bpe.set("vocab", vocab);
        ArrayNode mergeArray = bpe.putArray("merges");
        for (Object m : merges) mergeArray.add(m.toString());

        String template = gguf.get("tokenizer.chat_template").map(Object::toString).orElse(null);
        String bos = specialToken(gguf, "tokenizer.ggml.bos_token_id", tokens);
        String eos = specialToken(gguf, "tokenizer.ggml.eos_token_id", tokens);
        Object addBosValue = gguf.get("tokenizer.ggml.add_bos_token").orElse(false);
        if (!(addBosValue instanceof Boolean addBos)) {
            throw new IOException(gguf.path() + ": tokenizer.ggml.add_bos_token is " + addBosValue + ", not a bool");
        }
        byte[] bytes = JSON.writeValueAsBytes(root);
        try {
            return new Tokenizer(HuggingFaceTokenizer.newInstance(new ByteArrayInputStream(bytes), options()),
                    special, template, bos, eos, addBos);
        } catch (RuntimeException e) {
            throw new IOException(gguf.path() + ": cannot build tokenizer from GGUF metadata: " + e.getMessage(), e);
        }
    }

    /** An array-valued tokenizer key; a missing required key or a value of another kind is an error naming it. */
    private static List<?> list(GgufFile gguf, String key, boolean required) throws IOException {
        Object value = gguf.get(key).orElse(null);
        if (value == null && !required) return List.of();
        if (value == null) throw new IOException(gguf.path() + ": BPE tokenizer without " + key);
        if (!(value instanceof List<?> list)) throw new IOException(gguf.path() + ": " + key + " is not an array");
        return list;
    }

    /** The text of a special token given by id (bos/eos), which must lie inside the vocabulary; null if absent. */
    private static String specialToken(GgufFile gguf, String key, List<?> tokens) throws IOException {
        Object id = gguf.get(key).orElse(null);
        if (id == null) return null;
        if (!(id instanceof Long index) || index < 0 || index >= tokens.size()) {
            throw new IOException(gguf.path() + ": " + key + " = " + id + " is not a token id of the vocabulary ("
                    + tokens.size() + " tokens, ids 0.." + (tokens.size() - 1) + ")");
        }
        return tokens.get((int) (long) index).toString();
    }

    /** The pre-tokeniser that llama.cpp's {@code tokenizer.ggml.pre} name stands for, in tokenizer.json form. */
    private static JsonNode preTokenizer(String pre, Path file) throws IOException {
        ObjectNode byteLevel = JSON.createObjectNode();
        byteLevel.put("type", "ByteLevel").put("add_prefix_space", false).put("trim_offsets", true);
        switch (pre) {
            case "default", "gpt2" -> {
                byteLevel.put("use_regex", true);
                return byteLevel;
            }
            case "smollm", "starcoder", "refact" -> {
                byteLevel.put("use_regex", true);
                ObjectNode sequence = JSON.createObjectNode().put("type", "Sequence");
                ArrayNode list = sequence.putArray("pretokenizers");
                list.addObject().put("type", "Digits").put("individual_digits", true);
                list.add(byteLevel);
                return sequence;
            }
            case "llama-bpe", "llama3", "qwen2" -> {
                byteLevel.put("use_regex", false);
                ObjectNode sequence = JSON.createObjectNode().put("type", "Sequence");
                ArrayNode list = sequence.putArray("pretokenizers");
                ObjectNode split = list.addObject().put("type", "Split");
                split.putObject("pattern").put("Regex", pre.equals("qwen2") ? QWEN2_SPLIT : LLAMA3_SPLIT);
                split.put("behavior", "Isolated").put("invert", false);
                list.add(byteLevel);
                return sequence;
            }
            default -> throw new IOException(file + ": tokenizer.ggml.pre='" + pre
                    + "' is not a pre-tokeniser xllm knows (known: gpt2, smollm, starcoder, llama-bpe, qwen2)");
        }
    }

    /** Token ids of plain text (special-token strings inside it are still recognised, as in HF). */
    public long[] encode(String text) {
        return tokenizer.encode(text, false, false).getIds();
    }

    public String decode(long[] ids, boolean skipSpecialTokens) {
        return tokenizer.decode(ids, skipSpecialTokens);
    }

    public Optional<Long> specialTokenId(String token) {
        return Optional.ofNullable(specialIds.get(token));
    }

    public Optional<String> chatTemplate() {
        return Optional.ofNullable(chatTemplate);
    }

    public String bosToken() {
        return bosToken;
    }

    public String eosToken() {
        return eosToken;
    }

    /** Whether the model expects its BOS token in front of every prompt. */
    public boolean addsBos() {
        return addBos;
    }

    @Override
    public void close() {
        tokenizer.close();
    }
}
