package xllm.data;

import xllm.speech.CharVocabulary;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * One line of an ASR manifest (DESIGN.md §4): {@code {"id", "audio", "text"}} with the audio path relative to the
 * manifest's directory, inside its tree unless the opt-out of {@link MediaPaths} is set (extra keys such as
 * {@code image} or {@code context} are allowed and ignored here).
 */
public record AsrSample(String id, Path audio, String text) {

    public static List<AsrSample> readManifest(Path manifest) throws IOException {
        List<AsrSample> samples = new ArrayList<>();
        JsonLines.read(manifest, line -> {
            String id = line.string("id"), text = line.string("text");
            if (CharVocabulary.normalise(text).isEmpty()) {
                throw new IOException(line.where() + ": transcript '" + text + "' is empty after normalisation");
            }
            return samples.add(new AsrSample(id, line.media("audio", manifest), text));
        });
        if (samples.isEmpty()) throw new IOException(manifest + ": no samples");
        return samples;
    }
}
