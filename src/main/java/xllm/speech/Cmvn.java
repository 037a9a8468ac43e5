package xllm.speech;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.util.List;

/**
 * Global cepstral mean and variance normalisation: {@code (x − mean) / std} per feature dimension, with the statistics
 * of (a sample of) the training features. They are part of the ASR model (its config.json), applied in training and
 * in inference alike, so a model always sees features normalised the way it was trained.
 *
 * @param mean (dims) per-dimension mean
 * @param std  (dims) per-dimension standard deviation, floored at {@link #MIN_STD}
 */
public record Cmvn(float[] mean, float[] std) {

    /** Floor of the standard deviation, so that a constant dimension does not divide by zero. */
    public static final double MIN_STD = 1e-5;

    public Cmvn {
        if (mean.length != std.length) throw new IllegalArgumentException("CMVN mean and std differ in length");
    }

    /** Statistics over every frame of the given utterances (each (frames, dims)); computed in double. */
    public static Cmvn compute(List<float[][]> utterances) {
        int dims = -1;
        double[] sum = null, squares = null;
        long count = 0;
        for (float[][] utterance : utterances) {
            for (float[] frame : utterance) {
                if (dims < 0) {
                    dims = frame.length;
                    sum = new double[dims];
                    squares = new double[dims];
                }
                if (frame.length != dims) throw new IllegalArgumentException("frames of " + frame.length + " and " + dims + " dims");
                for (int d = 0; d < dims; d++) {
                    sum[d] += frame[d];
                    squares[d] += (double) frame[d] * frame[d];
                }
                count++;
            }
        }
        if (count == 0) throw new IllegalArgumentException("CMVN needs at least one frame");
        float[] mean = new float[dims], std = new float[dims];
        for (int d = 0; d < dims; d++) {
            double m = sum[d] / count;
            mean[d] = (float) m;
            std[d] = (float) Math.max(MIN_STD, Math.sqrt(Math.max(0, squares[d] / count - m * m)));
        }
        return new Cmvn(mean, std);
    }

    /** A normalised copy of (frames, dims). */
    public float[][] apply(float[][] frames) {
        float[][] out = new float[frames.length][];
        for (int t = 0; t < frames.length; t++) {
            float[] frame = frames[t];
            if (frame.length != mean.length) {
                throw new IllegalArgumentException("CMVN has " + mean.length + " dims, frame has " + frame.length);
            }
            float[] normalised = new float[frame.length];
            for (int d = 0; d < frame.length; d++) normalised[d] = (frame[d] - mean[d]) / std[d];
            out[t] = normalised;
        }
        return out;
    }

    public int dims() {
        return mean.length;
    }

    public ObjectNode toJson() {
        ObjectNode node = new ObjectMapper().createObjectNode();
        ArrayNode m = node.putArray("mean"), s = node.putArray("std");
        for (float v : mean) m.add(v);
        for (float v : std) s.add(v);
        return node;
    }

    /** @param where names the source in error messages (e.g. the config file) */
    public static Cmvn fromJson(JsonNode node, String where) {
        JsonNode m = node.path("mean"), s = node.path("std");
        if (!m.isArray() || !s.isArray() || m.size() != s.size() || m.isEmpty()) {
            throw new IllegalArgumentException(where + ": cmvn needs equal-length non-empty 'mean' and 'std' arrays");
        }
        float[] mean = new float[m.size()], std = new float[s.size()];
        for (int d = 0; d < mean.length; d++) {
            mean[d] = (float) m.get(d).asDouble();
            std[d] = (float) s.get(d).asDouble();
            if (!(std[d] > 0)) throw new IllegalArgumentException(where + ": cmvn std[" + d + "] is not positive");
        }
        return new Cmvn(mean, std);
    }
}
