package xllm.serve;

import java.nio.file.Path;

/** The one media file of a {@code --image / --video / --audio} option group, with the interface it needs. */
record MediaOption(String flag, String modality, Path path) {

    /** Null when none is given; more than one is an error. */
    static MediaOption of(Path image, Path video, Path audio) {
        int given = (image != null ? 1 : 0) + (video != null ? 1 : 0) + (audio != null ? 1 : 0);
        if (given > 1) throw new IllegalArgumentException("give one of --image, --video, --audio");
        if (image != null) return new MediaOption("image", "Image", image);
        if (video != null) return new MediaOption("video", "Video", video);
        if (audio != null) return new MediaOption("audio", "Speech", audio);
        return null;
    }
}
