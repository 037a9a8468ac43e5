package xllm.tensor;

import ai.djl.ndarray.NDArray;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.Collection;
import java.util.Map;

/**
 * Writes safetensors files atomically: the data goes to a temporary file beside the target, is forced to disk,
 * and is renamed over the target, so a crash never leaves a partial checkpoint under the final name.
 * Round trips are tested in {@code SafetensorsTest}.
 */
public final class SafetensorsWriter {

    private static final ObjectMapper JSON = new ObjectMapper();

    private SafetensorsWriter() {}

    public static void write(Path file, Collection<HostTensor> tensors, Map<String, String> metadata) throws IOException {
        ObjectNode header = JSON.createObjectNode();
        if (metadata != null && !metadata.isEmpty()) {
            ObjectNode meta = header.putObject("__metadata__");
            metadata.forEach(meta::put);
        }
        long offset = 0;
        for (HostTensor t : tensors) {
            if (header.has(t.name())) throw new IllegalArgumentException(file + ": duplicate tensor name '" + t.name() + "'");
            ObjectNode node = header.putObject(t.name());
            node.put("dtype", t.dtype().safetensorsName);
            ArrayNode shape = node.putArray("shape");
            for (long d : t.shape()) shape.add(d);
            long size = t.data().remaining();
            node.putArray("data_offsets").add(offset).add(offset + size);
            offset += size;
        }
        byte[] headerJson = JSON.writeValueAsBytes(header);
        // Pad the header with spaces to an 8-byte boundary, as the reference writer does, so data stays aligned.
        int padded = (headerJson.length + 7) / 8 * 8;
        byte[] headerBytes = new byte[padded];
        System.arraycopy(headerJson, 0, headerBytes, 0, headerJson.length);
        for (int i = headerJson.length; i < padded; i++) headerBytes[i] = ' ';

        Path parent = file.toAbsolutePath().getParent();
        Files.createDirectories(parent);
        Path temp = Files.createTempFile(parent, "." + file.getFileName() + ".", ".tmp");
        try (FileChannel out = FileChannel.open(temp, StandardOpenOption.WRITE, StandardOpenOption.TRUNCATE_EXISTING)) {
            ByteBuffer prefix = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(padded);
            prefix.flip();
            writeFully(out, prefix);
            writeFully(out, ByteBuffer.wrap(headerBytes));
            for (HostTensor t : tensors) writeFully(out, t.data().duplicate());
            out.force(true);
        } catch (IOException | RuntimeException e) {
            Files.deleteIfExists(temp);
            throw e;
        }
        Files.move(temp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    }

    /** Copies an NDArray's values out of native memory under the given name. */
    public static HostTensor fromNDArray(String name, NDArray array) {
        ByteBuffer bytes = array.toByteBuffer().order(ByteOrder.LITTLE_ENDIAN);
        ByteBuffer copy = ByteBuffer.allocate(bytes.remaining()).order(ByteOrder.LITTLE_ENDIAN);
        copy.put(bytes).flip();
        return new HostTensor(name, DType.fromDjl(array.getDataType()), array.getShape().getShape(), copy);
    }

    private static void writeFully(FileChannel out, ByteBuffer buffer) throws IOException {
        while (buffer.hasRemaining()) out.write(buffer);
    }

}
