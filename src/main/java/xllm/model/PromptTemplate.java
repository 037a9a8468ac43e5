package xllm.model;

import ai.djl.ndarray.NDArray;
import xllm.llm.LanguageModel;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * The paper's prompt (§3.1, DESIGN.md §1), one place for training and inference so they cannot drift apart. Each turn
 * is {@code <Image>{image}</Image><Video>{video}</Video><Speech>{speech}</Speech>Question: {question}\n Answer:}
 * with the media the turn has, then {@code " {answer}"} and the LLM's end-of-sequence token; a conversation is its
 * turns in order. When the speech is the question (no typed text) it stands where the question's words go:
 * {@code Question: <Speech>{speech}</Speech>\n Answer:}, so an interface aligned to read speech as its transcript
 * reads a spoken question as the typed one.
 */
public final class PromptTemplate {

    /** The template as config.json records it. */
    public static final String TEXT = "<Image>{image}</Image><Video>{video}</Video><Speech>{speech}</Speech>Question: "
            + "{question}\\n Answer: {answer}<eos>; spoken question: Question: <Speech>{speech}</Speech>\\n Answer:";
    /** The paper's ASR instruction (§3.2.2). */
    public static final String ASR_INSTRUCTION = "Please faithfully recognize the speech.";
    /** The paper's multimodal ASR instruction (§4.2): the image is context for the speech. */
    public static final String MULTIMODAL_ASR_INSTRUCTION = "Please faithfully recognize the speech based on the image.";

    private final LanguageModel llm;

    PromptTemplate(LanguageModel llm) {
        this.llm = llm;
    }

    /** One prompt row and the token ids of its text (for the repetition penalty). */
    record Row(List<Segment> segments, long[] textIds) {}

    /**
     * A conversation's segments. {@code vectors} holds each turn's adapted media, (L, D) each; answers are trained
     * segments when {@code trainAnswers}, else plain prompt text (history); a null answer ends the row.
     */
    Row row(List<Turn> turns, List<Map<Modality, NDArray>> vectors, boolean trainAnswers) {
        Builder row = new Builder();
        for (int i = 0; i < turns.size(); i++) {
            Turn turn = turns.get(i);
            Map<Modality, NDArray> media = vectors.get(i);
            for (Modality m : Modality.values()) {
                if (!media.containsKey(m) || (m == Modality.SPEECH && turn.spoken())) continue;
                row.text("<" + m.tag() + ">").vectors(media.get(m)).text("</" + m.tag() + ">");
            }
            if (turn.spoken()) {
                row.text("Question: <Speech>").vectors(media.get(Modality.SPEECH)).text("</Speech>\n Answer:");
            } else {
                row.text("Question: " + turn.question() + "\n Answer:");
            }
            if (turn.answer() == null) {
                if (i != turns.size() - 1) throw new IllegalArgumentException("turn " + i + " has no answer but is not the last");
                break;
            }
            row.answer(answerIds(turn.answer()), trainAnswers);
        }
        return row.build();
    }

    /** The trained answer: " " + answer, then the LLM's end-of-sequence token so generation learns to stop. */
    long[] answerIds(String answer) {
        long[] ids = llm.tokenizer().encode(" " + answer);
        List<Long> eos = llm.model().config().eosTokenIds();
        if (eos.isEmpty()) return ids;
        long[] out = java.util.Arrays.copyOf(ids, ids.length + 1);
        out[ids.length] = eos.get(0);
        return out;
    }

    /** Collects a row, encoding each run of adjacent text once. */
    private final class Builder {
        private final List<Segment> segments = new ArrayList<>();
        private final StringBuilder pending = new StringBuilder();
        private final List<Long> textIds = new ArrayList<>();

        Builder text(String text) {
            pending.append(text);
            return this;
        }

        Builder vectors(NDArray vectors) {
            flush();
            segments.add(new Segment.Embeddings(vectors));
            return this;
        }

        void answer(long[] ids, boolean trained) {
            flush();
            segments.add(trained ? Segment.Text.answer(ids) : Segment.Text.prompt(ids));
            for (long id : ids) textIds.add(id);
        }

        private void flush() {
            if (pending.isEmpty()) return;
            long[] ids = llm.tokenizer().encode(pending.toString());
            pending.setLength(0);
            segments.add(Segment.Text.prompt(ids));
            for (long id : ids) textIds.add(id);
        }

        Row build() {
            flush();
            return new Row(segments, textIds.stream().mapToLong(Long::longValue).toArray());
        }
    }
}
