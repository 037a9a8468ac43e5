package xllm.model;

import xllm.llm.ChatTemplate;
import xllm.llm.LanguageModel;

import java.util.List;

/**
 * A user's turn of the LLM's own chat template with the speech where the typed text would be:
 * {@code <|im_start|>user\n{speech}<|im_end|>\n<|im_start|>assistant\n} for ChatML. The speech is the question itself
 * (no instruction around it), so an interface aligned to stand for the transcript makes the LLM answer the spoken
 * question as it answers the same question typed. Training ({@link SpeechInstructionTask}, samples whose human turn
 * is only {@code <audio>}) and inference ({@link MediaChat} with no typed question) build the turn here.
 */
final class SpokenTurn {

    private static final String MARKER = "SPOKEN_TURN_MARKER";

    private final LanguageModel llm;
    private final long[] before;
    private final long[] after;

    SpokenTurn(LanguageModel llm) {
        this.llm = llm;
        String rendered = llm.chatTemplate().render(List.of(new ChatTemplate.Message("user", MARKER)), true);
        int at = rendered.indexOf(MARKER);
        if (at < 0 || rendered.indexOf(MARKER, at + 1) >= 0) {
            throw new IllegalStateException(llm.source() + ": chat template does not place the user's text once");
        }
        this.before = llm.tokenizer().encode(rendered.substring(0, at));
        this.after = llm.tokenizer().encode(rendered.substring(at + MARKER.length()));
    }

    /** Template tokens before the speech (system turn, if the template adds one, and the user header). */
    long[] before() {
        return before;
    }

    /** Template tokens after the speech (end of the user turn, assistant header). */
    long[] after() {
        return after;
    }

    /** The reply as trained: its tokens as the template's assistant turn starts them (no leading space), then EOS. */
    long[] replyIds(String reply) {
        return ImageInstructionTask.endingTurn(llm, reply);
    }
}
