package xllm.hub;

import java.nio.file.Path;

/**
 * One model in the store, as {@link ModelStore#list()} reports it.
 *
 * @param name      store name: a catalogue name ({@code smollm2-135m-instruct}) or a hub id ({@code owner/name})
 * @param source    where it comes from: {@code pypi:PACKAGE==VERSION} or {@code hf:OWNER/NAME@REVISION}
 * @param path      the main file or snapshot directory when complete; the model directory otherwise
 * @param sizeBytes bytes on disk, partial downloads included
 * @param complete  whether the pull finished and every file is still there
 */
public record ModelEntry(String name, String source, Path path, long sizeBytes, boolean complete) { }
