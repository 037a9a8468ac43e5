package xllm.data;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import xllm.llm.ChatTemplate;
import xllm.llm.Generator;
import xllm.llm.LanguageModel;
import xllm.data.AsrSample;

import java.io.BufferedWriter;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Behaviour-alignment data for the speech interface: for each utterance of an ASR manifest, the frozen LLM's own
 * greedy chat reply to its transcript (first sentence). Trained as a spoken turn ({@link SpokenTurn}: the speech is the
 * user's whole message, the target that reply), the interface learns to make the LLM do with the speech what it does
 * with the typed text — answer a question, rather than transcribe it as the ASR instruction alone teaches. The
 * targets come from the frozen LLM and the transcripts only: no labelled question-answer data, no other modality.
 *
 * <p>Writes a LLaVA-style manifest: per utterance a {@code "task": "reply"} sample (human turn {@code <audio>} only,
 * gpt turn the reply, {@code "text"} the transcript) and, with {@code withTranscripts}, first its ASR sample (human
 * turn {@code <audio>} and the paper's ASR instruction, gpt turn the transcript), so one manifest trains both. An
 * utterance's {@code "keywords"} (words of a right answer) are copied to its reply sample, for {@code eval spoken}.
 */
public final class SpokenReplies {

    /** What was written. */
    public record Summary(Path manifest, int asrSamples, int replySamples, int distinctTexts, int skipped, double seconds) {}

    private static final ObjectMapper JSON = new ObjectMapper();

    private SpokenReplies() {}

    /**
     * @param replies   reply samples for the first this many non-Mandarin utterances (0 = all of them)
     * @param batch     replies generated together
     * @param maxTokens most tokens per reply before the first sentence is cut
     */
    public static Summary write(LanguageModel llm, Path asrManifest, Path out, boolean withTranscripts, int replies,
                                int batch, int maxTokens) throws IOException {
        if (batch < 1 || maxTokens < 1 || replies < 0) throw new IllegalArgumentException("batch, max tokens must be ≥ 1, replies ≥ 0");
        long start = System.nanoTime();
        List<AsrSample> samples = AsrSample.readManifest(asrManifest);
        Path outDir = out.toAbsolutePath().normalize().getParent();
        for (AsrSample s : samples) { // the readers' own rule, applied before the LLM runs rather than by the first reader
            xllm.data.MediaPaths.resolve(out, outDir.relativize(s.audio().toAbsolutePath().normalize()).toString(), "audio",
                    out.toString());
        }
        Map<String, com.fasterxml.jackson.databind.JsonNode> keywords = new java.util.HashMap<>(); // id -> "keywords"
        for (String row : Files.readAllLines(asrManifest, StandardCharsets.UTF_8)) {
            if (row.isBlank()) continue;
            com.fasterxml.jackson.databind.JsonNode node = JSON.readTree(row);   // readManifest has validated it
            if (node.has("keywords")) keywords.put(node.get("id").asText(), node.get("keywords"));
        }
        List<AsrSample> asked = new ArrayList<>();
        for (AsrSample s : samples) {
            if (replies > 0 && asked.size() == replies) break;
            if (!isMandarin(s.text())) asked.add(s);
        }
        Map<String, String> replyByText = new LinkedHashMap<>();
        for (AsrSample s : asked) replyByText.put(s.text(), null);
        List<String> texts = new ArrayList<>(replyByText.keySet());
        ProgressBar progress = ProgressBar.stderr(texts.size(), "transcript");
        progress.start(0);
        Generator.Options options = new Generator.Options(maxTokens, xllm.llm.Sampler.Options.greedy(), List.of("\n"));
        for (int from = 0; from < texts.size(); from += batch) {
            List<String> chunk = texts.subList(from, Math.min(texts.size(), from + batch));
            List<long[]> prompts = new ArrayList<>();
            for (String text : chunk) prompts.add(llm.chatPrompt(List.of(new ChatTemplate.Message("user", text))));
            List<Generator.Completion> completions = llm.generator().generate(prompts, options, null);
            for (int i = 0; i < chunk.size(); i++) replyByText.put(chunk.get(i), firstSentence(completions.get(i).text()));
            progress.update(from + chunk.size(), Double.NaN, Double.NaN, chunk.size());
        }
        progress.finish();

        Path base = out.toAbsolutePath().getParent();
        Files.createDirectories(base);
        Path temporary = Files.createTempFile(base, out.getFileName().toString(), ".partial");
        int asrWritten = 0, replyWritten = 0, skipped = 0;
        java.util.Set<AsrSample> askedSet = new java.util.HashSet<>(asked);
        try (BufferedWriter writer = Files.newBufferedWriter(temporary, StandardCharsets.UTF_8)) {
            for (AsrSample s : samples) {
                String audio = base.relativize(s.audio().toAbsolutePath()).toString();
                if (withTranscripts) {
                    writer.write(line(s.id() + "-asr", audio, "asr", s.text(),
                            "<audio>\n" + xllm.model.PromptTemplate.ASR_INSTRUCTION, s.text(), null));
                    asrWritten++;
                }
                if (!askedSet.contains(s)) continue;
                String reply = replyByText.get(s.text());
                if (reply.isEmpty()) {          // the LLM said nothing usable: reported, not trained on
                    skipped++;
                    continue;
                }
                writer.write(line(s.id() + "-reply", audio, "reply", s.text(), "<audio>", reply, keywords.get(s.id())));
                replyWritten++;
            }
        } catch (IOException | RuntimeException e) {
            Files.deleteIfExists(temporary);
            throw e;
        }
        Files.move(temporary, out, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        return new Summary(out, asrWritten, replyWritten, texts.size(), skipped, (System.nanoTime() - start) / 1e9);
    }

    /** The reply up to its first sentence end ({@code .!?} then a space or the end), stripped. */
    public static String firstSentence(String reply) {
        String text = reply.strip();
        for (int i = 0; i < text.length(); i++) {
            char c = text.charAt(i);
            if ((c == '.' || c == '!' || c == '?') && (i + 1 == text.length() || Character.isWhitespace(text.charAt(i + 1)))) {
                return text.substring(0, i + 1);
            }
        }
        return text;
    }

    public static boolean isMandarin(String text) {
        return text.codePoints().anyMatch(c -> Character.UnicodeScript.of(c) == Character.UnicodeScript.HAN);
    }

    private static String line(String id, String audio, String task, String text, String human, String gpt,
                               com.fasterxml.jackson.databind.JsonNode keywords) throws IOException {
        ObjectNode node = JSON.createObjectNode();
        node.put("id", id);
        node.put("audio", audio);
        node.put("task", task);
        node.put("language", isMandarin(text) ? "zh" : "en");
        node.put("text", text);
        var conversations = node.putArray("conversations");
        conversations.addObject().put("from", "human").put("value", human);
        conversations.addObject().put("from", "gpt").put("value", gpt);
        if (keywords != null) node.set("keywords", keywords);
        return JSON.writeValueAsString(node) + "\n";
    }
}
