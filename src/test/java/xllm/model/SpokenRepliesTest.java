package xllm.model;

import xllm.data.SpokenReplies;

import ai.djl.ndarray.NDManager;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import xllm.data.ConversationSample;
import xllm.llm.ChatTemplate;
import xllm.llm.Generator;
import xllm.llm.LanguageModel;
import xllm.data.AsrSample;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Spoken-question data and prompts: the spoken turn is the chat template with the speech in the user's text slot, and
 * {@code bootstrap replies} writes the frozen LLM's own replies (tiny random Llama, four ASR fixture clips).
 */
class SpokenRepliesTest {

    private static final Path TINY_LLM = Path.of("src/test/resources/fixtures/llm/tiny-llama");
    private static final Path CLIPS = Path.of("src/test/resources/fixtures/asr/manifest.jsonl");

    @Test
    void firstSentenceEndsAtTheFirstFullStopFollowedBySpaceOrEnd() {
        assertEquals("A dog has four legs.", SpokenReplies.firstSentence(" A dog has four legs. Cats do too."));
        assertEquals("It costs 3.50 dollars!", SpokenReplies.firstSentence("It costs 3.50 dollars! Cheap."));
        assertEquals("Is it blue?", SpokenReplies.firstSentence("Is it blue?"));
        assertEquals("no end in sight", SpokenReplies.firstSentence("no end in sight  "));
        assertEquals("", SpokenReplies.firstSentence("  "));
        assertTrue(SpokenReplies.isMandarin("桌子上有七个苹果"));
        assertFalse(SpokenReplies.isMandarin("seven apples"));
    }

    @Test
    void repliesAreTheFrozenLlmsOwnFirstSentencesAndTrainTheSpeechInterface(@TempDir Path dir) throws Exception {
        // the replies manifest sits beside its audio, as README's commands write it (media stay in its tree)
        Path corpus = Files.createDirectories(dir.resolve("corpus"));
        try (var files = Files.list(CLIPS.getParent())) {
            for (Path file : files.toList()) Files.copy(file, corpus.resolve(file.getFileName().toString()));
        }
        Path asrManifest = corpus.resolve(CLIPS.getFileName().toString());
        Path manifest = corpus.resolve("replies.jsonl");
        List<AsrSample> clips = AsrSample.readManifest(asrManifest);
        try (NDManager manager = NDManager.newBaseManager(); LanguageModel llm = LanguageModel.open(TINY_LLM, manager)) {
            java.io.IOException outside = org.junit.jupiter.api.Assertions.assertThrows(java.io.IOException.class,
                    () -> SpokenReplies.write(llm, asrManifest, dir.resolve("elsewhere/replies.jsonl"), true, 3, 2, 6));
            assertTrue(outside.getMessage().contains("outside"), outside.getMessage());
            long before;
            try (var files = Files.list(corpus)) {
                before = files.count();
            }
            // batch 1, so the replies below are regenerated with the same kernels: a batch of 2 pads the shorter prompt
            // and may break a float32 near-tie the other way (batched = alone is LlamaModelTest's, with its tie rule)
            SpokenReplies.Summary summary = SpokenReplies.write(llm, asrManifest, manifest, true, 3, 1, 6);
            assertEquals(4, summary.asrSamples());
            assertEquals(3, summary.distinctTexts());
            assertEquals(3, summary.replySamples() + summary.skipped());
            try (var files = Files.list(corpus)) {
                assertEquals(before + 1, files.count(), "no partial file is left beside the manifest");
            }
            List<ConversationSample> samples = ConversationSample.readManifest(manifest);
            assertEquals(4 + summary.replySamples(), samples.size());
            Generator.Options greedy = new Generator.Options(6, xllm.llm.Sampler.Options.greedy(), List.of("\n"));
            int replies = 0;
            for (ConversationSample s : samples) {
                AsrSample clip = clips.stream().filter(c -> s.id().startsWith(c.id() + "-")).findFirst().orElseThrow();
                assertEquals(clip.audio().toAbsolutePath().normalize(), s.audio().toAbsolutePath().normalize());
                if (s.id().endsWith("-asr")) {
                    assertEquals(PromptTemplate.ASR_INSTRUCTION, s.question());
                    assertEquals(clip.text(), s.answer());
                } else {
                    replies++;
                    assertEquals("", s.question(), "the speech is the user's whole turn");
                    long[] prompt = llm.chatPrompt(List.of(new ChatTemplate.Message("user", clip.text())));
                    String own = llm.generator().generate(List.of(prompt), greedy, null).get(0).text();
                    assertEquals(SpokenReplies.firstSentence(own), s.answer(), "the LLM's own reply to the transcript");
                }
            }
            assertEquals(summary.replySamples(), replies);
        }
        // the mixed manifest trains through the tiny speech recipe, and the checkpoint answers a WAV with no question
        Path asr = SpeechInterfaceTest.asrCheckpoint(dir.resolve("asr"));
        Path output = dir.resolve("run");
        SpeechInterfaceTest.train(xllm.train.StageConfig.load(Path.of("recipes/tiny-speech.yaml"), List.of(
                "model.speechEncoder=" + asr, "output=" + output, "data.train=" + manifest.toAbsolutePath(), "steps=6")));
        Path checkpoint;
        try (var dirs = Files.list(output.resolve("checkpoints"))) {
            checkpoint = dirs.sorted().reduce((x, y) -> y).orElseThrow();
        }
        try (NDManager manager = NDManager.newBaseManager(); XLlm chat = XLlm.load(checkpoint, manager)) {
            Path wav = clips.get(0).audio();
            Generator.Completion spoken = new Conversation(chat).ask(java.util.Map.of(Modality.SPEECH, wav), "",
                    Generator.Options.greedy(3), null);
            Generator.Completion asked = new Conversation(chat).ask(java.util.Map.of(Modality.SPEECH, wav),
                    PromptTemplate.ASR_INSTRUCTION, Generator.Options.greedy(3), null);
            // same speech tokens, different text around them: the spoken question stands where the question goes
            var tokenizer = chat.llm().tokenizer();
            long speechTokens = asked.promptTokens() - tokenizer.encode("<Speech>").length
                    - tokenizer.encode("</Speech>Question: " + PromptTemplate.ASR_INSTRUCTION + "\n Answer:").length;
            assertTrue(speechTokens > 0, "CIF tokens in the prompt: " + speechTokens);
            assertEquals(tokenizer.encode("Question: <Speech>").length + speechTokens
                    + tokenizer.encode("</Speech>\n Answer:").length, spoken.promptTokens());
            // eval spoken: the reply rows are asked with no typed text and scored by exact match and WER
            var scores = xllm.eval.ImageQaEvaluation.run(chat, manifest, 0, "reply", null);
            var row = scores.get("reply/en");
            int replies = (int) Files.readAllLines(manifest).stream().filter(l -> l.contains("\"task\":\"reply\"")).count();
            assertEquals(replies, row.total());
            assertTrue(row.wer() >= 0 && Double.isFinite(row.wer()), "a WER for spoken questions: " + row.wer());
            assertEquals(row.wer(), scores.get("overall").wer(), 1e-12);
            assertTrue(Double.isNaN(xllm.eval.ImageQaEvaluation.run(chat, manifest, 0, "asr", null).get("overall").wer()),
                    "typed-instruction rows get no reply WER");
        }
    }
}
