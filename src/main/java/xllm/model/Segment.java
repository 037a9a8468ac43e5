package xllm.model;

import ai.djl.ndarray.NDArray;

/** One piece of a prompt row: text token ids (optionally the answer the loss is taken on) or modality vectors. */
public sealed interface Segment {

    /** Token ids; {@code answer} marks the tokens whose prediction is trained (loss on the answer only). */
    record Text(long[] ids, boolean answer) implements Segment {
        public static Text prompt(long[] ids) {
            return new Text(ids, false);
        }

        public static Text answer(long[] ids) {
            return new Text(ids, true);
        }
    }

    /** (N, D) vectors already in the LLM's embedding space (an X2L interface's output); N may be 0. */
    record Embeddings(NDArray vectors) implements Segment {}

    default int length() {
        if (this instanceof Text t) return t.ids().length;
        return (int) ((Embeddings) this).vectors().getShape().get(0);
    }
}
