package xllm.eval;

import ai.djl.ndarray.NDManager;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The cif benchmark's report at a tiny size without its peer: xllm numbers present, the peer's marked not run. */
class CifBenchmarkTest {

    @Test
    void reportWithoutPeer() throws Exception {
        BenchmarkReport report;
        try (NDManager manager = NDManager.newBaseManager()) {
            report = CifBenchmark.run(new CifBenchmark.Config(2, 40, 8, 0.5, 1, 3, 1, false), manager);
        }
        assertTrue(report.value("xllm", "forward_backward_ms") > 0);
        assertTrue(report.value("xllm", "forward_backward_ms") >= report.value("xllm", "forward_ms"));
        double tokens = report.value("xllm", "tokens");
        assertTrue(tokens >= 1 && tokens <= 40 * 0.5 + 1, "tokens " + tokens); // at most Σα ≤ U·maxAlpha per row
        assertNull(report.value(CifBenchmark.PEER, "forward_backward_ms"));
        Map<String, Object> json = report.toMap();
        assertEquals("cif", json.get("benchmark"));
        @SuppressWarnings("unchecked")
        List<Map<String, Object>> results = (List<Map<String, Object>>) json.get("results");
        assertTrue(results.stream().anyMatch(r -> CifBenchmark.PEER.equals(r.get("system"))
                && "peer not run (--no-peer)".equals(r.get("error"))));
        @SuppressWarnings("unchecked")
        List<Map<String, Object>> ratios = (List<Map<String, Object>>) json.get("ratios");
        assertEquals(2, ratios.size());
        assertNull(ratios.get(0).get("value"));
    }

    @Test
    void configRejectsBadShapes() {
        assertThrows(IllegalArgumentException.class, () -> new CifBenchmark.Config(0, 10, 8, 0.5, 0, 1, 1, false));
        assertThrows(IllegalArgumentException.class, () -> new CifBenchmark.Config(1, 10, 8, 1.5, 0, 1, 1, false));
        assertThrows(IllegalArgumentException.class, () -> new CifBenchmark.Config(1, 10, 8, 0.5, 0, 0, 1, false));
    }
}
