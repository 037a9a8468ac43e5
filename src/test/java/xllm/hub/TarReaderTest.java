package xllm.hub;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.zip.GZIPInputStream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class TarReaderTest {

    private static final String LONG = "pkg-1.0/" + "deep/".repeat(30) + "weights.bin"; // 169 characters

    private static Map<String, String> read(byte[] tar) throws IOException {
        Map<String, String> files = new LinkedHashMap<>();
        try (TarReader reader = new TarReader(new ByteArrayInputStream(tar))) {
            for (TarReader.Entry e; (e = reader.next()) != null; ) {
                if (e.isFile()) files.put(e.name(), new String(reader.content().readAllBytes(), StandardCharsets.UTF_8));
                else files.put(e.name(), "<dir>");
            }
        }
        return files;
    }

    @ParameterizedTest
    @EnumSource(TarWriter.LongNames.class)
    void readsShortAndLongNames(TarWriter.LongNames style) throws IOException {
        byte[] tar = new TarWriter(style)
                .directory("pkg-1.0")
                .file("pkg-1.0/a.txt", "alpha".getBytes())
                .file(LONG, "x".repeat(1000).getBytes())
                .file("pkg-1.0/b.txt", "beta".getBytes())
                .tarBytes();

        Map<String, String> files = read(tar);

        assertEquals(List.of("pkg-1.0/", "pkg-1.0/a.txt", LONG, "pkg-1.0/b.txt"), new ArrayList<>(files.keySet()));
        assertEquals("alpha", files.get("pkg-1.0/a.txt"));
        assertEquals("x".repeat(1000), files.get(LONG));
        assertEquals("beta", files.get("pkg-1.0/b.txt"), "content after a long entry is found (padding skipped)");
    }

    @Test
    void skipsUnreadContent() throws IOException {
        byte[] tar = new TarWriter(TarWriter.LongNames.PAX)
                .file("big.bin", new byte[5000]).file("small.txt", "ok".getBytes()).tarBytes();
        try (TarReader reader = new TarReader(new ByteArrayInputStream(tar))) {
            assertEquals("big.bin", reader.next().name());
            reader.content().read(new byte[10]); // read a little, leave the rest
            TarReader.Entry small = reader.next();
            assertEquals("small.txt", small.name());
            assertEquals("ok", new String(reader.content().readAllBytes()));
        }
    }

    /** Archives written by Python's tarfile (as setuptools writes sdists), both long-name formats. */
    @Test
    void readsTarsWrittenByPython(@TempDir Path dir) throws Exception {
        for (String format : List.of("GNU_FORMAT", "PAX_FORMAT")) {
            Path out = dir.resolve(format + ".tar.gz");
            String script = "import io,tarfile,sys\n"
                    + "t=tarfile.open(sys.argv[1],'w:gz',format=tarfile." + format + ")\n"
                    + "for n,d in [('" + LONG + "',b'long'),('pkg-1.0/short.txt',b'short')]:\n"
                    + "  i=tarfile.TarInfo(n); i.size=len(d); t.addfile(i,io.BytesIO(d))\n"
                    + "t.close()\n";
            Process p = new ProcessBuilder("python3", "-c", script, out.toString()).inheritIO().start();
            assertTrue(p.waitFor(30, TimeUnit.SECONDS) && p.exitValue() == 0, "python3 tarfile failed");

            Map<String, String> files = read(new GZIPInputStream(Files.newInputStream(out)).readAllBytes());

            assertEquals(Map.of(LONG, "long", "pkg-1.0/short.txt", "short"), files, format);
        }
    }

    @Test
    void base256SizesAndBadHeaders() throws IOException {
        byte[] field = new byte[12];
        field[0] = (byte) 0x80;
        field[7] = 0x02;            // 2 << 32 = 8 GiB
        assertEquals(8L << 30, TarReader.number(field, 0, 12));

        byte[] notTar = "this is not a tar archive".repeat(30).getBytes();
        IOException e = assertThrows(IOException.class, () -> read(notTar));
        assertTrue(e.getMessage().startsWith("not a tar archive"), e.getMessage());

        byte[] truncated = new TarWriter(TarWriter.LongNames.PAX).file("a.bin", new byte[2000]).tarBytes();
        assertThrows(IOException.class, () -> {
            try (TarReader reader = new TarReader(new ByteArrayInputStream(truncated, 0, 1024))) {
                reader.next();
                reader.content().readAllBytes();
            }
        });
    }
}
