package xllm.data;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import xllm.speech.WavReader;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The manifest built from the installed Debian package pocketsphinx-testdata (required, never skipped). */
class PocketsphinxTestdataTest {

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final Path ROOT = Path.of(PocketsphinxTestdata.DEFAULT_ROOT);

    @TempDir
    Path dir;

    @Test
    void buildsA16kManifestOfEveryTranscribedRecording() throws Exception {
        assertTrue(Files.isDirectory(ROOT), "this test needs pocketsphinx-testdata: apt-get install pocketsphinx-testdata");
        PocketsphinxTestdata.Summary summary = PocketsphinxTestdata.build(ROOT, dir);
        List<String> rows = Files.readAllLines(summary.manifest(), StandardCharsets.UTF_8);
        assertEquals(12, rows.size()); // 5 librivox + 5 cards + 1 tidigits + goforward
        Map<String, JsonNode> byId = new HashMap<>();
        double total = 0;
        for (String row : rows) {
            JsonNode line = JSON.readTree(row);
            byId.put(line.get("id").asText(), line);
            WavReader.Audio audio = WavReader.read(dir.resolve(line.get("audio").asText()));
            assertEquals(16_000, audio.sampleRate());
            assertEquals(line.get("seconds").asDouble(), audio.seconds(), 1e-3);
            total += audio.seconds();
            String text = line.get("text").asText();
            assertTrue(text.matches("[a-z' ]+") && !text.contains("  "), text);
        }
        assertEquals(summary.audioSeconds(), total, 0.01);
        assertEquals("ten of clubs", byId.get("cards-001").get("text").asText());
        assertEquals("he was not an ill disposed young man",
                byId.get("librivox-sense_and_sensibility_01_austen_64kb-0880").get("text").asText());
        assertEquals("two nine three four zero", byId.get("tidigits-dhd.2934z").get("text").asText());
        assertEquals("go forward ten meters", byId.get("goforward").get("text").asText());
        // cards/001.wav holds 35052 data bytes of 16-bit 16 kHz audio
        assertEquals(17526 / 16000.0, byId.get("cards-001").get("seconds").asDouble(), 1e-3);

        // conversion is lossless: the raw file's bytes are the written WAV's data chunk; a WAV's samples survive
        byte[] raw = Files.readAllBytes(ROOT.resolve("goforward.raw"));
        byte[] wav = Files.readAllBytes(dir.resolve("audio/goforward.wav"));
        assertArrayEquals(raw, Arrays.copyOfRange(wav, 44, wav.length));
        assertArrayEquals(WavReader.read(ROOT.resolve("cards/005.wav")).samples(),
                WavReader.read(dir.resolve("audio/cards-005.wav")).samples());
    }

    @Test
    void transcriptsLoseMarkersFillersAndCase() {
        assertEquals("ten of clubs", PocketsphinxTestdata.normalise("<s> Ten of CLUBS  </s> "));
        assertEquals("go forward", PocketsphinxTestdata.normalise("<s> <sil> go ++NOISE++ forward </s>"));
        assertEquals("oh six nine", PocketsphinxTestdata.tidigitsText("o69"));
        assertThrows(IllegalArgumentException.class, () -> PocketsphinxTestdata.tidigitsText("2x"));
    }

    @Test
    void badInputNamesTheFileAndProblem() throws Exception {
        IOException missing = assertThrows(IOException.class,
                () -> PocketsphinxTestdata.build(dir.resolve("nothing"), dir.resolve("out")));
        assertTrue(missing.getMessage().contains("apt-get install pocketsphinx-testdata"), missing.getMessage());

        Path data = dir.resolve("data/set");
        Files.createDirectories(data);
        Files.writeString(data.resolve("transcription"), "<s> hello </s> (a)\nno id here\n");
        Files.write(data.resolve("a.raw"), new byte[64]);
        IOException malformed = assertThrows(IOException.class,
                () -> PocketsphinxTestdata.build(dir.resolve("data"), dir.resolve("out")));
        assertTrue(malformed.getMessage().contains("transcription:2") && malformed.getMessage().contains("(id)"),
                malformed.getMessage());

        Files.writeString(data.resolve("transcription"), "<s> hello </s> (b)\n");
        IOException noAudio = assertThrows(IOException.class,
                () -> PocketsphinxTestdata.build(dir.resolve("data"), dir.resolve("out")));
        assertTrue(noAudio.getMessage().contains("no b.wav or b.raw"), noAudio.getMessage());

        Files.writeString(data.resolve("transcription"), "<s> hello </s> (a)\n");
        Files.write(data.resolve("a.raw"), new byte[63]);
        IOException odd = assertThrows(IOException.class,
                () -> PocketsphinxTestdata.build(dir.resolve("data"), dir.resolve("out")));
        assertTrue(odd.getMessage().contains("a.raw") && odd.getMessage().contains("16-bit"), odd.getMessage());
    }
}
