package xllm.data;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import xllm.speech.WavReader;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * The espeak-ng corpus: readable 16 kHz WAVs of plausible length, eval text disjoint from train, byte-identical
 * reruns, augmentation doing what it says. Requires espeak-ng (never skipped: CI without it proves nothing).
 */
class SyntheticSpeechTest {

    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path dir;

    @BeforeAll
    static void espeakInstalled() {
        try {
            SyntheticSpeech.Espeak.locate();
        } catch (IOException e) {
            fail("SyntheticSpeechTest needs espeak-ng: " + e.getMessage());
        }
    }

    @Test
    void tinyCorpusIsReadableDisjointAndDeterministic() throws Exception {
        Path a = dir.resolve("a");
        SyntheticSpeech.Summary train = SyntheticSpeech.generate(a, "train", 2, 1, 5, Set.of(), 2, line -> { });
        SyntheticSpeech.Summary eval = SyntheticSpeech.generate(a, "eval", 1, 0, 5, train.texts(), 2, line -> { });
        assertEquals(3, train.utterances());
        assertEquals(1, train.mandarin());
        List<JsonNode> trainLines = lines(train.manifest());
        List<JsonNode> evalLines = lines(eval.manifest());
        assertEquals(3, trainLines.size());
        assertEquals(1, evalLines.size());
        List<JsonNode> all = new ArrayList<>(trainLines);
        all.addAll(evalLines);
        for (JsonNode line : all) {
            Path wav = a.resolve(line.get("audio").asText());
            WavReader.Audio audio = WavReader.read(wav);
            assertEquals(16_000, audio.sampleRate(), wav.toString());
            assertTrue(audio.seconds() > 0.8 && audio.seconds() < 7, wav + " lasts " + audio.seconds() + " s");
            assertEquals(line.get("seconds").asDouble(), audio.seconds(), 1e-3);
            double energy = 0;
            for (float s : audio.samples()) energy += s * s;
            assertTrue(Math.sqrt(energy / audio.samples().length) > 0.01, wav + " is nearly silent");
            assertFalse(line.get("text").asText().isBlank());
        }
        assertEquals("zh", trainLines.get(2).get("language").asText());
        assertTrue(trainLines.get(2).get("text").asText().codePoints().allMatch(c -> c >= 0x4E00 && c <= 0x9FFF),
                trainLines.get(2).get("text").asText());
        assertTrue(trainLines.get(2).get("voice").asText().startsWith("cmn-latn-pinyin"));
        assertEquals("en", trainLines.get(0).get("language").asText());
        assertTrue(trainLines.get(0).get("text").asText().matches("[a-z' ]+"), trainLines.get(0).toString());
        for (JsonNode line : trainLines) assertFalse(eval.texts().contains(line.get("text").asText()));

        // same seed: byte-identical manifests and audio (espeak-ng is deterministic)
        Path b = dir.resolve("b");
        SyntheticSpeech.Summary again = SyntheticSpeech.generate(b, "train", 2, 1, 5, Set.of(), 1, line -> { });
        assertArrayEquals(Files.readAllBytes(train.manifest()), Files.readAllBytes(again.manifest()));
        for (JsonNode line : trainLines) {
            String audio = line.get("audio").asText();
            assertArrayEquals(Files.readAllBytes(a.resolve(audio)), Files.readAllBytes(b.resolve(audio)), audio);
        }
    }

    @Test
    void excludedSentencesAreRedrawnAndTheGrammarIsLargeEnough() {
        // exclude the sentences a stream would give first: the draw skips them and returns the next new one
        Set<String> firstTen = new java.util.HashSet<>();
        SplittableRandom probe = new SplittableRandom(11);
        for (int i = 0; i < 10; i++) firstTen.add(SpeechSentences.english(probe));
        String drawn = SyntheticSpeech.drawText(new SplittableRandom(11), SpeechSentences::english, firstTen);
        assertFalse(firstTen.contains(drawn), drawn);
        // enough distinct sentences that a 2000-utterance train split is mostly unique
        Set<String> texts = new java.util.HashSet<>();
        SplittableRandom r = new SplittableRandom(3);
        for (int i = 0; i < 2000; i++) texts.add(SpeechSentences.english(r));
        assertTrue(texts.size() > 1500, "grammar too small: " + texts.size() + " distinct of 2000");
    }

    @Test
    void generalQuestionsNeverDrawTheHeldOutOnesButUseTheirWords() {
        Set<String> texts = new java.util.HashSet<>();
        SplittableRandom r = new SplittableRandom(5);
        for (int i = 0; i < 20_000; i++) texts.add(SpeechSentences.question(r));
        for (String held : SpeechSentences.HELD_OUT_QUESTIONS) {
            assertFalse(texts.contains(held), held + " was drawn");
            java.util.Set<String> unseen = new java.util.HashSet<>(List.of(held.split(" ")));
            for (String t : texts) unseen.removeAll(List.of(t.split(" ")));
            assertTrue(unseen.isEmpty(), "every word of '" + held + "' occurs in other questions; not: " + unseen);
        }
        assertTrue(texts.contains("how many legs does an elephant have") && texts.contains("what do you use an oven for"),
                "the article follows the noun");
        assertTrue(texts.stream().noneMatch(t -> t.matches(".*\\ba [aeiou].*")), "no 'a' before a vowel");
        assertTrue(texts.size() > 1000, "question grammar too small: " + texts.size());
    }

    @Test
    void speedPerturbationScalesDurationAndNoiseHitsItsSnr() throws Exception {
        Path espeak = SyntheticSpeech.Espeak.locate();
        SyntheticSpeech.Utterance slow = new SyntheticSpeech.Utterance("x", "en", "one two three four five",
                "one two three four five", "en-us", 160, 50, 0.9, Double.NaN, false, 1);
        SyntheticSpeech.Utterance fast = new SyntheticSpeech.Utterance("x", "en", "one two three four five",
                "one two three four five", "en-us", 160, 50, 1.1, Double.NaN, false, 1);
        double ratio = SyntheticSpeech.render(espeak, slow).length / (double) SyntheticSpeech.render(espeak, fast).length;
        assertEquals(1.1 / 0.9, ratio, 0.001);

        float[] tone = new float[16_000];
        for (int i = 0; i < tone.length; i++) tone[i] = (float) (0.3 * Math.sin(2 * Math.PI * 440 * i / 16_000.0));
        for (boolean brown : new boolean[]{false, true}) {
            float[] noisy = tone.clone();
            SyntheticSpeech.addNoise(noisy, 12.0, brown, 99);
            double signal = 0, noise = 0;
            for (int i = 0; i < tone.length; i++) {
                signal += tone[i] * (double) tone[i];
                noise += (noisy[i] - tone[i]) * (double) (noisy[i] - tone[i]);
            }
            // every sample of the tone counts as voiced except the few near zero crossings
            assertEquals(12.0, 10 * Math.log10(signal / noise), 0.3, brown ? "brown" : "white");
        }
    }

    @Test
    void pinyinUsesNumberedTonesAndPinnedPolyphones() {
        assertEquals("lv4 se4 de5 chang2 fang1 xing2", SyntheticSpeech.pinyin("绿色的长方形"));
        assertEquals("san1 zhi1 mao1", SyntheticSpeech.pinyin("三只猫"));
        assertEquals("qing3 shu3 yi1 shu3 you3 duo1 shao3 ge4", SyntheticSpeech.pinyin("请数一数有多少个"));
        // every sentence the grammar can produce has one syllable per character
        SplittableRandom r = new SplittableRandom(1);
        for (int i = 0; i < 3000; i++) {
            String sentence = SpeechSentences.mandarin(r);
            assertEquals(sentence.length(), SyntheticSpeech.pinyin(sentence).split(" ").length, sentence);
        }
        assertEquals("three hundred and forty two", SpeechSentences.numberWords(342));
        assertEquals("二十五", SpeechSentences.numberChinese(25));
        assertEquals("十二", SpeechSentences.numberChinese(12));
    }

    @Test
    void missingEspeakNamesTheInstallCommand() {
        IOException e = assertThrows(IOException.class,
                () -> SyntheticSpeech.Espeak.locate(Map.of("PATH", dir.resolve("empty").toString())));
        assertTrue(e.getMessage().contains("apt-get install espeak-ng"), e.getMessage());
    }

    @Test
    void spokenSceneQuestionsPointAtTheirImages() throws Exception {
        SyntheticScenes.Summary scenes = SyntheticScenes.generate(dir.resolve("scenes"), 1, 4, "train");
        Path out = dir.resolve("speech");
        SyntheticSpeech.Summary summary = SyntheticSpeech.speakQuestions(scenes.manifest(), out, 4, 2, line -> { });
        assertEquals(scenes.samples(), summary.utterances());
        assertEquals(out.resolve("questions-train.jsonl"), summary.manifest());
        for (JsonNode line : lines(summary.manifest())) {
            assertTrue(Files.isRegularFile(out.resolve(line.get("image").asText())), line.toString());
            assertEquals("../scenes/images/scene-train-000000.png", line.get("image").asText());
            assertEquals(16_000, WavReader.read(out.resolve(line.get("audio").asText())).sampleRate());
            String text = line.get("text").asText();
            if (line.get("language").asText().equals("en")) {
                assertTrue(text.matches("[a-z ]+"), text);
                assertEquals(line.get("question").asText().toLowerCase().replaceAll("[?.]", ""), text);
            } else {
                assertFalse(text.contains("？"), text);
            }
        }
    }

    @Test
    void sceneQuestionsInTheWrongTurnOrderAreRefusedNamingTheLine() throws Exception {
        Path scenes = Files.createDirectories(dir.resolve("scenes"));
        Path manifest = Files.write(scenes.resolve("eval.jsonl"), List.of(
                "{\"id\": \"s0\", \"image\": \"a.png\", \"conversations\": [{\"from\": \"human\", \"value\": "
                        + "\"<image>\\nHow many circles?\"}, {\"from\": \"gpt\", \"value\": \"Two.\"}]}",
                "{\"id\": \"s1\", \"image\": \"a.png\", \"conversations\": [{\"from\": \"gpt\", \"value\": \"Two.\"}, "
                        + "{\"from\": \"human\", \"value\": \"<image>\\nHow many circles?\"}]}"));
        IOException e = assertThrows(IOException.class,
                () -> SyntheticSpeech.speakQuestions(manifest, dir.resolve("speech"), 4, 1, line -> { }));
        assertTrue(e.getMessage().startsWith(manifest + ":2: "), e.getMessage());
        assertTrue(e.getMessage().contains("human turn then one gpt turn"), e.getMessage());
    }

    private static List<JsonNode> lines(Path manifest) throws IOException {
        List<JsonNode> out = new ArrayList<>();
        try (Stream<String> rows = Files.lines(manifest, StandardCharsets.UTF_8)) {
            for (String row : (Iterable<String>) rows::iterator) out.add(JSON.readTree(row));
        }
        return out;
    }
}
