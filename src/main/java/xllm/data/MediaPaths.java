package xllm.data;

import xllm.tensor.InputFile;

import java.io.IOException;
import java.nio.file.Path;

/**
 * Resolves the media paths of a manifest (DESIGN.md §4: relative to the manifest's directory) and, by default, keeps
 * them inside that directory's tree: a downloaded dataset cannot make training or evaluation open {@code /etc/shadow}
 * or {@code ../../secret} and feed it to a model. The check is made twice: on the normalised path (so {@code ..} and
 * absolute paths are refused before the file system is asked anything about them), then on the real path, so a
 * symbolic link inside the tree that leads out of it is refused too. A tree that is itself reached through a link
 * (say {@code data -> /mnt/big/data}) is fine: both sides of the comparison are real paths.
 *
 * <p>The opt-out is the system property {@value #ALLOW_OUTSIDE_PROPERTY}{@code =true} (command line:
 * {@value #ALLOW_OUTSIDE_FLAG}). Every manifest xllm writes keeps its media under its own directory.
 */
public final class MediaPaths {

    /** System property that lets media paths leave the manifest's directory tree. */
    public static final String ALLOW_OUTSIDE_PROPERTY = "xllm.manifest.allowOutside";
    /** The command-line flag that sets {@link #ALLOW_OUTSIDE_PROPERTY}; named in the errors. */
    public static final String ALLOW_OUTSIDE_FLAG = "--allow-media-outside-manifest";

    private MediaPaths() {}

    /** Whether media may lie outside the manifest's directory tree ({@value #ALLOW_OUTSIDE_PROPERTY}). */
    public static boolean allowOutside() {
        return Boolean.parseBoolean(System.getProperty(ALLOW_OUTSIDE_PROPERTY, "false"));
    }

    /**
     * The existing regular file that {@code value}, a media path written in {@code manifest}, names.
     *
     * @param kind  what the file holds, for the messages: "audio", "image" or "video"
     * @param where the manifest line, e.g. {@code data/train.jsonl:7}; every message starts with it
     */
    public static Path resolve(Path manifest, String value, String kind, String where) throws IOException {
        Path base = manifest.toAbsolutePath().normalize().getParent();
        Path path = base.resolve(value).normalize();
        boolean confined = !allowOutside();
        if (confined && !path.startsWith(base)) {
            throw new IOException(where + ": " + kind + " path '" + value + "' is outside " + base
                    + ", the manifest's directory (" + ALLOW_OUTSIDE_FLAG + " allows it)");
        }
        InputFile.require(path, kind, where);
        if (confined) {
            Path real = path.toRealPath();
            Path realBase = base.toRealPath();
            if (!real.startsWith(realBase)) {
                throw new IOException(where + ": " + kind + " path '" + value + "' leads through a symbolic link to "
                        + real + ", outside " + realBase + ", the manifest's directory (" + ALLOW_OUTSIDE_FLAG
                        + " allows it)");
            }
        }
        return path;
    }
}
