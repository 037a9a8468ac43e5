package xllm.speech;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import xllm.train.TrainableParameter;

import java.io.IOException;
import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class CifPredictorTest {

    private NDManager manager;

    @BeforeEach
    void open() {
        manager = NDManager.newBaseManager();
    }

    @AfterEach
    void close() {
        manager.close();
    }

    private static CifPredictor fixturePredictor(NDManager scope, JsonNode c, DataType type, CifPredictor.Mode mode) {
        Map<String, NDArray> weights = new java.util.HashMap<>();
        for (String name : new String[] {"cif_conv1d.weight", "cif_conv1d.bias", "cif_output.weight", "cif_output.bias"}) {
            weights.put(name, CifFixture.tensor(scope, c.get(name), type));
        }
        CifPredictor.Config config = new CifPredictor.Config(1.0, c.get("tail_threshold").asDouble(),
                c.get("smooth_factor").asDouble(), c.get("noise_threshold").asDouble());
        return CifPredictor.fromWeights(weights, config, mode);
    }

    private static void assertClose(JsonNode expected, NDArray actual, double tolerance, String what) {
        assertEquals(CifFixture.shape(expected), actual.getShape(), what + " shape");
        double difference = CifFixture.maxAbsDifference(CifFixture.data(expected),
                actual.toType(DataType.FLOAT64, false).toDoubleArray());
        System.out.printf("%s: %.3g%n", what, difference);
        assertTrue(difference <= tolerance, what + " differs by " + difference);
    }

    private void checkPredictorCases(DataType type, CifPredictor.Mode inferenceMode) throws IOException {
        for (JsonNode c : CifFixture.load().get("predictor_v2")) {
            String name = type + " " + c.get("name").asText();
            try (NDManager scope = manager.newSubManager()) {
                boolean training = c.get("mode").asText().equals("train");
                // FunASR's training case scales to L exactly and fires on a float32 prefix sum: compare in that mode
                CifPredictor predictor = fixturePredictor(scope, c, type,
                        training ? CifPredictor.Mode.FUNASR_EXACT : inferenceMode);
                NDArray hidden = CifFixture.tensor(scope, c.get("hidden"), type);
                long[] lengths = CifFixture.longs(c.get("lengths"));
                CifPredictor.Output output = training
                        ? predictor.train(hidden, lengths, CifFixture.longs(c.get("target_lengths")))
                        : predictor.infer(hidden, lengths);
                assertClose(c.get("alphas"), output.alphas(), 1e-5, name + " alphas");
                assertClose(c.get("token_num"), output.tokenNum(), 1e-5, name + " token_num");
                assertClose(c.get("embeds"), output.embeds(), 1e-5, name + " embeds");
                assertClose(c.get("fires"), output.fires(), 1e-5, name + " fires");
            }
        }
    }

    @Test
    void matchesFunAsrCifPredictorV2() throws IOException {
        checkPredictorCases(DataType.FLOAT64, CifPredictor.Mode.XLLM);
        checkPredictorCases(DataType.FLOAT64, CifPredictor.Mode.FUNASR_EXACT);
        checkPredictorCases(DataType.FLOAT32, CifPredictor.Mode.XLLM);
    }

    @Test
    void unknownOrMissingWeightNamesAreErrors() {
        NDArray w = manager.zeros(new Shape(2, 2, 3));
        NDArray b = manager.zeros(new Shape(2));
        NDArray o = manager.zeros(new Shape(1, 2));
        NDArray ob = manager.zeros(new Shape(1));
        assertThrows(IllegalArgumentException.class, () -> CifPredictor.fromWeights(Map.of("cif_conv1d.weight", w,
                "cif_conv1d.bias", b, "cif_output.weight", o), CifPredictor.Config.paraformer(), CifPredictor.Mode.XLLM));
        assertThrows(IllegalArgumentException.class, () -> CifPredictor.fromWeights(Map.of("cif_conv1d.weight", w,
                "cif_conv1d.bias", b, "cif_output.weight", o, "cif_output.bias", ob, "extra", ob),
                CifPredictor.Config.paraformer(), CifPredictor.Mode.XLLM));
    }
}
