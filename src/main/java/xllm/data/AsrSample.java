package xllm.data;

import xllm.speech.CharVocabulary;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * One line of an ASR manifest (DESIGN.md §4): {@code {"id", "audio", "text", "image"?}} with media paths relative to
 * the manifest's directory, inside its tree unless the opt-out of {@link MediaPaths} is set. {@code image} (null when
 * absent) is the picture a multimodal-ASR utterance talks about ({@link InstructionSet}'s {@code eval-mmasr.jsonl});
 * it is resolved and confined exactly as the audio. Other keys such as {@code context} are allowed and ignored. The
 * manifest may also be one JSON array of these objects ({@link JsonLines#readObjects}).
 */
public record AsrSample(String id, Path audio, String text, Path image) {

    /** An utterance with no image. */
    public AsrSample(String id, Path audio, String text) {
        this(id, audio, text, null);
    }

    public static List<AsrSample> readManifest(Path manifest) throws IOException {
        List<AsrSample> samples = new ArrayList<>();
        JsonLines.readObjects(manifest, line -> {
            String id = line.string("id"), text = line.string("text");
            if (CharVocabulary.normalise(text).isEmpty()) {
                throw new IOException(line.where() + ": transcript '" + text + "' is empty after normalisation");
            }
            Path image = line.string("image", null) == null ? null : line.media("image", manifest);
            return samples.add(new AsrSample(id, line.media("audio", manifest), text, image));
        });
        if (samples.isEmpty()) throw new IOException(manifest + ": no samples");
        return samples;
    }
}
