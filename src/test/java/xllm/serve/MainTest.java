package xllm.serve;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Callable;

import static org.junit.jupiter.api.Assertions.*;

/** The top-level handler: every failure of a command is one "error: ..." line (a stack trace only with XLLM_DEBUG). */
class MainTest {

    record Run(int exitCode, String stderr) {}

    /** A command that throws the exception it is given. */
    @CommandLine.Command(name = "fail")
    static final class Fail implements Callable<Integer> {
        final Exception exception;

        Fail(Exception exception) {
            this.exception = exception;
        }

        @Override
        public Integer call() throws Exception {
            throw exception;
        }
    }

    static Run run(boolean debug, Exception failing, String... args) {
        CommandLine cl = Main.commandLine(debug);
        if (failing != null) cl.addSubcommand("fail", new CommandLine(new Fail(failing)));
        StringWriter err = new StringWriter();
        cl.setErr(new PrintWriter(err));
        cl.setOut(new PrintWriter(new StringWriter()));
        int code = cl.execute(args);
        return new Run(code, err.toString());
    }

    static Run fails(Exception e) {
        return run(false, e, "fail");
    }

    @Test
    void everyExceptionIsOneErrorLine() {
        assertEquals(new Run(1, "error: NullPointerException\n"), fails(new NullPointerException()));
        assertEquals(new Run(1, "error: ArrayIndexOutOfBoundsException: Index 5 out of bounds for length 3\n"),
                fails(new ArrayIndexOutOfBoundsException("Index 5 out of bounds for length 3")));
        assertEquals(new Run(1, "error: UnsupportedOperationException\n"), fails(new UnsupportedOperationException("")));
        assertEquals(new Run(1, "error: bad value\n"), fails(new IllegalArgumentException("bad value")));
        assertEquals(new Run(1, "error: a.wav: no such file or directory\n"),
                fails(new java.nio.file.NoSuchFileException("a.wav")));
        assertEquals(new Run(1, "error: out: is a directory\n"),
                fails(new java.nio.file.FileSystemException("out", null, "Is a directory")));
        assertEquals(new Run(1, "error: runs/x: not a directory\n"),
                fails(new java.nio.file.NotDirectoryException("runs/x")));
        assertEquals(new Run(1, "error: cannot read x.jsonl: disk gone\n"), fails(new java.io.UncheckedIOException(
                "cannot read x.jsonl", new java.io.IOException("disk gone"))));
        assertEquals(new Run(1, "error: EngineException: native failure\n"),
                fails(new ai.djl.engine.EngineException("native failure")));
    }

    @Test
    void debugKeepsTheStackTrace() {
        Run run = run(true, new NullPointerException(), "fail");
        assertEquals(1, run.exitCode());
        assertTrue(run.stderr().startsWith("error: NullPointerException\njava.lang.NullPointerException"), run.stderr());
        assertTrue(run.stderr().contains("\tat xllm.serve.MainTest.debugKeepsTheStackTrace"), run.stderr());
    }

    @Test
    void invalidSamplingOptionsNameTheOptionBeforeAnyModelIsLoaded() {
        assertEquals(new Run(1, "error: --temperature must be a finite number >= 0, got NaN\n"),
                run(false, null, "generate", "--model", "no-such-model", "--prompt", "x", "--temperature", "NaN"));
        assertEquals(new Run(1, "error: --temperature must be a finite number >= 0, got Infinity\n"),
                run(false, null, "generate", "--prompt", "x", "--temperature", "Infinity"));
        assertEquals(new Run(1, "error: --top-p must be in (0, 1], got NaN\n"),
                run(false, null, "chat", "--model", "no-such-model", "--top-p", "NaN"));
        assertEquals(new Run(1, "error: --top-k must be >= 0 (0 = off), got -3\n"),
                run(false, null, "generate", "--prompt", "x", "--top-k", "-3"));
        assertEquals(new Run(1, "error: --repetition-penalty must be a finite number > 0, got 0.0\n"),
                run(false, null, "chat", "--repetition-penalty", "0"));
        Run negative = run(false, null, "generate", "--prompt", "x", "--max-tokens", "-1");
        assertEquals(1, negative.exitCode());
        assertTrue(negative.stderr().startsWith("error: --max-tokens: "), negative.stderr());
    }

    @Test
    void outputPathsOfTheWrongKindAreRefusedUpFront(@TempDir Path dir) throws Exception {
        Path file = Files.writeString(dir.resolve("somefile"), "x");
        for (String command : new String[] {"scenes", "videos", "speech", "pocketsphinx", "photos"}) {
            Run run = run(false, null, "bootstrap", command, "--out", file.toString());
            assertEquals(new Run(1, "error: --out " + file + ": is a file, expected a directory\n"), run, command);
        }
        Path manifest = Files.writeString(dir.resolve("asr.jsonl"), "{}\n");
        assertEquals(new Run(1, "error: --out " + dir + ": is a directory, expected a file\n"), run(false, null,
                "bootstrap", "replies", "--data", manifest.toString(), "--out", dir.toString()));
        assertEquals(new Run(1, "error: --out " + file.resolve("replies.jsonl") + ": " + file
                        + " is a file, expected a directory\n"), run(false, null, "bootstrap", "replies", "--data",
                manifest.toString(), "--out", file.resolve("replies.jsonl").toString()));
        Run train = run(false, null, "train", "recipes/tiny-overfit.yaml", "output=" + file);
        assertEquals(1, train.exitCode());
        assertTrue(train.stderr().contains(": output: " + file + ": is a file, expected a directory"), train.stderr());
    }
}
