package xllm.llm;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

/**
 * Writes a GGUF v3 file with the given metadata and no tensors, for tests of what xllm reads from GGUF metadata
 * (tokenizer, model config). Values: String, Integer (int32), Long (uint64), Boolean, Double (float32) and lists of
 * String or Integer (arrays of string / int32).
 */
final class GgufMetadataWriter {

    private GgufMetadataWriter() {}

    /** An F32 tensor, shape row-major (written as ggml's {@code ne}, innermost first). */
    record Tensor(String name, long[] shape, float[] values) {}

    static Path write(Path file, Map<String, Object> metadata) throws IOException {
        return write(file, metadata, List.of());
    }

    static Path write(Path file, Map<String, Object> metadata, List<Tensor> tensors) throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        int32(out, 0x46554747); // "GGUF"
        int32(out, 3);
        int64(out, tensors.size());
        int64(out, metadata.size());
        for (Map.Entry<String, Object> entry : metadata.entrySet()) {
            string(out, entry.getKey());
            value(out, entry.getValue(), true);
        }
        long offset = 0;
        for (Tensor tensor : tensors) {
            string(out, tensor.name());
            int32(out, tensor.shape().length);
            for (int d = tensor.shape().length - 1; d >= 0; d--) int64(out, tensor.shape()[d]);
            int32(out, 0); // F32
            int64(out, offset);
            offset += (tensor.values().length * 4L + 31) / 32 * 32;
        }
        for (Tensor tensor : tensors) {
            while (out.size() % 32 != 0) out.write(0);
            for (float value : tensor.values()) int32(out, Float.floatToIntBits(value));
        }
        while (out.size() % 32 != 0) out.write(0);
        return Files.write(file, out.toByteArray());
    }

    /** A small byte-level BPE vocabulary that Tokenizer.fromGguf can build: 'a', 'b', 'ab', and two specials. */
    static Map<String, Object> tinyTokenizer() {
        Map<String, Object> metadata = new java.util.LinkedHashMap<>();
        metadata.put("tokenizer.ggml.model", "gpt2");
        metadata.put("tokenizer.ggml.pre", "gpt2");
        metadata.put("tokenizer.ggml.tokens", List.of("a", "b", "ab", "<s>", "</s>"));
        metadata.put("tokenizer.ggml.token_type", List.of(1, 1, 1, 3, 3));
        metadata.put("tokenizer.ggml.merges", List.of("a b"));
        metadata.put("tokenizer.ggml.bos_token_id", 3);
        metadata.put("tokenizer.ggml.eos_token_id", 4);
        return metadata;
    }

    private static void value(ByteArrayOutputStream out, Object value, boolean withType) {
        if (value instanceof String text) {
            if (withType) int32(out, 8);
            string(out, text);
        } else if (value instanceof Integer number) {
            if (withType) int32(out, 5);
            int32(out, number);
        } else if (value instanceof Long number) {
            if (withType) int32(out, 10);
            int64(out, number);
        } else if (value instanceof Boolean flag) {
            if (withType) int32(out, 7);
            out.write(flag ? 1 : 0);
        } else if (value instanceof Double number) {
            if (withType) int32(out, 6);
            int32(out, Float.floatToIntBits(number.floatValue()));
        } else if (value instanceof List<?> list) {
            int32(out, 9);
            int32(out, list.isEmpty() || list.get(0) instanceof String ? 8 : 5);
            int64(out, list.size());
            for (Object item : list) value(out, item, false);
        } else {
            throw new IllegalArgumentException("cannot write " + value);
        }
    }

    private static void int32(ByteArrayOutputStream out, int value) {
        for (int i = 0; i < 4; i++) out.write(value >>> (8 * i));
    }

    private static void int64(ByteArrayOutputStream out, long value) {
        for (int i = 0; i < 8; i++) out.write((int) (value >>> (8 * i)));
    }

    private static void string(ByteArrayOutputStream out, String value) {
        byte[] utf8 = value.getBytes(StandardCharsets.UTF_8);
        int64(out, utf8.length);
        out.writeBytes(utf8);
    }
}
