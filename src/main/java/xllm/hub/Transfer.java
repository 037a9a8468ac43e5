package xllm.hub;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.file.FileVisitResult;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.SimpleFileVisitor;
import java.nio.file.attribute.BasicFileAttributes;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.stream.Stream;

/** Byte copying with checksums and progress, and the few file-tree helpers the store needs. */
final class Transfer {

    private static final int BUFFER = 1 << 16;

    private Transfer() { }

    static MessageDigest digest(String algorithm) {
        try {
            return MessageDigest.getInstance(algorithm);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(algorithm + " missing from this JVM", e);
        }
    }

    static String hex(MessageDigest digest) {
        return HexFormat.of().formatHex(digest.digest());
    }

    /**
     * Copies {@code in} to {@code out}, feeding every byte to {@code digest} and reporting the running total
     * ({@code already} + bytes copied) to {@code progress}. Returns the bytes copied.
     */
    static long copy(InputStream in, OutputStream out, MessageDigest digest, long already, ProgressListener progress)
            throws IOException {
        byte[] buffer = new byte[BUFFER];
        long copied = 0;
        for (int n; (n = in.read(buffer)) >= 0; ) {
            out.write(buffer, 0, n);
            digest.update(buffer, 0, n);
            copied += n;
            progress.advance(already + copied);
        }
        return copied;
    }

    /** Feeds the whole file to {@code digest}. */
    static void update(MessageDigest digest, Path file) throws IOException {
        byte[] buffer = new byte[BUFFER];
        try (InputStream in = Files.newInputStream(file)) {
            for (int n; (n = in.read(buffer)) >= 0; ) digest.update(buffer, 0, n);
        }
    }

    static String sha256(Path file) throws IOException {
        MessageDigest digest = digest("SHA-256");
        update(digest, file);
        return hex(digest);
    }

    /** The object id git gives a file's content: sha1("blob " + size + "\0" + content). */
    static String gitBlobId(Path file) throws IOException {
        MessageDigest digest = digest("SHA-1");
        digest.update(("blob " + Files.size(file) + "\0").getBytes(java.nio.charset.StandardCharsets.US_ASCII));
        update(digest, file);
        return hex(digest);
    }

    /** Deletes a file or a directory tree; a missing path is fine. */
    static void deleteTree(Path root) throws IOException {
        if (!Files.exists(root, java.nio.file.LinkOption.NOFOLLOW_LINKS)) return;
        Files.walkFileTree(root, new SimpleFileVisitor<>() {
            @Override
            public FileVisitResult visitFile(Path file, BasicFileAttributes attrs) throws IOException {
                Files.deleteIfExists(file);
                return FileVisitResult.CONTINUE;
            }

            @Override
            public FileVisitResult postVisitDirectory(Path dir, IOException e) throws IOException {
                if (e != null) throw e;
                Files.deleteIfExists(dir);
                return FileVisitResult.CONTINUE;
            }
        });
    }

    /** Bytes of all regular files under {@code root} (0 when it is missing). */
    static long sizeOfTree(Path root) {
        if (Files.isRegularFile(root)) {
            try {
                return Files.size(root);
            } catch (IOException e) {
                return 0;
            }
        }
        try (Stream<Path> files = Files.walk(root)) {
            return files.filter(Files::isRegularFile).mapToLong(f -> {
                try {
                    return Files.size(f);
                } catch (IOException e) {
                    return 0;
                }
            }).sum();
        } catch (IOException | java.io.UncheckedIOException e) {
            return 0; // vanished while listing: nothing to count
        }
    }

    /** {@code dir.resolve(relative)}, refusing paths that would leave {@code dir} (from a hostile listing). */
    static Path inside(Path dir, String relative) throws IOException {
        Path resolved = dir.resolve(relative).normalize();
        if (!resolved.startsWith(dir.normalize()) || resolved.equals(dir.normalize())) {
            throw new IOException("refusing file path '" + relative + "': it leaves " + dir);
        }
        return resolved;
    }
}
