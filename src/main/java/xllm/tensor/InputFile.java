package xllm.tensor;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * The one check every reader of a user-named input file (audio, image, manifest media) makes before opening it, so
 * that a wrong path reads the same everywhere and says which way it is wrong, instead of the OS's bare words
 * ("Is a directory", a path alone).
 */
public final class InputFile {

    private InputFile() {}

    /**
     * Refuses a path that does not name a readable regular file: "{@code kind} file not found: path",
     * "path: is a directory, not an {@code kind} file", "path: not a regular file" (a device, a pipe) or
     * "path: not readable (permission denied)".
     *
     * @param kind  what the file should hold, for the messages: "audio", "image", "video"
     * @param where prefixes every message when not null (a manifest line, {@code data/train.jsonl:7})
     */
    public static void require(Path path, String kind, String where) throws IOException {
        String prefix = where == null ? "" : where + ": ";
        if (Files.isDirectory(path)) {
            throw new IOException(prefix + path + ": is a directory, not " + article(kind) + " " + kind + " file");
        }
        if (!Files.exists(path)) throw new IOException(prefix + kind + " file not found: " + path);
        if (!Files.isRegularFile(path)) throw new IOException(prefix + path + ": not a regular file");
        if (!Files.isReadable(path)) throw new IOException(prefix + path + ": not readable (permission denied)");
    }

    private static String article(String kind) {
        return "aeiou".indexOf(kind.charAt(0)) >= 0 ? "an" : "a";
    }
}
