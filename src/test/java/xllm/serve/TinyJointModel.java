package xllm.serve;

import xllm.data.InstructionSet;
import xllm.model.SpeechInterfaceTestAccess;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.stream.Stream;

/**
 * One tiny X-LLM checkpoint with image, video and speech interfaces (recipes/tiny-integrate.yaml, 8 steps on a tiny
 * joint instruction set), trained once per test JVM and shared by the chat and server tests.
 */
public final class TinyJointModel {

    private static Path dir;

    private TinyJointModel() {
    }

    /** The directory holding {@code instructions/} (the data) and {@code run/final} (the checkpoint). */
    public static synchronized Path dir() throws Exception {
        if (dir != null) return dir;
        Path root = Files.createTempDirectory("xllm-tiny-joint-");
        Runtime.getRuntime().addShutdownHook(new Thread(() -> delete(root)));
        Path data = root.resolve("instructions");
        InstructionSet.build(data, 14, 7, 5, 2, false);
        Path asr = SpeechInterfaceTestAccess.asrCheckpoint(root.resolve("asr"));
        CliProcess trained = CliProcess.run("", "train", "recipes/tiny-integrate.yaml", "output=" + root.resolve("run"),
                "model.speechEncoder=" + asr, "data.train=" + data.resolve("train.jsonl"));
        if (trained.exitCode() != 0) throw new IllegalStateException("tiny joint training failed:\n" + trained.stderr());
        dir = root;
        return dir;
    }

    public static Path data() throws Exception {
        return dir().resolve("instructions");
    }

    public static Path checkpoint() throws Exception {
        return dir().resolve("run").resolve("final");
    }

    private static void delete(Path root) {
        try (Stream<Path> files = Files.walk(root)) {
            files.sorted(Comparator.reverseOrder()).forEach(f -> f.toFile().delete());
        } catch (IOException ignored) {
            // a temporary directory left behind is harmless
        }
    }
}
