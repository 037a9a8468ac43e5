package xllm.tensor.pickle;

import java.io.IOException;

/**
 * Thrown when a checkpoint's pickle asks for something outside the state-dict subset: a global that is not on
 * {@link TorchGlobal}'s whitelist, or an opcode the restricted machine does not implement. Reading stops at that
 * opcode, so nothing the pickle names has been imported or called.
 */
public final class RefusedPickleException extends IOException {
    private final String refused;
    private final long offset;

    RefusedPickleException(String source, String refused, long offset, String why) {
        super(source + ": refused " + refused + " at byte offset " + offset + " (" + why + "); nothing was executed");
        this.refused = refused;
        this.offset = offset;
    }

    /** What was refused, e.g. {@code global 'posix.system'} or {@code opcode 0x69 'i' (INST)}. */
    public String refused() {
        return refused;
    }

    /** Byte offset of the refused opcode inside the pickle stream (data.pkl, or the file for the legacy format). */
    public long offset() {
        return offset;
    }
}
