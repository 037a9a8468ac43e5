package xllm.llm;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import xllm.tensor.Safetensors;
import xllm.tensor.gguf.GgufFile;
import xllm.tensor.gguf.GgufTensorInfo;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;

/**
 * Loads a {@link LlamaModel} from a Hugging Face directory (config.json + safetensors, sharded or not) or from a
 * GGUF file (weights dequantised to float32, llama.cpp's Q/K row permutation undone). Loading is strict: a missing
 * tensor, an unexpected tensor, or a shape that does not match the config is an error naming the file and tensor,
 * and nothing is half-loaded (all arrays live in one sub-manager that is closed on failure).
 */
public final class LlamaLoader {

    /** Tensors a checkpoint may carry that the model recomputes itself. */
    private static final Set<String> IGNORABLE_SUFFIXES = Set.of("rotary_emb.inv_freq", "rope_freqs.weight");

    /** Tensors of one decoder layer without biases: q, k, v, o, two norms, gate, up, down. */
    private static final int TENSORS_PER_LAYER = 9;

    private LlamaLoader() {}

    /** Where each logical tensor lives in a checkpoint's naming scheme. */
    private interface Names {
        String embedding();
        String finalNorm();
        String lmHead();
        String layer(int l, String part); // part: q, k, v, o, q_bias, k_bias, v_bias, attn_norm, ffn_norm, gate, up, down
    }

    private static final Names HUGGING_FACE = new Names() {
        public String embedding() { return "model.embed_tokens.weight"; }
        public String finalNorm() { return "model.norm.weight"; }
        public String lmHead() { return "lm_head.weight"; }
        public String layer(int l, String part) {
            String p = "model.layers." + l + ".";
            return switch (part) {
                case "q", "k", "v" -> p + "self_attn." + part + "_proj.weight";
                case "q_bias", "k_bias", "v_bias" -> p + "self_attn." + part.charAt(0) + "_proj.bias";
                case "o" -> p + "self_attn.o_proj.weight";
                case "attn_norm" -> p + "input_layernorm.weight";
                case "ffn_norm" -> p + "post_attention_layernorm.weight";
                default -> p + "mlp." + part + "_proj.weight";
            };
        }
    };

    private static final Names GGUF = new Names() {
        public String embedding() { return "token_embd.weight"; }
        public String finalNorm() { return "output_norm.weight"; }
        public String lmHead() { return "output.weight"; }
        public String layer(int l, String part) {
            String p = "blk." + l + ".";
            return switch (part) {
                case "q", "k", "v" -> p + "attn_" + part + ".weight";
                case "q_bias", "k_bias", "v_bias" -> p + "attn_" + part.charAt(0) + ".bias";
                case "o" -> p + "attn_output.weight";
                case "attn_norm" -> p + "attn_norm.weight";
                case "ffn_norm" -> p + "ffn_norm.weight";
                default -> p + "ffn_" + part + ".weight";
            };
        }
    };

    /** A checkpoint's tensors as float32 host arrays, whatever the file format. */
    private interface Source extends AutoCloseable {
        Path path();
        Set<String> names();
        long[] shape(String name);
        float[] floats(String name);
        @Override void close() throws IOException;
    }

    /** Loads from a directory (HF), a .safetensors file next to config.json, or a .gguf file. */
    public static LlamaModel load(Path path, NDManager parent) throws IOException {
        if (Files.isRegularFile(path) && path.getFileName().toString().endsWith(".gguf")) return loadGguf(path, parent);
        Path dir = Files.isDirectory(path) ? path : path.getParent();
        Path configFile = dir.resolve("config.json");
        if (!Files.exists(configFile)) {
            throw new IOException(path + ": not a GGUF file and no config.json beside it");
        }
        LlamaConfig config = LlamaConfig.fromHuggingFace(configFile);
        try (Safetensors st = Safetensors.open(Files.isDirectory(path) ? dir : path)) {
            Source source = new Source() {
                public Path path() { return st.source(); }
                public Set<String> names() { return new HashSet<>(st.names()); }
                public long[] shape(String name) { return st.shape(name); }
                public float[] floats(String name) { return st.get(name).toFloats(); }
                public void close() {}
            };
            return build(config, source, HUGGING_FACE, false, parent);
        }
    }

    public static LlamaModel loadGguf(Path file, NDManager parent) throws IOException {
        try (GgufFile gguf = GgufFile.open(file)) {
            return loadGguf(gguf, parent);
        }
    }

    /** From an already opened GGUF (so callers that also read its tokenizer parse the header once). */
    public static LlamaModel loadGguf(GgufFile gguf, NDManager parent) throws IOException {
        Path file = gguf.path();
        LlamaConfig config = configFromGguf(gguf);
        Source source = new Source() {
            public Path path() { return file; }
            public Set<String> names() {
                Set<String> names = new HashSet<>();
                for (GgufTensorInfo t : gguf.tensors()) names.add(t.name());
                return names;
            }
            public long[] shape(String name) { return gguf.tensor(name).shape(); }
            public float[] floats(String name) { return gguf.dequantize(name); }
            public void close() {}
        };
        // llama.cpp's converter permutes the rows of Wq/Wk of "llama" checkpoints for its interleaved RoPE.
        return build(config, source, GGUF, config.modelType().equals("llama"), parent);
    }

    static LlamaConfig configFromGguf(GgufFile gguf) throws IOException {
        String arch = gguf.getString("general.architecture");
        if (!LlamaConfig.SUPPORTED.contains(arch)) {
            throw new IOException(gguf.path() + ": unknown architecture general.architecture='" + arch
                    + "' (xllm runs " + LlamaConfig.SUPPORTED + ")");
        }
        int hidden = positiveInt(gguf, arch + ".embedding_length");
        int heads = positiveInt(gguf, arch + ".attention.head_count");
        int kvHeads = gguf.get(arch + ".attention.head_count_kv").isPresent()
                ? positiveInt(gguf, arch + ".attention.head_count_kv") : heads;
        int headDim = gguf.get(arch + ".rope.dimension_count").isPresent()
                ? positiveInt(gguf, arch + ".rope.dimension_count") : hidden / heads;
        double theta = gguf.get(arch + ".rope.freq_base").isPresent() ? gguf.getDouble(arch + ".rope.freq_base") : 10000.0;
        int vocab = gguf.get(arch + ".vocab_size").isPresent() ? positiveInt(gguf, arch + ".vocab_size")
                : (int) Math.min(gguf.tensor("token_embd.weight").shape()[0], Integer.MAX_VALUE);
        boolean tied = !gguf.hasTensor("output.weight");
        boolean bias = gguf.hasTensor("blk.0.attn_q.bias");
        List<Long> eos = new ArrayList<>();
        Object eosId = gguf.get("tokenizer.ggml.eos_token_id").orElse(null);
        if (eosId != null) {
            if (!(eosId instanceof Long id) || id < 0 || id >= vocab) {
                throw new IOException(gguf.path() + ": tokenizer.ggml.eos_token_id = " + eosId
                        + " is not a token id of the vocabulary of " + vocab);
            }
            eos.add(id);
        }
        if (gguf.hasTensor("rope_freqs.weight")) {
            throw new IOException(gguf.path() + ": tensor 'rope_freqs.weight' (Llama-3 RoPE scaling) in a GGUF is not "
                    + "supported yet; load the Hugging Face checkpoint instead");
        }
        return new LlamaConfig(arch, hidden, positiveInt(gguf, arch + ".feed_forward_length"),
                positiveInt(gguf, arch + ".block_count"), heads, kvHeads, headDim, vocab,
                (float) gguf.getDouble(arch + ".attention.layer_norm_rms_epsilon"), theta, null, tied, bias,
                positiveInt(gguf, arch + ".context_length"), List.copyOf(eos));
    }

    /** A size from GGUF metadata: an integer in 1..Integer.MAX_VALUE, never silently truncated by a cast. */
    private static int positiveInt(GgufFile gguf, String key) throws IOException {
        long value = gguf.getLong(key);
        if (value < 1 || value > Integer.MAX_VALUE) {
            throw new IOException(gguf.path() + ": " + key + " = " + value + " is outside 1.." + Integer.MAX_VALUE);
        }
        return (int) value;
    }

    private static LlamaModel build(LlamaConfig c, Source source, Names names, boolean unpermuteQk, NDManager parent)
            throws IOException {
        int d = c.hiddenSize(), hd = c.headDim(), h = c.numHeads(), kv = c.numKeyValueHeads(), f = c.intermediateSize();
        Set<String> expected = new TreeSet<>();
        Set<String> present = source.names();
        // Every layer has at least 9 tensors: a layer count the checkpoint cannot hold is refused before the layer
        // table is allocated (a hostile block_count of 2^31-1 would otherwise ask for gigabytes).
        if ((long) c.numLayers() * TENSORS_PER_LAYER > present.size()) {
            throw new IOException(source.path() + ": the config has " + c.numLayers() + " layers, which need at least "
                    + (long) c.numLayers() * TENSORS_PER_LAYER + " tensors, but the checkpoint has " + present.size()
                    + " tensors");
        }
        NDManager manager = parent.newSubManager();
        NDManager[] scratchHolder = {manager.newSubManager()};
        try {
            Loader load = (name, shape) -> {
                expected.add(name);
                if (!present.contains(name)) {
                    throw new IOException(source.path() + ": missing tensor '" + name + "'");
                }
                long[] actual = source.shape(name);
                if (!Arrays.equals(actual, shape)) {
                    throw new IOException(source.path() + ": tensor '" + name + "' has shape " + Arrays.toString(actual)
                            + ", expected " + Arrays.toString(shape) + " from the model config");
                }
                float[] values;
                try {
                    values = source.floats(name);
                } catch (RuntimeException e) {
                    throw new IOException(source.path() + ": cannot read tensor '" + name + "': " + e.getMessage(), e);
                }
                return scratchHolder[0].create(values, new Shape(shape));
            };
            float queryScale = (float) (1.0 / Math.sqrt(hd));
            NDArray embedding = keep(load.get(names.embedding(), new long[] {c.vocabSize(), d}), manager);
            LlamaModel.Layer[] layers = new LlamaModel.Layer[c.numLayers()];
            for (int l = 0; l < c.numLayers(); l++) {
                NDArray attnNorm = load.get(names.layer(l, "attn_norm"), new long[] {d});
                NDArray q = load.get(names.layer(l, "q"), new long[] {(long) h * hd, d});
                NDArray k = load.get(names.layer(l, "k"), new long[] {(long) kv * hd, d});
                NDArray v = load.get(names.layer(l, "v"), new long[] {(long) kv * hd, d});
                if (unpermuteQk) {
                    q = unpermuteRows(q, h);
                    k = unpermuteRows(k, kv);
                }
                NDArray qkv = LlamaModel.concatRows(q.mul(queryScale), k, v).mul(attnNorm);
                NDArray qkvBias = null;
                if (c.attentionBias()) {
                    NDArray qb = load.get(names.layer(l, "q_bias"), new long[] {(long) h * hd});
                    NDArray kb = load.get(names.layer(l, "k_bias"), new long[] {(long) kv * hd});
                    NDArray vb = load.get(names.layer(l, "v_bias"), new long[] {(long) kv * hd});
                    if (unpermuteQk) {
                        qb = unpermuteRows(qb.reshape(-1, 1), h).reshape(-1);
                        kb = unpermuteRows(kb.reshape(-1, 1), kv).reshape(-1);
                    }
                    qkvBias = keep(LlamaModel.concatRows(qb.mul(queryScale), kb, vb), manager);
                }
                NDArray output = load.get(names.layer(l, "o"), new long[] {d, (long) h * hd});
                NDArray ffnNorm = load.get(names.layer(l, "ffn_norm"), new long[] {d});
                NDArray gate = load.get(names.layer(l, "gate"), new long[] {f, d});
                NDArray up = load.get(names.layer(l, "up"), new long[] {f, d});
                NDArray down = load.get(names.layer(l, "down"), new long[] {d, f});
                layers[l] = new LlamaModel.Layer(keep(transposed(qkv), manager), qkvBias, keep(transposed(output), manager),
                        keep(transposed(LlamaModel.concatRows(gate, up).mul(ffnNorm)), manager), keep(transposed(down), manager));
                scratchHolder[0].close(); // this layer's unfused copies: keep peak memory near the model's own size
                scratchHolder[0] = manager.newSubManager();
            }
            NDArray finalNorm = load.get(names.finalNorm(), new long[] {d});
            // a tied head stays the embedding (read transposed) with the final gain on the hidden state; an untied
            // one is stored (D, V) with the gain folded in
            NDArray untiedHead = c.tieWordEmbeddings() ? null
                    : keep(transposed(load.get(names.lmHead(), new long[] {c.vocabSize(), d}).mul(finalNorm)), manager);
            NDArray headGain = c.tieWordEmbeddings() ? keep(finalNorm, manager) : null;
            for (String name : present) {
                if (!expected.contains(name) && IGNORABLE_SUFFIXES.stream().noneMatch(name::endsWith)) {
                    if (c.tieWordEmbeddings() && name.equals(names.lmHead())) {
                        throw new IOException(source.path() + ": config says tie_word_embeddings but the checkpoint has '"
                                + name + "'");
                    }
                    throw new IOException(source.path() + ": unexpected tensor '" + name + "' (not part of a "
                            + c.modelType() + " decoder with this config)");
                }
            }
            return new LlamaModel(c, manager, embedding, layers, untiedHead, headGain);
        } catch (IOException | RuntimeException e) {
            manager.close();
            throw e;
        } finally {
            scratchHolder[0].close();
        }
    }

    @FunctionalInterface
    private interface Loader {
        NDArray get(String name, long[] shape) throws IOException;
    }

    /** (out, in) → contiguous (in, out); flattening forces the copy that a clone of a transposed view would skip. */
    private static NDArray transposed(NDArray weight) {
        long rows = weight.getShape().get(0), cols = weight.getShape().get(1);
        return weight.transpose().reshape(-1).reshape(cols, rows);
    }

    /** Moves a freshly computed (hence contiguous) array from the per-layer scratch into the model's manager. */
    private static NDArray keep(NDArray array, NDManager manager) {
        array.attach(manager);
        return array;
    }

    /** Undoes llama.cpp's {@code reshape(n, 2, r/n/2, c).swapaxes(1, 2)} row permutation of Wq / Wk. */
    static NDArray unpermuteRows(NDArray w, int heads) {
        Shape s = w.getShape();
        long rows = s.get(0), cols = s.get(1);
        return w.reshape(heads, rows / heads / 2, 2, cols).transpose(0, 2, 1, 3).reshape(rows, cols);
    }
}
