package xllm.model;

import java.nio.file.Path;

/** The tiny random CIF ASR checkpoint of {@link SpeechInterfaceTest}, for tests in other packages. */
public final class SpeechInterfaceTestAccess {

    private SpeechInterfaceTestAccess() {}

    public static Path asrCheckpoint(Path dir) throws Exception {
        return SpeechInterfaceTest.asrCheckpoint(dir);
    }
}
