package xllm;

import xllm.hub.ModelStore;

import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.fail;

/**
 * Finds pulled real weights for tests. A missing model fails the test with the command that fetches it
 * (README's test command runs it first); it never skips.
 */
public final class RealWeights {

    private RealWeights() {}

    public static Path require(String name) {
        try {
            return ModelStore.defaultStore().resolve(name);
        } catch (IllegalArgumentException e) {
            return fail("real weights needed: " + e.getMessage());
        }
    }
}
