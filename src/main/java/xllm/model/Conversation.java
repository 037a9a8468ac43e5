package xllm.model;

import xllm.llm.Generator;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;

/**
 * A multi-turn conversation with an {@link XLlm}: each turn may bring media of any kind the model reads, and every
 * earlier turn, its media and its answer included, stays in the prompt of the next one (as training's multi-turn
 * conversations are built). Media are encoded once, when their turn is asked, and kept as host arrays. A turn that
 * fails leaves the conversation as it was.
 */
public final class Conversation {

    private final XLlm model;
    private final List<Turn> turns = new ArrayList<>();

    public Conversation(XLlm model) {
        this.model = model;
    }

    /**
     * Asks one turn: {@code media} (any of the model's modalities, one file each) and the typed question; a blank
     * question with speech makes the speech the question. Returns the completion, which becomes part of the history.
     */
    public Generator.Completion ask(Map<Modality, Path> media, String question, Generator.Options options,
                                    Generator.StreamListener listener) throws IOException {
        Map<Modality, Turn.Medium> encoded = new EnumMap<>(Modality.class);
        for (var entry : media.entrySet()) {
            encoded.put(entry.getKey(), Turn.Medium.encoded(model.encode(entry.getKey(), entry.getValue())));
        }
        Turn turn = new Turn(encoded, question, null);
        List<Turn> prompt = new ArrayList<>(turns);
        prompt.add(turn);
        Generator.Completion completion = model.generate(List.of(prompt), options, listener).get(0);
        turns.add(turn.answered(completion.text().strip()));
        return completion;
    }

    /** The answered turns so far. */
    public List<Turn> turns() {
        return Collections.unmodifiableList(turns);
    }

    /** Forgets every turn. */
    public void reset() {
        turns.clear();
    }

    public XLlm model() {
        return model;
    }
}
