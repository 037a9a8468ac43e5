package xllm.serve;

import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Up-front checks of the paths a command writes, so that a file where a directory belongs (or the reverse) fails
 * with one clear line before any work is done, not as a bare path from deep inside the writer.
 */
final class OutputPaths {

    private OutputPaths() {}

    /** {@code dir} is a directory or can be created as one. */
    static void directory(String option, Path dir) {
        if (Files.exists(dir) && !Files.isDirectory(dir)) {
            throw new IllegalArgumentException(option + " " + dir + ": is a file, expected a directory");
        }
        nearestExistingAncestor(option, dir);
    }

    /** {@code file} is a file or can be created as one. */
    static void file(String option, Path file) {
        if (Files.isDirectory(file)) {
            throw new IllegalArgumentException(option + " " + file + ": is a directory, expected a file");
        }
        nearestExistingAncestor(option, file);
    }

    /** The first ancestor that exists must be a directory this process may write into. */
    private static void nearestExistingAncestor(String option, Path path) {
        for (Path ancestor = path.toAbsolutePath().getParent(); ancestor != null; ancestor = ancestor.getParent()) {
            if (!Files.exists(ancestor)) continue;
            if (!Files.isDirectory(ancestor)) {
                throw new IllegalArgumentException(option + " " + path + ": " + ancestor + " is a file, expected a directory");
            }
            if (!Files.isWritable(ancestor)) {
                throw new IllegalArgumentException(option + " " + path + ": cannot write into " + ancestor + " (permission denied)");
            }
            return;
        }
    }
}
