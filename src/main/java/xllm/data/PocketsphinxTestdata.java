package xllm.data;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import xllm.speech.Resampler;
import xllm.speech.WavReader;
import xllm.speech.WavWriter;

import java.io.IOException;
import java.io.Writer;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * An English ASR evaluation manifest from real recordings: the Debian package pocketsphinx-testdata
 * (DESIGN.md §5), installed under {@value #DEFAULT_ROOT}. What it holds with a transcript:
 * <ul>
 *   <li>{@code librivox/}: 5 read-speech WAVs (Sense and Sensibility) and {@code transcription};</li>
 *   <li>{@code cards/}: 5 WAVs of playing-card names and {@code cards.transcription};</li>
 *   <li>{@code tidigits/dhd.2934z.raw}: a digit string whose words are in its name, by the TIDIGITS convention
 *       (z = zero, o = oh; the final letter after the digits, if any, is a take marker);</li>
 *   <li>{@code goforward.raw}: "go forward ten meters", the phrase pocketsphinx's own FSG test expects
 *       ({@code goforward.gram}'s first rule).</li>
 * </ul>
 * {@code numbers.raw} and {@code something.raw} have no transcript in the package and are left out; the
 * {@code tidigits/*.mfc} files are cepstra, not audio. Transcription lines look like {@code <s> ten of clubs </s>
 * (001)}; the sentence markers and filler tokens ({@code <sil>}, {@code ++noise++}) are dropped and the text
 * lower-cased. Raw files are headerless 16-bit little-endian PCM at 16 kHz. Every utterance is written as a
 * 16 kHz 16-bit mono WAV under {@code OUT/audio/} and listed in {@code OUT/eval.jsonl} as
 * {@code {"id","audio","text","language":"en","source","seconds"}}.
 */
public final class PocketsphinxTestdata {

    public static final String DEFAULT_ROOT = "/usr/share/pocketsphinx/test/data";
    static final int SAMPLE_RATE = 16_000;
    private static final Pattern TRANSCRIPT_LINE = Pattern.compile("^(.*)\\(([^()]+)\\)\\s*$");
    private static final Map<Character, String> TIDIGITS_WORDS = Map.ofEntries(Map.entry('z', "zero"),
            Map.entry('o', "oh"), Map.entry('1', "one"), Map.entry('2', "two"), Map.entry('3', "three"),
            Map.entry('4', "four"), Map.entry('5', "five"), Map.entry('6', "six"), Map.entry('7', "seven"),
            Map.entry('8', "eight"), Map.entry('9', "nine"));
    private static final ObjectMapper JSON = new ObjectMapper();

    /** One recording and its reference text; {@code source} is relative to the package root. */
    public record Utterance(String id, String text, String source) {
    }

    /** What {@link #build} wrote. */
    public record Summary(Path manifest, int utterances, double audioSeconds) {
    }

    private PocketsphinxTestdata() {}

    /** Every recording of the package that has a transcript, in a stable order. */
    public static List<Utterance> utterances(Path root) throws IOException {
        if (!Files.isDirectory(root)) {
            throw new IOException("pocketsphinx-testdata not found at " + root
                    + "; install it: apt-get install pocketsphinx-testdata");
        }
        List<Utterance> out = new ArrayList<>();
        List<Path> transcriptions;
        try (Stream<Path> files = Files.walk(root)) {
            transcriptions = files.filter(p -> p.getFileName().toString().endsWith("transcription")).sorted().toList();
        }
        for (Path transcription : transcriptions) {
            List<String> lines = Files.readAllLines(transcription, StandardCharsets.UTF_8);
            for (int n = 0; n < lines.size(); n++) {
                if (lines.get(n).isBlank()) continue;
                Matcher m = TRANSCRIPT_LINE.matcher(lines.get(n).strip());
                if (!m.matches()) {
                    throw new IOException(transcription + ":" + (n + 1) + ": expected \"<s> words </s> (id)\", got \""
                            + lines.get(n) + "\"");
                }
                String fileId = m.group(2).strip();
                Path audio = findAudio(transcription.getParent(), fileId);
                if (audio == null) {
                    throw new IOException(transcription + ":" + (n + 1) + ": no " + fileId + ".wav or " + fileId
                            + ".raw next to it");
                }
                String corpus = root.relativize(transcription.getParent()).toString().replace('/', '-');
                out.add(new Utterance((corpus.isEmpty() ? "" : corpus + "-") + fileId, normalise(m.group(1)),
                        root.relativize(audio).toString()));
            }
        }
        Path digits = root.resolve("tidigits/dhd.2934z.raw");
        if (Files.isRegularFile(digits)) {
            out.add(new Utterance("tidigits-dhd.2934z", tidigitsText("2934z"), root.relativize(digits).toString()));
        }
        Path goForward = root.resolve("goforward.raw");
        if (Files.isRegularFile(goForward)) {
            out.add(new Utterance("goforward", "go forward ten meters", root.relativize(goForward).toString()));
        }
        if (out.isEmpty()) throw new IOException(root + ": no transcribed recordings found");
        return out;
    }

    /** Converts every utterance to a 16 kHz WAV under {@code outDir/audio} and writes {@code outDir/eval.jsonl}. */
    public static Summary build(Path root, Path outDir) throws IOException {
        List<Utterance> utterances = utterances(root);
        Path audioDir = outDir.resolve("audio");
        Files.createDirectories(audioDir);
        Path manifest = outDir.resolve("eval.jsonl");
        Path temp = outDir.resolve("eval.jsonl.tmp");
        double total = 0;
        try (Writer writer = Files.newBufferedWriter(temp, StandardCharsets.UTF_8)) {
            for (Utterance u : utterances) {
                float[] samples = read16k(root.resolve(u.source()));
                WavWriter.write(audioDir.resolve(u.id() + ".wav"), samples, SAMPLE_RATE);
                double seconds = samples.length / (double) SAMPLE_RATE;
                total += seconds;
                ObjectNode line = JSON.createObjectNode();
                line.put("id", u.id());
                line.put("audio", "audio/" + u.id() + ".wav");
                line.put("text", u.text());
                line.put("language", "en");
                line.put("source", "pocketsphinx-testdata:" + u.source());
                line.put("seconds", Math.round(seconds * 1000) / 1000.0);
                writer.write(JSON.writeValueAsString(line));
                writer.write('\n');
            }
        }
        Files.move(temp, manifest, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        return new Summary(manifest, utterances.size(), total);
    }

    /** "<s> Ten of CLUBS </s>" → "ten of clubs": markers, fillers and case removed, spaces collapsed. */
    static String normalise(String transcript) {
        StringBuilder out = new StringBuilder();
        for (String token : transcript.strip().split("\\s+")) {
            if (token.isEmpty() || (token.startsWith("<") && token.endsWith(">"))
                    || (token.startsWith("++") && token.endsWith("++"))) {
                continue;
            }
            if (out.length() > 0) out.append(' ');
            out.append(token.toLowerCase(Locale.ROOT));
        }
        return out.toString();
    }

    /** TIDIGITS names spell the digits: "2934z" → "two nine three four zero". */
    static String tidigitsText(String digits) {
        StringBuilder out = new StringBuilder();
        for (char c : digits.toCharArray()) {
            String word = TIDIGITS_WORDS.get(c);
            if (word == null) throw new IllegalArgumentException("not a TIDIGITS digit '" + c + "' in " + digits);
            if (out.length() > 0) out.append(' ');
            out.append(word);
        }
        return out.toString();
    }

    private static Path findAudio(Path dir, String fileId) {
        for (String extension : new String[]{".wav", ".raw"}) {
            Path candidate = dir.resolve(fileId + extension);
            if (Files.isRegularFile(candidate)) return candidate;
        }
        return null;
    }

    /** A WAV through {@link WavReader} (resampled if not 16 kHz); a .raw as headerless 16-bit LE PCM at 16 kHz. */
    static float[] read16k(Path file) throws IOException {
        if (file.getFileName().toString().endsWith(".raw")) {
            byte[] bytes = Files.readAllBytes(file);
            if (bytes.length < 2 || bytes.length % 2 != 0) {
                throw new IOException(file + ": raw audio must hold 16-bit samples, got " + bytes.length + " bytes");
            }
            ByteBuffer buffer = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
            float[] samples = new float[bytes.length / 2];
            for (int i = 0; i < samples.length; i++) samples[i] = buffer.getShort(2 * i) / 32768f;
            return samples;
        }
        WavReader.Audio audio = WavReader.read(file);
        return Resampler.resample(audio.samples(), audio.sampleRate(), SAMPLE_RATE);
    }
}
