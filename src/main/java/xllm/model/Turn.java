package xllm.model;

import java.util.Collections;
import java.util.EnumMap;
import java.util.Map;

/**
 * One exchange of a conversation as the model reads it: the media the user gave in this turn, the typed question
 * (blank when the speech is the question), and the answer (null for the turn still to be generated).
 *
 * @param media    by modality; each one prepared (the frozen encoder's input) or already encoded (its output)
 * @param question the typed text; blank means the user's speech is the question
 * @param answer   the reply: trained on in training, history in chat, null for the turn to answer
 */
public record Turn(Map<Modality, Medium> media, String question, String answer) {

    public Turn {
        EnumMap<Modality, Medium> copy = new EnumMap<>(Modality.class);
        copy.putAll(media);
        media = Collections.unmodifiableMap(copy);
        question = question == null ? "" : question.strip();
        if (question.isEmpty() && !media.containsKey(Modality.SPEECH)) {
            throw new IllegalArgumentException("a turn without a typed question needs speech (the spoken question)");
        }
    }

    /** The speech is the question: there is speech and no typed text. */
    public boolean spoken() {
        return question.isEmpty() && media.containsKey(Modality.SPEECH);
    }

    /** The same turn with its answer. */
    public Turn answered(String reply) {
        return new Turn(media, question, reply);
    }

    /**
     * One medium of a turn.
     *
     * @param data    the frozen encoder's input ({@code encoded} false) or its output ({@code encoded} true)
     * @param encoded whether {@code data} is already the frozen encoder's output
     */
    public record Medium(Features data, boolean encoded) {
        public static Medium prepared(Features data) {
            return new Medium(data, false);
        }

        public static Medium encoded(Features data) {
            return new Medium(data, true);
        }
    }
}
