package xllm.data;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import net.sourceforge.pinyin4j.PinyinHelper;
import net.sourceforge.pinyin4j.format.HanyuPinyinCaseType;
import net.sourceforge.pinyin4j.format.HanyuPinyinOutputFormat;
import net.sourceforge.pinyin4j.format.HanyuPinyinToneType;
import net.sourceforge.pinyin4j.format.HanyuPinyinVCharType;
import net.sourceforge.pinyin4j.format.exception.BadHanyuPinyinOutputFormatCombination;
import xllm.speech.Resampler;
import xllm.speech.WavWriter;

import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.io.Writer;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Consumer;

/**
 * A synthetic ASR corpus spoken by espeak-ng (DESIGN.md §5: no speech set ships, so we synthesise one).
 * Sentences come from {@link SpeechSentences}; each utterance draws a voice (7 English accents × 13 variants such
 * as {@code en-gb+f2}; Mandarin through numbered pinyin and the {@code cmn-latn-pinyin} voice), a rate
 * ({@code -s} 130-190 wpm) and a pitch ({@code -p} 30-70), then is augmented: speed perturbation 0.9 / 1.0 / 1.1
 * (espeak's 22.05 kHz output is resampled to 16 kHz, then treated as recorded at 16000·speed Hz and resampled to
 * 16 kHz again, which changes tempo and pitch together, as Kaldi's speed perturbation does) and, for 75% of utterances, additive white or brown noise at
 * an SNR uniform in 5-30 dB (relative to the power of the voiced samples). Output: 16 kHz 16-bit mono WAVs under
 * {@code audio/} and a manifest {@code <split>.jsonl} of {@code {"id","audio","text","language",...}} (DESIGN.md §4)
 * whose text is the spoken form (English lower case, numbers as words, no punctuation; Mandarin characters).
 * Each line also records voice, rate, pitch, speed and snr_db.
 *
 * <p>Eval sentences never occur in train (the eval split redraws any text the train split used); eval voices,
 * rates, pitches and augmentations come from the same distribution as train, so eval measures new sentences from
 * known speakers, not new speakers. Everything is a function of (seed, split, index) and espeak-ng is deterministic
 * (same arguments, same bytes; checked by {@code SyntheticSpeechTest}), so the same call writes byte-identical
 * files. espeak-ng runs as one process per utterance, several in parallel.
 */
public final class SyntheticSpeech {

    public static final int SAMPLE_RATE = 16_000;
    static final String[] ENGLISH_VOICES = {"en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-029",
            "en-gb-x-gbclan", "en-gb-x-gbcwmd"};
    static final String[] VARIANTS = {"", "m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5"};
    static final String MANDARIN_VOICE = "cmn-latn-pinyin";
    static final double[] SPEEDS = {0.9, 1.0, 1.1};
    static final double CLEAN_FRACTION = 0.25;
    static final double MIN_SNR_DB = 5;
    static final double MAX_SNR_DB = 30;
    static final String INSTALL_HINT = "install espeak-ng: apt-get install espeak-ng";
    private static final ObjectMapper JSON = new ObjectMapper();
    /**
     * Polyphones of our sentences pinned to the reading they have there (pinyin4j lists readings in no useful
     * order: 只 is zhi3 first, but our 只 is the measure word zhi1; 长 in 长方形 is chang2, not zhang3).
     */
    private static final Map<Character, String> PINYIN_OVERRIDES = Map.ofEntries(
            Map.entry('长', "chang2"), Map.entry('数', "shu3"), Map.entry('少', "shao3"), Map.entry('了', "le5"),
            Map.entry('角', "jiao3"), Map.entry('中', "zhong1"), Map.entry('上', "shang4"), Map.entry('几', "ji3"),
            Map.entry('个', "ge4"), Map.entry('和', "he2"), Map.entry('只', "zhi1"));

    /**
     * One utterance to synthesise: {@code text} goes into the manifest, {@code spoken} to espeak-ng (numbered pinyin
     * for Mandarin); {@code snrDb} is NaN for clean audio.
     */
    public record Utterance(String id, String language, String text, String spoken, String voice, int rate, int pitch,
                            double speed, double snrDb, boolean brownNoise, long noiseSeed) {
    }

    /** What one split wrote; {@code texts} lets a later split exclude these sentences. */
    public record Summary(Path manifest, int utterances, int mandarin, double audioSeconds, double minSeconds,
                          double maxSeconds, double wallSeconds, Set<String> texts) {
        public double utterancesPerSecond() {
            return utterances / Math.max(wallSeconds, 1e-9);
        }
    }

    private SyntheticSpeech() {}

    /**
     * Writes {@code outDir/audio/<split>-{en,zh}-NNNNNN.wav} and {@code outDir/<split>.jsonl}: {@code english} then
     * {@code mandarin} utterances whose texts avoid {@code excludedTexts}. {@code progress} gets a line with the
     * rate and ETA every 5%.
     */
    public static Summary generate(Path outDir, String split, int english, int mandarin, long seed,
                                   Set<String> excludedTexts, int workers, Consumer<String> progress) throws IOException {
        return generate(outDir, split, english, mandarin, seed, excludedTexts, workers, progress, SpeechSentences::english);
    }

    /**
     * As {@link #generate}, English only, with the general-knowledge questions of {@link SpeechSentences#question}
     * (never one of its held-out questions) instead of the sentence grammar.
     */
    public static Summary generateQuestions(Path outDir, String split, int count, long seed, Set<String> excludedTexts,
                                            int workers, Consumer<String> progress) throws IOException {
        return generate(outDir, split, count, 0, seed, excludedTexts, workers, progress, SpeechSentences::question);
    }

    /**
     * The held-out spoken questions of {@link SpeechSentences#HELD_OUT_QUESTIONS}, each in every English accent at a
     * middle rate and pitch, clean: {@code outDir/general_held_out.jsonl}, each line with the {@code "keywords"} of a
     * right answer. The general-question splits never contain them, so this set scores answering questions never heard.
     */
    public static Summary speakHeldOutQuestions(Path outDir, int workers, Consumer<String> progress) throws IOException {
        long start = System.nanoTime();
        List<Utterance> utterances = new ArrayList<>();
        List<String> questions = new ArrayList<>(SpeechSentences.HELD_OUT_QUESTIONS);
        java.util.Collections.sort(questions);
        for (int q = 0; q < questions.size(); q++) {
            for (int v = 0; v < ENGLISH_VOICES.length; v++) {
                String id = String.format(Locale.ROOT, "general_held_out-en-%06d", q * ENGLISH_VOICES.length + v);
                utterances.add(new Utterance(id, "en", questions.get(q), questions.get(q), ENGLISH_VOICES[v], 160, 50,
                        1.0, Double.NaN, false, q * 31L + v));
            }
        }
        List<ObjectNode> lines = new ArrayList<>();
        for (Utterance u : utterances) {
            ObjectNode node = line(u);
            SpeechSentences.HELD_OUT_ANSWERS.get(u.text()).forEach(node.putArray("keywords")::add);
            lines.add(node);
        }
        Path manifest = outDir.resolve("general_held_out.jsonl");
        double[] seconds = synthesizeAll(outDir, utterances, lines, manifest, workers, "general_held_out", progress);
        return summary(manifest, utterances, seconds, start, new HashSet<>(questions));
    }

    private static Summary generate(Path outDir, String split, int english, int mandarin, long seed,
                                    Set<String> excludedTexts, int workers, Consumer<String> progress,
                                    java.util.function.Function<SplittableRandom, String> englishText) throws IOException {
        if (english < 0 || mandarin < 0 || english + mandarin < 1) {
            throw new IllegalArgumentException("need at least one utterance, got " + english + " English and "
                    + mandarin + " Mandarin");
        }
        if (!split.matches("[a-z0-9_]+")) throw new IllegalArgumentException("split must match [a-z0-9_]+: " + split);
        long start = System.nanoTime();
        // step 1: texts and parameters, sequentially, so exclusion is deterministic
        long splitSeed = mix(seed ^ mix(split.hashCode()));
        List<Utterance> utterances = new ArrayList<>(english + mandarin);
        Set<String> texts = new HashSet<>();
        for (int i = 0; i < english + mandarin; i++) {
            boolean zh = i >= english;
            int index = zh ? i - english : i;
            SplittableRandom random = new SplittableRandom(mix(splitSeed + (zh ? 0x5A5A_0000_0000L : 0) + index));
            String text = drawText(random, zh ? SpeechSentences::mandarin : englishText, excludedTexts);
            texts.add(text);
            String id = String.format(Locale.ROOT, "%s-%s-%06d", split, zh ? "zh" : "en", index);
            utterances.add(voiceAndAugmentation(random, id, zh ? "zh" : "en", text, zh ? pinyin(text) : text));
        }
        // step 2: synthesise in parallel; step 3: the manifest, in order
        List<ObjectNode> lines = new ArrayList<>(utterances.size());
        for (Utterance u : utterances) lines.add(line(u));
        Path manifest = outDir.resolve(split + ".jsonl");
        double[] seconds = synthesizeAll(outDir, utterances, lines, manifest, workers, split, progress);
        return summary(manifest, utterances, seconds, start, texts);
    }

    /**
     * Speaks the questions of a {@link SyntheticScenes} manifest: writes {@code outDir/questions-<name>.jsonl} with
     * {@code {"id","audio","text","image","language","question","answer"}} (image relative to the new manifest,
     * text the spoken form of the question) and one WAV per sample. Chinese questions use the Mandarin voice.
     */
    public static Summary speakQuestions(Path sceneManifest, Path outDir, long seed, int workers,
                                         Consumer<String> progress) throws IOException {
        long start = System.nanoTime();
        String name = sceneManifest.getFileName().toString().replaceFirst("\\.jsonl$", "");
        if (!name.matches("[A-Za-z0-9_.-]+")) throw new IllegalArgumentException(sceneManifest + ": odd manifest name");
        Path sceneDir = sceneManifest.toAbsolutePath().getParent();
        Files.createDirectories(outDir);
        Path outAbsolute = outDir.toAbsolutePath();
        List<Utterance> utterances = new ArrayList<>();
        List<ObjectNode> lines = new ArrayList<>();
        Set<String> texts = new HashSet<>();
        List<String> rows = Files.readAllLines(sceneManifest, StandardCharsets.UTF_8);
        long questionSeed = mix(seed ^ mix(name.hashCode()) ^ 0x7175_6573L);
        for (int lineNumber = 1; lineNumber <= rows.size(); lineNumber++) {
            String row = rows.get(lineNumber - 1);
            if (row.isBlank()) continue;
            String where = sceneManifest + ":" + lineNumber + ": ";
            JsonNode sample;
            try {
                sample = JSON.readTree(row);
            } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
                throw new IOException(where + "not valid JSON: " + e.getOriginalMessage());
            }
            JsonNode conversations = sample.path("conversations");
            if (!sample.hasNonNull("id") || !sample.hasNonNull("image") || !conversations.isArray()) {
                throw new IOException(where + "expected a scene sample with id, image and a question/answer pair");
            }
            ConversationSample.requireHumanThenGpt(conversations, sceneManifest + ":" + lineNumber);
            String question = conversations.get(0).path("value").asText().replace("<image>", "").strip();
            boolean zh = "zh".equals(sample.path("language").asText("en"));
            String text = zh ? question.replaceAll("[\\p{P}\\s]", "")
                    : question.toLowerCase(Locale.ROOT).replaceAll("[^a-z0-9' ]", " ").replaceAll(" +", " ").strip();
            if (text.isEmpty()) throw new IOException(where + "empty question");
            String id = "q-" + sample.get("id").asText();
            if (!id.matches("[A-Za-z0-9_.-]+")) throw new IOException(where + "id unusable as a file name: " + id);
            SplittableRandom random = new SplittableRandom(mix(questionSeed + lineNumber));
            Utterance u = voiceAndAugmentation(random, id, zh ? "zh" : "en", text, zh ? pinyin(text) : text);
            utterances.add(u);
            texts.add(text);
            ObjectNode node = line(u);
            Path image = sceneDir.resolve(sample.get("image").asText());
            node.put("image", outAbsolute.relativize(image).toString().replace(File.separatorChar, '/'));
            node.put("question", question);
            node.put("answer", conversations.get(1).path("value").asText());
            lines.add(node);
        }
        if (utterances.isEmpty()) throw new IOException(sceneManifest + ": no samples");
        Path manifest = outDir.resolve("questions-" + name + ".jsonl");
        double[] seconds = synthesizeAll(outDir, utterances, lines, manifest, workers, "questions", progress);
        return summary(manifest, utterances, seconds, start, texts);
    }

    static String drawText(SplittableRandom random, java.util.function.Function<SplittableRandom, String> grammar,
                           Set<String> excluded) {
        for (int attempt = 0; attempt < 10_000; attempt++) {
            String text = grammar.apply(random);
            if (!excluded.contains(text)) return text;
        }
        throw new IllegalStateException("the sentence grammar ran out of sentences not in the excluded set");
    }

    private static Utterance voiceAndAugmentation(SplittableRandom random, String id, String language, String text,
                                                  String spoken) {
        String voice;
        if (language.equals("zh")) {
            String variant = VARIANTS[random.nextInt(VARIANTS.length)];
            voice = variant.isEmpty() ? MANDARIN_VOICE : MANDARIN_VOICE + "+" + variant;
        } else {
            String accent = ENGLISH_VOICES[random.nextInt(ENGLISH_VOICES.length)];
            String variant = VARIANTS[random.nextInt(VARIANTS.length)];
            voice = variant.isEmpty() ? accent : accent + "+" + variant;
        }
        int rate = random.nextInt(130, 191);
        int pitch = random.nextInt(30, 71);
        double speed = SPEEDS[random.nextInt(SPEEDS.length)];
        double snr = random.nextDouble() < CLEAN_FRACTION ? Double.NaN : random.nextDouble(MIN_SNR_DB, MAX_SNR_DB);
        boolean brown = random.nextBoolean();
        return new Utterance(id, language, text, spoken, voice, rate, pitch, speed, snr, brown, random.nextLong());
    }

    private static ObjectNode line(Utterance u) {
        ObjectNode node = JSON.createObjectNode();
        node.put("id", u.id());
        node.put("audio", "audio/" + u.id() + ".wav");
        node.put("text", u.text());
        node.put("language", u.language());
        node.put("voice", u.voice());
        node.put("rate", u.rate());
        node.put("pitch", u.pitch());
        node.put("speed", u.speed());
        if (Double.isNaN(u.snrDb())) node.putNull("snr_db");
        else node.put("snr_db", Math.round(u.snrDb() * 10) / 10.0).put("noise", u.brownNoise() ? "brown" : "white");
        return node;
    }

    /** Synthesises every utterance (in parallel), writes the WAVs, then the manifest; returns each duration. */
    private static double[] synthesizeAll(Path outDir, List<Utterance> utterances, List<ObjectNode> lines,
                                          Path manifest, int workers, String label, Consumer<String> progress)
            throws IOException {
        Path espeak = Espeak.locate();
        Path audio = outDir.resolve("audio");
        Files.createDirectories(audio);
        double[] seconds = new double[utterances.size()];
        AtomicInteger done = new AtomicInteger();
        long start = System.nanoTime();
        int every = Math.max(1, utterances.size() / 20);
        long[] lastPrint = {start};
        ExecutorService pool = Executors.newFixedThreadPool(Math.max(1, workers));
        try {
            List<Future<?>> futures = new ArrayList<>();
            for (int i = 0; i < utterances.size(); i++) {
                int index = i;
                futures.add(pool.submit(() -> {
                    Utterance u = utterances.get(index);
                    float[] samples = render(espeak, u);
                    WavWriter.write(audio.resolve(u.id() + ".wav"), samples, SAMPLE_RATE);
                    seconds[index] = samples.length / (double) SAMPLE_RATE;
                    int n = done.incrementAndGet();
                    long now = System.nanoTime();
                    boolean due;
                    synchronized (lastPrint) { // every 5%, at most every 2 s, and at the end
                        due = n == utterances.size() || (n % every == 0 && now - lastPrint[0] > 2_000_000_000L);
                        if (due) lastPrint[0] = now;
                    }
                    if (due) {
                        double elapsed = (now - start) / 1e9;
                        double rate = n / Math.max(elapsed, 1e-9);
                        progress.accept(String.format(Locale.ROOT, "%s: %d/%d utterances (%.1f/s, ETA %s)", label, n,
                                utterances.size(), rate, eta((utterances.size() - n) / rate)));
                    }
                    return null;
                }));
            }
            for (Future<?> f : futures) f.get();
        } catch (ExecutionException e) {
            if (e.getCause() instanceof IOException io) throw io;
            if (e.getCause() instanceof RuntimeException re) throw re;
            throw new IOException(e.getCause());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted while synthesising " + label, e);
        } finally {
            pool.shutdownNow();
        }
        Path temp = manifest.resolveSibling(manifest.getFileName() + ".tmp");
        try (Writer writer = Files.newBufferedWriter(temp, StandardCharsets.UTF_8)) {
            for (int i = 0; i < lines.size(); i++) {
                lines.get(i).put("seconds", Math.round(seconds[i] * 1000) / 1000.0);
                writer.write(JSON.writeValueAsString(lines.get(i)));
                writer.write('\n');
            }
        }
        Files.move(temp, manifest, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        return seconds;
    }

    private static Summary summary(Path manifest, List<Utterance> utterances, double[] seconds, long start,
                                   Set<String> texts) {
        double total = 0, min = Double.MAX_VALUE, max = 0;
        for (double s : seconds) {
            total += s;
            min = Math.min(min, s);
            max = Math.max(max, s);
        }
        int mandarin = (int) utterances.stream().filter(u -> u.language().equals("zh")).count();
        return new Summary(manifest, utterances.size(), mandarin, total, min, max, (System.nanoTime() - start) / 1e9,
                Set.copyOf(texts));
    }

    /** espeak-ng → speed perturbation + resampling to 16 kHz → noise at the drawn SNR → peak ≤ 0.99. */
    static float[] render(Path espeak, Utterance u) throws IOException {
        Espeak.Audio speech = Espeak.synthesize(espeak, u.voice(), u.rate(), u.pitch(), u.spoken());
        // step 1: to 16 kHz, then speed: pretend the audio was recorded at 16000·speed Hz and resample it to 16 kHz.
        //         Two steps because their rate ratios have large gcds (22050:16000 → 320 filter phases,
        //         14400:16000 and 17600:16000 → 10), where 22050·0.9:16000 in one step needs 3200 (6x the time)
        float[] x = Resampler.resample(speech.samples(), speech.sampleRate(), SAMPLE_RATE);
        if (u.speed() != 1.0) x = Resampler.resample(x, (int) Math.round(SAMPLE_RATE * u.speed()), SAMPLE_RATE);
        // step 2: noise scaled to the power of the voiced samples (espeak pads with silence, which would dilute it)
        if (!Double.isNaN(u.snrDb())) addNoise(x, u.snrDb(), u.brownNoise(), u.noiseSeed());
        // step 3: never clip
        float peak = 0;
        for (float v : x) peak = Math.max(peak, Math.abs(v));
        if (peak > 0.99f) {
            float gain = 0.99f / peak;
            for (int i = 0; i < x.length; i++) x[i] *= gain;
        }
        return x;
    }

    /** Adds Gaussian white (or brown: leaky-integrated white) noise so that P_voiced / P_noise = 10^(snr/10). */
    static void addNoise(float[] x, double snrDb, boolean brown, long seed) {
        float peak = 0;
        for (float v : x) peak = Math.max(peak, Math.abs(v));
        double threshold = 0.01 * peak;
        double signalPower = 0;
        int voiced = 0;
        for (float v : x) {
            if (Math.abs(v) > threshold) {
                signalPower += v * (double) v;
                voiced++;
            }
        }
        if (voiced == 0) return;
        signalPower /= voiced;
        SplittableRandom random = new SplittableRandom(seed);
        double[] noise = new double[x.length];
        double state = 0, noisePower = 0;
        for (int i = 0; i < x.length; i++) {
            double white = gaussian(random);
            state = brown ? 0.98 * state + white : white;
            noise[i] = state;
            noisePower += state * state;
        }
        noisePower /= Math.max(1, x.length);
        double gain = StrictMath.sqrt(signalPower / StrictMath.pow(10, snrDb / 10) / Math.max(noisePower, 1e-30));
        for (int i = 0; i < x.length; i++) x[i] += (float) (gain * noise[i]);
    }

    /**
     * Box-Muller with StrictMath, so the noise depends only on SplittableRandom's documented stream and not on the
     * JVM's intrinsics: the same seed gives the same bytes on any machine.
     */
    private static double gaussian(SplittableRandom random) {
        double u1 = random.nextDouble(Double.MIN_VALUE, 1.0);
        double u2 = random.nextDouble();
        return StrictMath.sqrt(-2 * StrictMath.log(u1)) * StrictMath.cos(2 * Math.PI * u2);
    }

    /** Chinese characters → space-separated numbered pinyin (neutral tone 5, ü as v) for {@code cmn-latn-pinyin}. */
    public static String pinyin(String chinese) {
        HanyuPinyinOutputFormat format = new HanyuPinyinOutputFormat();
        format.setToneType(HanyuPinyinToneType.WITH_TONE_NUMBER);
        format.setVCharType(HanyuPinyinVCharType.WITH_V);
        format.setCaseType(HanyuPinyinCaseType.LOWERCASE);
        StringBuilder out = new StringBuilder();
        for (char c : chinese.toCharArray()) {
            String syllable = PINYIN_OVERRIDES.get(c);
            if (syllable == null) {
                String[] readings;
                try {
                    readings = PinyinHelper.toHanyuPinyinStringArray(c, format);
                } catch (BadHanyuPinyinOutputFormatCombination e) {
                    throw new IllegalStateException(e);
                }
                if (readings == null || readings.length == 0) {
                    if (Character.isWhitespace(c) || Character.getType(c) == Character.OTHER_PUNCTUATION) continue;
                    throw new IllegalArgumentException("no pinyin for '" + c + "' in \"" + chinese + "\"");
                }
                syllable = readings[0];
            }
            if (out.length() > 0) out.append(' ');
            out.append(syllable);
        }
        return out.toString();
    }

    private static String eta(double seconds) {
        long s = Math.round(Math.max(0, seconds));
        return String.format(Locale.ROOT, "%02d:%02d:%02d", s / 3600, (s / 60) % 60, s % 60);
    }

    /** SplitMix64 finaliser: decorrelates (seed, index) pairs. */
    private static long mix(long z) {
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }

    /** The espeak-ng command-line program. */
    static final class Espeak {

        /** espeak's output: 16-bit mono samples as floats in [-1, 1]. */
        record Audio(float[] samples, int sampleRate) {
        }

        private Espeak() {}

        /** espeak-ng on PATH (or {@code XLLM_ESPEAK}); a clear error naming the install command when absent. */
        static Path locate() throws IOException {
            return locate(System.getenv());
        }

        static Path locate(Map<String, String> environment) throws IOException {
            String override = environment.get("XLLM_ESPEAK");
            if (override != null && !override.isBlank()) {
                Path path = Path.of(override);
                if (Files.isExecutable(path)) return path;
                throw new IOException("XLLM_ESPEAK=" + override + " is not an executable; " + INSTALL_HINT);
            }
            String pathVariable = environment.getOrDefault("PATH", "/usr/bin:/bin");
            for (String dir : pathVariable.split(File.pathSeparator)) {
                if (dir.isEmpty()) continue;
                Path candidate = Path.of(dir, "espeak-ng");
                if (Files.isExecutable(candidate)) return candidate;
            }
            throw new IOException("espeak-ng not found on PATH; " + INSTALL_HINT);
        }

        /** Runs {@code espeak-ng -v voice -s rate -p pitch --stdout text} and decodes the WAV it prints. */
        static Audio synthesize(Path espeak, String voice, int rate, int pitch, String text) throws IOException {
            List<String> command = List.of(espeak.toString(), "-v", voice, "-s", Integer.toString(rate),
                    "-p", Integer.toString(pitch), "--stdout", text);
            Process process = new ProcessBuilder(command).start();
            byte[] bytes;
            byte[] errors;
            try (InputStream stdout = process.getInputStream(); InputStream stderr = process.getErrorStream()) {
                process.getOutputStream().close();
                bytes = stdout.readAllBytes();
                errors = stderr.readAllBytes();
                int exit = process.waitFor();
                if (exit != 0 || bytes.length <= 44) {
                    throw new IOException("espeak-ng failed (exit " + exit + ") for voice " + voice + " and \"" + text
                            + "\": " + new String(errors, StandardCharsets.UTF_8).strip());
                }
            } catch (InterruptedException e) {
                process.destroyForcibly();
                Thread.currentThread().interrupt();
                throw new IOException("interrupted while running espeak-ng", e);
            }
            return decode(bytes, "espeak-ng -v " + voice);
        }

        /**
         * espeak-ng's --stdout WAV: a 44-byte header whose size fields are placeholders (it streams), so the samples
         * are simply the rest of the output.
         */
        static Audio decode(byte[] bytes, String source) throws IOException {
            ByteBuffer b = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
            String riff = new String(bytes, 0, 4, StandardCharsets.US_ASCII);
            String wave = new String(bytes, 8, 4, StandardCharsets.US_ASCII);
            String data = new String(bytes, 36, 4, StandardCharsets.US_ASCII);
            int format = b.getShort(20), channels = b.getShort(22), rate = b.getInt(24), bits = b.getShort(34);
            if (!riff.equals("RIFF") || !wave.equals("WAVE") || !data.equals("data") || format != 1 || channels != 1
                    || bits != 16 || rate <= 0) {
                throw new IOException(source + ": unexpected output, not a 16-bit mono PCM WAV stream (format "
                        + format + ", " + channels + " channels, " + bits + " bits, " + rate + " Hz)");
            }
            int count = (bytes.length - 44) / 2;
            float[] samples = new float[count];
            for (int i = 0; i < count; i++) samples[i] = b.getShort(44 + 2 * i) / 32768f;
            return new Audio(samples, rate);
        }
    }
}
