package xllm.eval;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The result of one {@code ./xllm bench} run in the JSON layout of DESIGN.md §8: machine, config, one result per
 * (system, metric) — a peer that could not run is a result with a null value and its error — and xllm/peer ratios.
 */
public final class BenchmarkReport {

    public record Result(String system, String metric, Double value, String unit, String error) {}

    public record Ratio(String name, Double value, boolean higherIsBetter) {}

    private final String benchmark;
    private final Map<String, Object> config = new LinkedHashMap<>();
    private final List<Result> results = new ArrayList<>();
    private final List<Ratio> ratios = new ArrayList<>();

    public BenchmarkReport(String benchmark) {
        this.benchmark = benchmark;
    }

    public BenchmarkReport config(String key, Object value) {
        config.put(key, value);
        return this;
    }

    public void add(String system, String metric, double value, String unit) {
        results.add(new Result(system, metric, value, unit, null));
    }

    public void failed(String system, String metric, String unit, String error) {
        results.add(new Result(system, metric, null, unit, error));
    }

    public Double value(String system, String metric) {
        for (Result r : results) {
            if (r.system().equals(system) && r.metric().equals(metric)) return r.value();
        }
        return null;
    }

    /** Adds {@code ours/peer} (or its inverse when lower is better, so > 1 always means xllm is ahead). */
    public void ratio(String metric, String ours, String peer, boolean higherIsBetter) {
        Double a = value(ours, metric), b = value(peer, metric);
        Double ratio = a == null || b == null || a == 0 || b == 0 ? null : higherIsBetter ? a / b : b / a;
        String name = metric + " " + (higherIsBetter ? ours + "/" + peer : peer + "/" + ours);
        ratios.add(new Ratio(name, ratio, higherIsBetter));
    }

    public static Map<String, Object> machine() {
        Map<String, Object> machine = new LinkedHashMap<>();
        machine.put("cores", Runtime.getRuntime().availableProcessors());
        String cpu = "unknown";
        try {
            for (String line : Files.readAllLines(Path.of("/proc/cpuinfo"))) {
                if (line.startsWith("model name")) {
                    cpu = line.substring(line.indexOf(':') + 1).strip();
                    break;
                }
            }
        } catch (IOException ignored) {
            // not Linux: the CPU name stays unknown
        }
        machine.put("cpu", cpu);
        machine.put("java", System.getProperty("java.version"));
        return machine;
    }

    public Map<String, Object> toMap() {
        Map<String, Object> root = new LinkedHashMap<>();
        root.put("benchmark", benchmark);
        root.put("machine", machine());
        root.put("config", config);
        List<Map<String, Object>> rs = new ArrayList<>();
        for (Result r : results) {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("system", r.system());
            m.put("metric", r.metric());
            m.put("value", r.value());
            m.put("unit", r.unit());
            if (r.error() != null) m.put("error", r.error());
            rs.add(m);
        }
        root.put("results", rs);
        List<Map<String, Object>> ra = new ArrayList<>();
        for (Ratio r : ratios) {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("name", r.name());
            m.put("value", r.value());
            m.put("higher_is_better", true);
            ra.add(m);
        }
        root.put("ratios", ra);
        return root;
    }

    public void writeJson(Path file) throws IOException {
        Path parent = file.toAbsolutePath().getParent();
        if (parent != null) Files.createDirectories(parent);
        new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT).writeValue(file.toFile(), toMap());
    }

    /**
     * Prints the results and ratios. A failed result shows the first line of its error in its row; the rest of a
     * multi-line error (a failed peer's stderr tail, see {@link PeerProcess}) follows the table once per system.
     */
    public void printTable(PrintStream out) {
        out.printf("benchmark: %s   %s%n", benchmark, machine());
        out.printf("config: %s%n", config);
        out.printf("%-18s %-28s %14s  %s%n", "system", "metric", "value", "unit");
        Map<String, String> details = new LinkedHashMap<>(); // "system: error" -> the error's lines after the first
        for (Result r : results) {
            String value = r.value() == null ? "n/a" : String.format("%.2f", r.value());
            String error = "";
            if (r.error() != null) {
                int newline = r.error().indexOf('\n');
                error = "   (" + (newline < 0 ? r.error() : r.error().substring(0, newline)) + ")";
                if (newline >= 0) details.put(r.system() + ": " + r.error().substring(0, newline),
                        r.error().substring(newline + 1));
            }
            out.printf("%-18s %-28s %14s  %s%s%n", r.system(), r.metric(), value, r.unit(), error);
        }
        for (Ratio r : ratios) {
            out.printf("ratio %-45s %s%n", r.name(), r.value() == null ? "n/a" : String.format("%.2fx", r.value()));
        }
        details.forEach((headline, rest) -> out.printf("%s%n%s%n", headline, rest));
    }
}
