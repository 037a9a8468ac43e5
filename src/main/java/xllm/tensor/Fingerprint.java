package xllm.tensor;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.List;

/**
 * Identity of a frozen encoder for feature caches: what a cache keyed by it must be invalidated by. Lives with the
 * tensors (not the cache) so the encoders' own classes can name themselves without depending on training.
 */
public final class Fingerprint {

    /** Part of every fingerprint: a new format of the hashed bytes gives new fingerprints. */
    private static final String FORMAT = "xllm-feature-cache/1";

    private Fingerprint() {}

    /**
     * Fingerprint of an encoder: SHA-256 over its config string and, in the order given, each frozen tensor's
     * name, dtype, shape and bytes; the first 16 hex characters. Any changed byte gives a new cache directory.
     */
    public static String of(String encoderConfig, List<HostTensor> frozenTensors) {
        MessageDigest sha;
        try {
            sha = MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-256 unavailable", e);
        }
        // Every part is length-prefixed so that moving bytes between the config and a tensor changes the hash.
        updateString(sha, FORMAT);
        updateString(sha, encoderConfig);
        ByteBuffer word = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
        for (HostTensor t : frozenTensors) {
            updateString(sha, t.name());
            updateString(sha, t.dtype().safetensorsName);
            updateLong(sha, word, t.shape().length);
            for (long d : t.shape()) updateLong(sha, word, d);
            updateLong(sha, word, t.data().remaining());
            sha.update(t.data().duplicate());
        }
        return HexFormat.of().formatHex(sha.digest()).substring(0, 16);
    }

    private static void updateString(MessageDigest sha, String s) {
        byte[] bytes = s.getBytes(StandardCharsets.UTF_8);
        updateLong(sha, ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN), bytes.length);
        sha.update(bytes);
    }

    private static void updateLong(MessageDigest sha, ByteBuffer word, long value) {
        word.clear();
        word.putLong(value).flip();
        sha.update(word);
    }

}
