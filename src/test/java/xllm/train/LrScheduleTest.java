package xllm.train;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** Schedules against the Python transcriptions of LAVIS and fairseq in tools/reference/make_optim_fixtures.py. */
class LrScheduleTest {

    private static final Path FIXTURE = Path.of("src/test/resources/fixtures/train/schedules.json");

    @Test
    void warmupCosineMatchesLavisTranscription() throws IOException {
        JsonNode fixture = new ObjectMapper().readTree(FIXTURE.toFile()).get("warmup_cosine");
        JsonNode c = fixture.get("config");
        LrSchedule schedule = LrSchedule.warmupCosine(c.get("init_lr").asDouble(), c.get("min_lr").asDouble(),
                c.get("warmup_start_lr").asDouble(), c.get("warmup_steps").asLong(), c.get("total_steps").asLong());
        assertMatches(fixture, schedule);
        // shape: warm-up start, peak at the end of warm-up, min at and after the end
        assertEquals(1e-6, schedule.at(0), 0);
        assertEquals(1e-4, schedule.at(10), 1e-18);
        assertEquals(1e-5, schedule.at(40), 0);
        assertEquals(1e-5, schedule.at(1_000), 0);
    }

    @Test
    void triStageMatchesFairseqTranscription() throws IOException {
        JsonNode fixture = new ObjectMapper().readTree(FIXTURE.toFile()).get("tri_stage");
        JsonNode c = fixture.get("config");
        LrSchedule schedule = LrSchedule.warmupHoldDecay(c.get("peak_lr").asDouble(), c.get("warmup_steps").asLong(),
                c.get("hold_steps").asLong(), c.get("decay_steps").asLong(), c.get("final_lr").asDouble());
        assertMatches(fixture, schedule);
        assertEquals(0, schedule.at(0), 0);                 // warm-up starts at 0 (init_lr_scale 0)
        assertEquals(1e-3, schedule.at(8), 0);              // hold
        assertEquals(1e-3, schedule.at(18), 0);             // first decay step: exp(0)
        assertEquals(1e-5, schedule.at(33), 1e-18);         // end of decay reaches final
        assertEquals(1e-5, schedule.at(34), 0);             // constant afterwards
    }

    @Test
    void edgeCases() {
        LrSchedule noWarmup = LrSchedule.warmupCosine(1e-3, 0, 0, 0, 4);
        assertEquals(1e-3, noWarmup.at(0), 0);
        assertEquals(0.5e-3, noWarmup.at(2), 1e-18);
        LrSchedule noDecay = LrSchedule.warmupHoldDecay(1e-3, 2, 1, 0, 1e-5);
        assertEquals(0.5e-3, noDecay.at(1), 1e-18);
        assertEquals(1e-3, noDecay.at(3), 0);
        assertEquals(1e-5, noDecay.at(4), 0);
        assertThrows(IllegalArgumentException.class, () -> LrSchedule.warmupCosine(1e-3, 0, 0, 10, 10));
        assertThrows(IllegalArgumentException.class, () -> LrSchedule.warmupHoldDecay(1e-3, 1, 1, 1, 0));
        assertThrows(IllegalArgumentException.class, () -> noWarmup.at(-1));
        assertEquals("WarmupCosine[initLr=0.001, minLr=0.0, warmupStartLr=0.0, warmupSteps=0, totalSteps=4]", noWarmup.toString());
    }

    private static void assertMatches(JsonNode fixture, LrSchedule schedule) {
        JsonNode steps = fixture.get("steps");
        JsonNode lr = fixture.get("lr");
        assertEquals(45, steps.size());
        for (int i = 0; i < steps.size(); i++) {
            double expected = lr.get(i).asDouble();
            assertEquals(expected, schedule.at(steps.get(i).asLong()), 1e-12 * expected, "step " + steps.get(i));
        }
    }
}
