package xllm.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import xllm.data.AsrSample;
import xllm.speech.CharVocabulary;
import xllm.speech.CifAsrConfig;
import xllm.speech.CifAsrModel;
import xllm.speech.Cmvn;
import xllm.speech.WavWriter;
import xllm.train.MetricsLog;
import xllm.train.StageConfig;
import xllm.train.StageRunner;
import xllm.train.TrainingTask;

import java.io.PrintStream;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The speech interface end to end at tiny size: a frozen (random) CIF ASR checkpoint, the C-Former and S-Adapter
 * trained through the tiny random Llama on the four espeak-ng clips of the ASR fixtures.
 */
class SpeechInterfaceTest {

    private static final Path RECIPE = Path.of("recipes/tiny-speech.yaml");
    private static final Path CLIPS = Path.of("src/test/resources/fixtures/asr/manifest.jsonl");
    private static final PrintStream QUIET = new PrintStream(PrintStream.nullOutputStream());

    /** A random tiny CIF ASR model saved as a checkpoint, with CMVN from the four clips. */
    static Path asrCheckpoint(Path dir) throws Exception {
        try (NDManager manager = NDManager.newBaseManager()) {
            List<AsrSample> clips = AsrSample.readManifest(CLIPS);
            List<float[][]> fbanks = new ArrayList<>();
            List<String> texts = new ArrayList<>();
            for (AsrSample s : clips) {
                fbanks.add(CifAsrModel.fbank(s.audio()));
                texts.add(s.text());
            }
            CifAsrModel.initialise(CifAsrConfig.tiny(), CharVocabulary.build(texts), Cmvn.compute(fbanks), 3, manager).save(dir);
        }
        return dir;
    }

    private static StageConfig recipe(Path asr, Path output, String... overrides) {
        List<String> all = new ArrayList<>(List.of("model.speechEncoder=" + asr, "output=" + output));
        all.addAll(List.of(overrides));
        return StageConfig.load(RECIPE, all);
    }

    static void train(StageConfig config) throws Exception {
        try (NDManager manager = NDManager.newBaseManager(); TrainingTask<?, ?> task = xllm.train.StageAssembly.assemble(config, manager)) {
            new StageRunner(config, QUIET).run(task, false);
        }
    }

    static SpeechInterface tiny(Path asr, NDManager manager) throws java.io.IOException {
        return SpeechInterface.create(asr.toString(), SpeechInterface.cformerConfig("tiny"), null, 48, 7, manager);
    }

    @Test
    void speechTokensComeFromTheCifAndReachTheLlmWidth(@TempDir Path dir) throws Exception {
        Path asr = asrCheckpoint(dir.resolve("asr"));
        try (NDManager manager = NDManager.newBaseManager();
             SpeechInterface speech = tiny(asr, manager);
             CifAsrModel reference = CifAsrModel.load(asr)) {
            List<Features> prepared = new ArrayList<>();
            for (AsrSample s : AsrSample.readManifest(CLIPS)) prepared.add(speech.prepare(s.audio()));
            List<Features> fired = speech.encode(prepared, manager);
            // each utterance's token count is the CIF's own count, batched or alone
            for (int i = 0; i < prepared.size(); i++) {
                Features alone = speech.encode(List.of(prepared.get(i)), manager).get(0);
                assertArrayEquals(alone.shape(), fired.get(i).shape(), "utterance " + i + " fires the same tokens alone");
                for (int k = 0; k < alone.values().length; k++) assertEquals(alone.values()[k], fired.get(i).values()[k], 1e-4f);
                float[][] fbank = CifAsrModel.fbank(AsrSample.readManifest(CLIPS).get(i).audio());
                CifAsrModel.Padded one = CifAsrModel.pad(java.util.Collections.singletonList(reference.features(
                        AsrSample.readManifest(CLIPS).get(i).audio())));
                long count = reference.encodeAndFire(one.toArray(manager, 80), one.lengths()).counts()[0];
                assertArrayEquals(new long[] {count, speech.tokenWidth()}, fired.get(i).shape());
                assertTrue(fbank.length > 0);
            }
            List<NDArray> vectors = speech.adapt(fired, manager);
            for (int i = 0; i < vectors.size(); i++) {
                assertArrayEquals(new long[] {fired.get(i).length(), 48}, vectors.get(i).getShape().getShape());
            }
            assertTrue(fired.stream().anyMatch(f -> f.length() > 0), "a random CIF fires on speech");
            assertTrue(speech.parameters().stream().allMatch(p -> p.name().startsWith("speechInterface.")));
            assertEquals(asr.toString(), speech.config().source());
        }
    }

    @Test
    void stageTwoLearnsThroughTheFrozenLlmAndTheCacheChangesNothing(@TempDir Path dir) throws Exception {
        Path asr = asrCheckpoint(dir.resolve("asr"));
        Path plain = dir.resolve("plain"), cached = dir.resolve("cached");
        train(recipe(asr, plain, "steps=12"));
        train(recipe(asr, cached, "steps=12", "featureCache=true"));
        List<Map<String, Object>> a = MetricsLog.read(MetricsLog.in(plain));
        List<Map<String, Object>> b = MetricsLog.read(MetricsLog.in(cached));
        for (int i = 0; i < 12; i++) {
            assertEquals(((Number) a.get(i).get("loss")).doubleValue(), ((Number) b.get(i).get("loss")).doubleValue(), 1e-4,
                    "loss at step " + (i + 1));
        }
        double first = ((Number) a.get(0).get("loss")).doubleValue();
        double last = ((Number) a.get(11).get("loss")).doubleValue();
        // the checkpoint answers about a WAV through MediaChat, and refuses other media naming itself
        Path checkpoint;
        try (var dirs = java.nio.file.Files.list(plain.resolve("checkpoints"))) {
            checkpoint = dirs.sorted().reduce((x, y) -> y).orElseThrow();
        }
        try (NDManager manager = NDManager.newBaseManager(); XLlm model = XLlm.load(checkpoint, manager)) {
            assertEquals(java.util.Set.of(Modality.SPEECH), model.modalities());
            var completion = new Conversation(model).ask(Map.of(Modality.SPEECH, AsrSample.readManifest(CLIPS).get(0).audio()),
                    PromptTemplate.ASR_INSTRUCTION, xllm.llm.Generator.Options.greedy(5), null);
            assertTrue(completion.tokenIds().length > 0, "generates from the spliced speech prompt");
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> model.interfaceOf(Modality.IMAGE));
            assertTrue(e.getMessage().contains("no image interface") && e.getMessage().contains("--audio"), e.getMessage());
        }
        assertTrue(last < first * 0.9, "loss falls (the tiny random Llama learns slowly: ~7.5 -> ~6.4 in 12 steps): " + first + " -> " + last);
    }

    /** Low white noise, {@code seconds} long at 16 kHz (fixed seed). */
    private static float[] noise(double seconds) {
        java.util.Random random = new java.util.Random(3);
        float[] samples = new float[(int) Math.round(seconds * 16_000)];
        for (int i = 0; i < samples.length; i++) samples[i] = (float) (0.05 * random.nextGaussian());
        return samples;
    }

    @Test
    void audioLongerThanTheCFormerTakesIsRefusedBeforeTheEncoder(@TempDir Path dir) throws Exception {
        Path asr = asrCheckpoint(dir.resolve("asr"));
        try (NDManager manager = NDManager.newBaseManager();
             SpeechInterface speech = tiny(asr, manager)) {
            // tiny ASR: 10 ms fbank frames, 4x subsampling = one encoder frame per 40 ms, at most one CIF token each;
            // 512 C-Former positions therefore hold 20.48 s
            Path tooLong = dir.resolve("long.wav");
            WavWriter.write(tooLong, noise(25), 16_000);
            java.io.IOException error = assertThrows(java.io.IOException.class, () -> speech.prepare(tooLong));
            assertTrue(error.getMessage().startsWith(tooLong + ": "), error.getMessage());
            assertTrue(error.getMessage().contains("25.00 s"), error.getMessage());
            assertTrue(error.getMessage().contains("20.48 s") && error.getMessage().contains("512"), error.getMessage());
            // just under the limit every step runs, the C-Former included
            Path fits = dir.resolve("fits.wav");
            WavWriter.write(fits, noise(20.4), 16_000);
            List<Features> fired = speech.encode(List.of(speech.prepare(fits)), manager);
            NDArray embeddings = speech.adapt(fired, manager).get(0);
            assertEquals(48, embeddings.getShape().get(1));
        }
    }
}
