package xllm.serve;

import picocli.CommandLine;
import picocli.CommandLine.Command;
import xllm.data.MediaPaths;

import java.nio.file.AccessDeniedException;
import java.nio.file.DirectoryNotEmptyException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.FileSystemException;
import java.nio.file.NoSuchFileException;
import java.nio.file.NotDirectoryException;

/** Entry point of {@code ./xllm}: one picocli command per subcommand. */
@Command(name = "xllm", mixinStandardHelpOptions = true, version = "xllm 0.1.0",
        description = "Images, video and speech as foreign languages for a frozen decoder LLM.",
        subcommands = {ChatCommand.class, GenerateCommand.class, ModelsCommand.class, TrainCommand.class, EvalCommand.class, BenchCommand.class, BootstrapCommand.class, ServeCommand.class, UpgradeCheckpointCommand.class, CommandLine.HelpCommand.class})
public final class Main implements Runnable {

    public static void main(String[] args) {
        int status;
        try {
            status = commandLine().execute(args);
        } catch (OutOfMemoryError e) { // picocli passes Errors through; the heap is free again once they unwind
            System.err.println("error: out of memory (" + e.getMessage() + "); the input is too large for this JVM's "
                    + "heap, or raise it with XLLM_JAVA_OPTS=-Xmx<size>");
            if (System.getenv("XLLM_DEBUG") != null) e.printStackTrace();
            status = 1;
        }
        System.exit(status);
    }

    public static CommandLine commandLine() {
        return commandLine(System.getenv("XLLM_DEBUG") != null);
    }

    /** @param debug print the stack trace after the one-line error (XLLM_DEBUG set) */
    static CommandLine commandLine(boolean debug) {
        CommandLine cl = new CommandLine(new Main());
        CommandLine train = cl.getSubcommands().get("train");
        train.getCommandSpec().usageMessage().footer(TrainCommand.footer());
        // Every failure of a command is reported as one line, not a stack trace.
        cl.setExecutionExceptionHandler((e, commandLine, parseResult) -> {
            commandLine.getErr().println("error: " + describe(e));
            if (debug) e.printStackTrace(commandLine.getErr());
            commandLine.getErr().flush();
            return 1;
        });
        return cl;
    }

    /**
     * The one-line message of a failure. Our own errors (IOException, IllegalArgumentException,
     * IllegalStateException) carry a complete message; java.nio's file errors carry only the path, so the reason is
     * added; anything else (a bug, an engine failure) is prefixed with its class name, which is all a null
     * message leaves to go on.
     */
    static String describe(Throwable e) {
        if (e instanceof java.io.UncheckedIOException && e.getCause() != null) {
            String message = e.getMessage(), cause = e.getCause().getMessage();
            if (message == null || message.equals(e.getCause().toString())) return describe(e.getCause());
            return cause != null && message.contains(cause) ? message : message + ": " + describe(e.getCause());
        }
        if (e instanceof FileSystemException fs && fs.getFile() != null) {
            String reason = fs.getReason() == null || fs.getReason().isBlank() ? reason(fs)
                    : Character.toLowerCase(fs.getReason().charAt(0)) + fs.getReason().substring(1);
            return fs.getFile() + (fs.getOtherFile() == null ? "" : " -> " + fs.getOtherFile()) + ": " + reason;
        }
        String message = e.getMessage() == null ? "" : e.getMessage().strip();
        boolean ours = e instanceof java.io.IOException || e instanceof IllegalArgumentException
                || e instanceof IllegalStateException;
        if (ours && !message.isEmpty()) return message;
        return message.isEmpty() ? e.getClass().getSimpleName() : e.getClass().getSimpleName() + ": " + message;
    }

    private static String reason(FileSystemException e) {
        if (e instanceof NoSuchFileException) return "no such file or directory";
        if (e instanceof NotDirectoryException) return "not a directory";
        if (e instanceof FileAlreadyExistsException) return "already exists";
        if (e instanceof DirectoryNotEmptyException) return "directory not empty";
        if (e instanceof AccessDeniedException) return "permission denied";
        return e.getClass().getSimpleName();
    }

    @CommandLine.Option(names = MediaPaths.ALLOW_OUTSIDE_FLAG, scope = CommandLine.ScopeType.INHERIT,
            description = "Let media paths in manifests leave the manifest's directory tree (refused by default).")
    void allowMediaOutsideManifest(boolean allow) {
        if (allow) System.setProperty(MediaPaths.ALLOW_OUTSIDE_PROPERTY, "true");
    }

    @Override
    public void run() {
        CommandLine.usage(this, System.out);
    }
}
