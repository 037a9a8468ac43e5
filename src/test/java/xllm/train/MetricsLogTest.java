package xllm.train;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

/** metrics.jsonl: one flushed line per record, truncation on resume, torn last lines, malformed lines. */
class MetricsLogTest {

    private static Map<String, Object> values(double loss, double lr) {
        Map<String, Object> values = new LinkedHashMap<>();
        values.put("loss", loss);
        values.put("lr", lr);
        return values;
    }

    private static List<Long> steps(Path file) throws IOException {
        return MetricsLog.read(file).stream().map(r -> ((Number) r.get("step")).longValue()).toList();
    }

    @Test
    void writesOneFlushedObjectPerLineInOrder(@TempDir Path runDir) throws IOException {
        Path file = MetricsLog.in(runDir);
        try (MetricsLog log = MetricsLog.resume(file, -1, () -> 1718000000.1234)) {
            log.log(1, values(2.5, 1e-4));
            // visible to a reader (a plot, tail -f) before the log is closed
            assertEquals(1, Files.readAllLines(file).size());
            log.log(2, Map.of("eval_loss", 2.25, "note", "first eval", "sizes", List.of(1, 2)));
        }
        List<String> lines = Files.readAllLines(file);
        assertEquals("{\"step\":1,\"time\":1718000000.123,\"loss\":2.5,\"lr\":1.0E-4}", lines.get(0));
        List<Map<String, Object>> records = MetricsLog.read(file);
        assertEquals(2, records.size());
        assertEquals(List.of("step", "time", "loss", "lr"), List.copyOf(records.get(0).keySet()));
        assertEquals(2.5, records.get(0).get("loss"));
        assertEquals("first eval", records.get(1).get("note"));
        assertEquals(List.of(1, 2), records.get(1).get("sizes"));
    }

    @Test
    void resumingDropsTheStepsAfterTheCheckpoint(@TempDir Path runDir) throws IOException {
        Path file = MetricsLog.in(runDir);
        try (MetricsLog log = MetricsLog.start(file)) {
            for (long step = 1; step <= 10; step++) log.log(step, values(10.0 / step, 1e-3));
            log.log(10, Map.of("eval_loss", 1.5));
        }
        // the run died at step 10; the newest checkpoint was step 6, so steps 7..10 will be trained again
        try (MetricsLog log = MetricsLog.resume(file, 6)) {
            assertEquals(List.of(1L, 2L, 3L, 4L, 5L, 6L), steps(file));
            log.log(7, values(1.4, 1e-3));
        }
        assertEquals(List.of(1L, 2L, 3L, 4L, 5L, 6L, 7L), steps(file));
        // a new run over the same directory starts a new log
        try (MetricsLog log = MetricsLog.start(file)) {
            log.log(1, values(9, 1e-3));
        }
        assertEquals(List.of(1L), steps(file));
        assertEquals(List.of(), Files.list(runDir).filter(p -> p.getFileName().toString().endsWith(".tmp")).toList());
    }

    @Test
    void nonFiniteValuesRoundTripAsPythonWritesThem(@TempDir Path runDir) throws IOException {
        Path file = MetricsLog.in(runDir);
        try (MetricsLog log = MetricsLog.start(file)) {
            log.log(1, values(Double.NaN, Double.POSITIVE_INFINITY));
        }
        assertTrue(Files.readString(file).contains("\"loss\":NaN,\"lr\":Infinity"), Files.readString(file));
        Map<String, Object> record = MetricsLog.read(file).get(0);
        assertTrue(Double.isNaN((Double) record.get("loss")));
        assertEquals(Double.POSITIVE_INFINITY, record.get("lr"));
    }

    @Test
    void aTornLastLineIsSkippedAndDroppedOnResume(@TempDir Path runDir) throws IOException {
        Path file = MetricsLog.in(runDir);
        try (MetricsLog log = MetricsLog.start(file)) {
            log.log(1, values(2, 1e-3));
            log.log(2, values(1.9, 1e-3));
        }
        Files.writeString(file, "{\"step\":3,\"loss\":1.", StandardOpenOption.APPEND); // killed mid-write
        assertEquals(List.of(1L, 2L), steps(file));
        try (MetricsLog log = MetricsLog.resume(file, 2)) {
            log.log(3, values(1.8, 1e-3));
        }
        assertEquals(List.of(1L, 2L, 3L), steps(file));
    }

    @Test
    void aMalformedLineIsAnErrorNamingFileAndLine(@TempDir Path runDir) throws IOException {
        Path file = MetricsLog.in(runDir);
        Files.writeString(file, "{\"step\":1,\"loss\":2.0}\n{\"step\":2,\"loss\":}\n{\"step\":3}\n", StandardCharsets.UTF_8);
        IOException e = assertThrows(IOException.class, () -> MetricsLog.read(file));
        assertTrue(e.getMessage().startsWith(file + ":2: malformed metrics line"), e.getMessage());
        IOException resume = assertThrows(IOException.class, () -> MetricsLog.resume(file, 5));
        assertTrue(resume.getMessage().contains(":2:"), resume.getMessage());

        Files.writeString(file, "{\"step\":1}\n[1, 2]\n");
        IOException array = assertThrows(IOException.class, () -> MetricsLog.read(file));
        assertTrue(array.getMessage().startsWith(file + ":2:"), array.getMessage());
    }
}
