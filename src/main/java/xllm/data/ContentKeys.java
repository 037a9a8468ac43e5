package xllm.data;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Feature-cache keys of media files: the SHA-256 of the bytes, so a file regenerated at the same path is encoded
 * again and identical files share one entry. Each path is hashed once per task (safe from loader threads).
 */
public final class ContentKeys {

    private final Map<Path, String> keys = new ConcurrentHashMap<>();

    public String of(Path file) throws IOException {
        Path absolute = file.toAbsolutePath().normalize();
        String key = keys.get(absolute);
        if (key == null) {
            key = "sha256:" + xllm.tensor.FileDigest.sha256(absolute);
            keys.put(absolute, key);
        }
        return key;
    }
}
