package xllm.serve;

import picocli.CommandLine;
import picocli.CommandLine.Command;

/** Entry point of {@code ./xllm}: one picocli command per subcommand. */
@Command(name = "xllm", mixinStandardHelpOptions = true, version = "xllm 0.1.0",
        description = "Images, video and speech as foreign languages for a frozen decoder LLM.",
        subcommands = {ChatCommand.class, GenerateCommand.class, ModelsCommand.class, TrainCommand.class, EvalCommand.class, BenchCommand.class, BootstrapCommand.class, CommandLine.HelpCommand.class})
public final class Main implements Runnable {

    public static void main(String[] args) {
        System.exit(commandLine().execute(args));
    }

    public static CommandLine commandLine() {
        CommandLine cl = new CommandLine(new Main());
        CommandLine train = cl.getSubcommands().get("train");
        train.getCommandSpec().usageMessage().footer(TrainCommand.footer());
        // Bad input (missing model, corrupt file, invalid option value) is reported as one line, not a stack trace.
        cl.setExecutionExceptionHandler((e, commandLine, parseResult) -> {
            if (e instanceof java.io.IOException || e instanceof IllegalArgumentException || e instanceof IllegalStateException) {
                commandLine.getErr().println("error: " + e.getMessage());
                if (System.getenv("XLLM_DEBUG") != null) e.printStackTrace(commandLine.getErr());
                return 1;
            }
            throw e;
        });
        return cl;
    }

    @Override
    public void run() {
        CommandLine.usage(this, System.out);
    }
}
