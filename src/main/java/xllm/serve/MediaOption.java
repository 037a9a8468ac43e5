package xllm.serve;

import xllm.model.Modality;

import java.nio.file.Path;
import java.util.Collections;
import java.util.EnumMap;
import java.util.Map;

/** The media of the {@code --image / --video / --audio} options: any combination, one file each, for one turn. */
final class MediaOption {

    private MediaOption() {}

    /** The given files by modality, in prompt order; empty when none is given. */
    static Map<Modality, Path> of(Path image, Path video, Path audio) {
        Map<Modality, Path> media = new EnumMap<>(Modality.class);
        if (image != null) media.put(Modality.IMAGE, image);
        if (video != null) media.put(Modality.VIDEO, video);
        if (audio != null) media.put(Modality.SPEECH, audio);
        return Collections.unmodifiableMap(media);
    }

    /** "--image, --audio": the options of {@code media}. */
    static String flags(Map<Modality, Path> media) {
        return String.join(", ", media.keySet().stream().map(m -> "--" + m.flag()).toList());
    }
}
