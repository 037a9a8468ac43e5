package xllm.speech;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** {@link CtcLoss} against torch.nn.functional.ctc_loss (fixtures/ctc, tools/reference/make_ctc_fixtures.py). */
class CtcLossTest {

    @Test
    void lossAndGradientsMatchTorch() throws IOException {
        JsonNode root = new ObjectMapper().readTree(Path.of("src/test/resources/fixtures/ctc/ctc_reference.json").toFile());
        for (JsonNode c : root.get("cases")) {
            String name = c.get("name").asText();
            long[] lengths = new long[c.get("lengths").size()];
            for (int b = 0; b < lengths.length; b++) lengths[b] = c.get("lengths").get(b).asLong();
            long[][] targets = new long[lengths.length][];
            for (int b = 0; b < lengths.length; b++) {
                JsonNode t = c.get("targets").get(b);
                targets[b] = new long[t.size()];
                for (int k = 0; k < t.size(); k++) targets[b][k] = t.get(k).asLong();
            }
            int classes = c.get("classes").asInt();
            float[] logits = floats(c.get("logits").get("data"));
            float[] expectedGrad = floats(c.get("grad").get("data"));
            try (NDManager manager = NDManager.newBaseManager()) {
                NDArray x = manager.create(logits, new Shape(lengths.length, logits.length / lengths.length / classes, classes));
                x.setRequiresGradient(true);
                try (GradientCollector collector = Engine.getInstance().newGradientCollector()) {
                    NDArray loss = CtcLoss.loss(x.logSoftmax(-1), lengths, targets, classes - 1);
                    assertEquals(c.get("loss").asDouble(), loss.getFloat(), 1e-4, name + " loss");
                    collector.backward(loss);
                }
                float[] grad = x.getGradient().toFloatArray();
                for (int i = 0; i < grad.length; i++) assertEquals(expectedGrad[i], grad[i], 1e-5, name + " grad " + i);
            }
        }
    }

    private static float[] floats(JsonNode array) {
        float[] out = new float[array.size()];
        for (int i = 0; i < out.length; i++) out[i] = (float) array.get(i).asDouble();
        return out;
    }
}
