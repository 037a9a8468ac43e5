package xllm.train;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * What a trainer needs beyond the weights and the optimizer moments to resume exactly where it stopped; stored
 * as {@code trainer_state.json} in a checkpoint directory (Jackson maps the record components to JSON fields).
 *
 * @param step         optimizer steps taken so far (the checkpoint's step)
 * @param epoch        passes over the data completed so far
 * @param dataPosition samples of the current epoch already consumed, so a resumed run skips them
 * @param seed         the run's seed (shuffling, augmentation, dropout)
 * @param rngState     the generators' state in whatever text form the trainer uses (e.g. base64); may be null
 * @param lastLoss     training loss of the last step (NaN if none)
 * @param extra        anything else numeric the trainer wants back (best eval loss, tokens seen, ...)
 */
public record TrainerState(long step, long epoch, long dataPosition, long seed, String rngState, double lastLoss,
                           Map<String, Double> extra) {

    public TrainerState {
        // Copy in order (Map.copyOf would lose it) and read-only, so a saved state cannot change under the caller.
        extra = extra == null ? Map.of() : Collections.unmodifiableMap(new LinkedHashMap<>(extra));
    }
}
