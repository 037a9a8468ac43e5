package xllm.train;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.type.TypeReference;

import java.io.Closeable;
import java.io.IOException;
import java.math.BigDecimal;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.DoubleSupplier;

/**
 * The metrics of a training run as JSON lines in {@code <runDir>/metrics.jsonl}, one object per record:
 * {@code {"step": 120, "time": 1718000000.123, "loss": 1.2345, "lr": 1.0e-4, ...}}. Each line is handed to the
 * operating system as soon as it is logged (a killed run loses nothing already logged). Non-finite values are
 * written bare ({@code NaN}), as Python's {@code json} module writes and reads them.
 *
 * <p>A resumed run reopens the file with {@link #resume}, which drops the records past the resume step, so the
 * steps between that checkpoint and the crash are not recorded twice. A last line without its newline is the
 * trace of a write cut short (or of a line being written while someone reads): readers skip it if it does not
 * parse; any other malformed line is an error naming the file and the line. Tested in {@code MetricsLogTest}.
 */
public final class MetricsLog implements Closeable {

    public static final String FILE_NAME = "metrics.jsonl";
    private static final TypeReference<LinkedHashMap<String, Object>> RECORD = new TypeReference<>() {};

    private final Path file;
    private final FileChannel out;
    private final DoubleSupplier clockSeconds;

    private MetricsLog(Path file, DoubleSupplier clockSeconds) throws IOException {
        this.file = file;
        this.clockSeconds = clockSeconds;
        this.out = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.WRITE, StandardOpenOption.APPEND);
    }

    /** The log of a run directory. */
    public static Path in(Path runDir) {
        return runDir.resolve(FILE_NAME);
    }

    /** A new run: any earlier contents of the file are discarded. */
    public static MetricsLog start(Path file) throws IOException {
        return resume(file, -1);
    }

    /** A run resumed from a checkpoint at {@code step}: records with a step above it are dropped, the rest kept. */
    public static MetricsLog resume(Path file, long step) throws IOException {
        return resume(file, step, () -> System.currentTimeMillis() / 1000.0);
    }

    static MetricsLog resume(Path file, long step, DoubleSupplier clockSeconds) throws IOException {
        Path parent = file.toAbsolutePath().getParent();
        Files.createDirectories(parent);
        if (Files.exists(file)) {
            StringBuilder kept = new StringBuilder();
            if (step >= 0) {
                List<String> lines = new ArrayList<>();
                List<Map<String, Object>> records = read(file, lines);
                for (int i = 0; i < records.size(); i++) {
                    Object s = records.get(i).get("step");
                    // records without a step (notes) stay; so do those up to and including the resume step
                    if (!(s instanceof Number n) || n.doubleValue() <= step) kept.append(lines.get(i)).append('\n');
                }
            }
            // Rewrite through a temporary file and a rename: a crash now leaves either the old or the new log.
            Path temp = Files.createTempFile(parent, "." + file.getFileName() + ".", ".tmp");
            try (FileChannel channel = FileChannel.open(temp, StandardOpenOption.WRITE, StandardOpenOption.TRUNCATE_EXISTING)) {
                ByteBuffer bytes = ByteBuffer.wrap(kept.toString().getBytes(StandardCharsets.UTF_8));
                while (bytes.hasRemaining()) channel.write(bytes);
                channel.force(true);
            } catch (IOException | RuntimeException e) {
                Files.deleteIfExists(temp);
                throw e;
            }
            Files.move(temp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        }
        return new MetricsLog(file, clockSeconds);
    }

    public Path file() {
        return file;
    }

    /**
     * Appends one record: {@code step}, then {@code time} (seconds since the epoch, unless {@code values} gives
     * one), then {@code values} in their order.
     */
    public synchronized void log(long step, Map<String, ?> values) throws IOException {
        Map<String, Object> record = new LinkedHashMap<>();
        record.put("step", step);
        // milliseconds as a decimal: a double this large would be written as 1.718E9
        record.put("time", BigDecimal.valueOf(Math.round(clockSeconds.getAsDouble() * 1000), 3));
        if (values != null) {
            values.forEach((key, value) -> {
                if (!key.equals("step")) record.put(key, value);
            });
        }
        byte[] line = (Checkpoint.JSON.writeValueAsString(record) + "\n").getBytes(StandardCharsets.UTF_8);
        // One write call per line: with O_APPEND the line lands whole, never interleaved with a reader's view.
        ByteBuffer buffer = ByteBuffer.wrap(line);
        while (buffer.hasRemaining()) out.write(buffer);
    }

    @Override
    public synchronized void close() throws IOException {
        out.close();
    }

    /** Every record of a metrics file, in file order. */
    public static List<Map<String, Object>> read(Path file) throws IOException {
        return read(file, null);
    }

    /** Reads the records; when {@code rawLines} is given, the text of each returned record is added to it. */
    private static List<Map<String, Object>> read(Path file, List<String> rawLines) throws IOException {
        if (!Files.exists(file)) throw new IOException(file + ": file not found");
        String text = Files.readString(file, StandardCharsets.UTF_8);
        List<Map<String, Object>> records = new ArrayList<>();
        int lineNumber = 0;
        int start = 0;
        while (start < text.length()) {
            int end = text.indexOf('\n', start);
            boolean terminated = end >= 0;
            if (!terminated) end = text.length();
            lineNumber++;
            String line = text.substring(start, end).strip();
            start = end + 1;
            if (line.isEmpty()) continue;
            Map<String, Object> record;
            try {
                record = Checkpoint.JSON.readValue(line, RECORD);
            } catch (JsonProcessingException e) {
                if (!terminated) break; // a line still being written, or cut short by a crash
                throw new IOException(file + ":" + lineNumber + ": malformed metrics line: " + e.getOriginalMessage(), e);
            }
            if (record == null) throw new IOException(file + ":" + lineNumber + ": malformed metrics line: not an object");
            records.add(record);
            if (rawLines != null) rawLines.add(line);
        }
        return records;
    }
}
