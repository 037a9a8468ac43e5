package xllm.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.core.Embedding;
import ai.djl.ndarray.types.SparseFormat;
import xllm.llm.LlamaModel;

import java.util.ArrayList;
import java.util.List;

/**
 * The splice of DESIGN.md §1: rows of text and modality segments of any lengths become one padded batch of input
 * embeddings for the frozen LLM, with per-token validity, RoPE positions and the (position, target) pairs of the
 * answer tokens. Left padding for generation, right padding for training. Tested in {@code PromptBatchTest}.
 *
 * @param embeddings      (B, T, D)
 * @param positions       (B, T) RoPE positions (0.. over the valid tokens of each row)
 * @param valid           (B, T) false at padding
 * @param predictFrom     flat indices b·T + t of the positions whose next-token prediction is trained
 * @param targets         the answer token each of those positions must predict
 */
public record PromptBatch(NDArray embeddings, long[][] positions, boolean[][] valid, long[] predictFrom, long[] targets) {

    public enum Padding { LEFT, RIGHT }

    public static PromptBatch build(LlamaModel llm, List<List<Segment>> rows, Padding padding, NDManager scope) {
        int batch = rows.size();
        int hidden = llm.config().hiddenSize();
        int longest = 0;
        for (List<Segment> row : rows) longest = Math.max(longest, row.stream().mapToInt(Segment::length).sum());
        if (longest == 0) throw new IllegalArgumentException("every prompt row is empty");
        long[][] positions = new long[batch][longest];
        boolean[][] valid = new boolean[batch][longest];
        List<Long> predictFrom = new ArrayList<>();
        List<Long> targets = new ArrayList<>();
        NDList paddedRows = new NDList();
        for (int b = 0; b < batch; b++) {
            List<Segment> row = rows.get(b);
            int length = row.stream().mapToInt(Segment::length).sum();
            int offset = padding == Padding.LEFT ? longest - length : 0;
            NDList pieces = new NDList();
            if (padding == Padding.LEFT && offset > 0) pieces.add(scope.zeros(new Shape(offset, hidden), llm.dataType()));
            int t = offset;
            for (Segment segment : row) {
                if (segment instanceof Segment.Text text) {
                    if (text.ids().length == 0) continue;
                    pieces.add(llm.embed(scope.create(text.ids(), new Shape(1, text.ids().length))).reshape(text.ids().length, hidden));
                    if (text.answer()) {
                        for (int i = 0; i < text.ids().length; i++) {
                            if (t + i == offset) {
                                throw new IllegalArgumentException("row " + b + ": an answer cannot start the sequence");
                            }
                            predictFrom.add((long) b * longest + t + i - 1);
                            targets.add(text.ids()[i]);
                        }
                    }
                } else {
                    NDArray vectors = ((Segment.Embeddings) segment).vectors();
                    if (vectors.getShape().dimension() != 2 || vectors.getShape().get(1) != hidden) {
                        throw new IllegalArgumentException("row " + b + ": modality embeddings of shape " + vectors.getShape()
                                + " do not fit the LLM width " + hidden);
                    }
                    if (vectors.getShape().get(0) == 0) continue;
                    pieces.add(vectors);
                }
                t += segment.length();
            }
            if (padding == Padding.RIGHT && length < longest) {
                pieces.add(scope.zeros(new Shape(longest - length, hidden), llm.dataType()));
            }
            for (int i = 0; i < length; i++) {
                valid[b][offset + i] = true;
                positions[b][offset + i] = i;
            }
            paddedRows.add(pieces.size() == 1 ? pieces.get(0) : NDArrays.concat(pieces, 0)); // (T, D)
        }
        NDArray embeddings = batch == 1 ? paddedRows.get(0).expandDims(0) : NDArrays.stack(paddedRows, 0);
        return new PromptBatch(embeddings, positions, valid, toArray(predictFrom), toArray(targets));
    }

    /** Row {@code b} alone, without its padding (a batch of one). */
    public PromptBatch row(int b, NDManager scope) {
        int length = (int) embeddings.getShape().get(1);
        int first = 0, last = length;
        while (first < length && !valid[b][first]) first++;
        while (last > first && !valid[b][last - 1]) last--;
        int count = last - first;
        long[][] rowPositions = {java.util.Arrays.copyOfRange(positions[b], first, last)};
        boolean[][] rowValid = {java.util.Arrays.copyOfRange(valid[b], first, last)};
        List<Long> from = new ArrayList<>(), to = new ArrayList<>();
        for (int i = 0; i < predictFrom.length; i++) {
            long flat = predictFrom[i];
            if (flat / length == b) {
                from.add(flat % length - first);
                to.add(targets[i]);
            }
        }
        NDArray rowEmbeddings = embeddings.get(new ai.djl.ndarray.index.NDIndex("{}:{}, {}:{}", b, b + 1, first, last));
        rowEmbeddings.attach(scope);
        return new PromptBatch(rowEmbeddings, rowPositions, rowValid, toArray(from), toArray(to));
    }

    private static long[] toArray(List<Long> values) {
        long[] out = new long[values.size()];
        for (int i = 0; i < out.length; i++) out[i] = values.get(i);
        return out;
    }

    /**
     * Mean cross-entropy of the answer tokens. Logits are computed only at the answer positions (the full-vocabulary
     * head over every position would be wasted work).
     */
    public NDArray answerLoss(LlamaModel llm) {
        if (predictFrom.length == 0) throw new IllegalStateException("batch has no answer tokens to train on");
        NDManager scope = embeddings.getManager();
        NDArray hidden = llm.hiddenStates(embeddings, positions, valid, null);          // (B, T, D)
        NDArray flat = hidden.reshape(-1, hidden.getShape().get(2));                      // (B·T, D)
        NDArray selected = Embedding.embedding(scope.create(predictFrom), flat, SparseFormat.DENSE)
                .singletonOrThrow();                                                      // (N, D)
        NDArray logProbabilities = llm.logits(selected).logSoftmax(-1);                  // (N, V)
        NDArray picked = logProbabilities.gather(scope.create(targets).reshape(-1, 1), 1); // (N, 1)
        return picked.mean().neg();
    }
}
