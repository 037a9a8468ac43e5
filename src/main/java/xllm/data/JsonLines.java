package xllm.data;

import com.fasterxml.jackson.core.JacksonException;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.InvalidPathException;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;

/**
 * Strict reading of JSONL files (training and evaluation manifests, stored hypotheses): one JSON object per line, blank
 * lines skipped; and, through {@link #readObjects}, of LLaVA's own manifest format, one JSON array of objects. Every error is one line naming {@code file:line} and the problem: a missing file or a directory,
 * bytes that are not UTF-8, a line over {@link #MAX_LINE_CHARS} (refused before it is held in memory), invalid JSON
 * (including a second value on the line and a key given twice, which would otherwise be dropped silently), a value
 * that is not an object, and a field of the wrong type.
 */
public final class JsonLines {

    /**
     * Longest line accepted, in characters. A manifest line is a few hundred; a transcript of the longest audio
     * accepted (600 s) a few thousand. 256 Ki leaves room for long texts yet bounds what scoring one line costs:
     * NFKC may expand a character up to 18-fold, so about 120 MB and seconds at worst.
     */
    public static final int MAX_LINE_CHARS = 1 << 18;

    private static final ObjectMapper JSON = new ObjectMapper()
            .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS)
            .enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION);
    /** Binds one element of an array manifest: the parser goes on past it, so no trailing-token check here. */
    private static final ObjectMapper ELEMENT = new ObjectMapper();

    /** The object on line {@code number} of {@code file}; {@code where} is "file:number" for messages. */
    public record Line(JsonNode object, int number, String where) {

        /** The string field {@code name}; an error when it is absent, null or not a string. */
        public String string(String name) throws IOException {
            JsonNode value = object.get(name);
            if (value == null || value.isNull()) throw new IOException(where + ": missing string field \"" + name + "\"");
            if (!value.isTextual()) throw wrongType(name, "a string", value);
            return value.asText();
        }

        /** The string field {@code name}, or {@code fallback} when it is absent or null. */
        public String string(String name, String fallback) throws IOException {
            JsonNode value = object.get(name);
            return value == null || value.isNull() ? fallback : string(name);
        }

        public IOException wrongType(String name, String expected, JsonNode value) {
            return new IOException(where + ": field \"" + name + "\" must be " + expected + ", not "
                    + value.getNodeType().name().toLowerCase(java.util.Locale.ROOT));
        }

        /**
         * The media file named by string field {@code field} of {@code manifest}: relative to the manifest's directory
         * and inside its tree unless that is opted out ({@link MediaPaths}); an error when it is not a path, leaves
         * the tree, or no regular file is there.
         */
        public Path media(String field, Path manifest) throws IOException {
            String name = string(field);
            try {
                return MediaPaths.resolve(manifest, name, field, where);
            } catch (InvalidPathException e) {
                throw new IOException(where + ": " + field + " is not a file path (" + e.getReason() + ")");
            }
        }
    }

    /** Receives each object in file order; returns false to stop reading. */
    public interface Visitor {
        boolean accept(Line line) throws IOException;
    }

    private JsonLines() {}

    /** Reads {@code file} line by line, handing each object to {@code visitor} until it returns false. */
    public static void read(Path file, Visitor visitor) throws IOException {
        if (Files.isDirectory(file)) throw new IOException(file + ": is a directory, not a JSONL file");
        try (BufferedReader reader = open(file)) {
            StringBuilder text = new StringBuilder();
            for (int number = 1; ; number++) {
                String where = file + ":" + number;
                boolean more;
                try {
                    more = readLine(reader, text, where);
                } catch (CharacterCodingException e) {
                    throw new IOException(where + ": not UTF-8 text");
                }
                if (number == 1 && !text.isEmpty() && text.charAt(0) == '\uFEFF') text.deleteCharAt(0); // a BOM
                String content = text.toString();
                if (!content.isBlank() && !visitor.accept(new Line(parse(content, where), number, where))) return;
                if (!more) return;
            }
        }
    }

    /**
     * Reads a manifest in either format: a JSON array of objects when the first non-whitespace character (after a
     * byte-order mark) is {@code [} (LLaVA's {@code llava_instruct_150k.json}), otherwise JSONL ({@link #read}).
     * The array is streamed element by element with the same strictness: each element must be an object of at most
     * {@link #MAX_LINE_CHARS} characters, keys are unique, nothing may follow the closing bracket. An element's
     * {@code where} is {@code file[index] (line L)}, index from 0, L the line its object starts on; its
     * {@link Line#number} is the index.
     */
    public static void readObjects(Path file, Visitor visitor) throws IOException {
        if (firstCharacter(file) == '[') readArray(file, visitor);
        else read(file, visitor);
    }

    /** The first character that is not whitespace or a byte-order mark, or -1 for an empty (or blank) file. */
    private static int firstCharacter(Path file) throws IOException {
        if (Files.isDirectory(file)) throw new IOException(file + ": is a directory, not a JSONL file");
        try (BufferedReader reader = open(file)) {
            for (int c; (c = reader.read()) >= 0; ) {
                if (c != '\uFEFF' && !Character.isWhitespace(c)) return c;
            }
            return -1;
        } catch (CharacterCodingException e) {
            throw new IOException(file + ":1: not UTF-8 text");
        }
    }

    private static BufferedReader open(Path file) throws IOException {
        try {
            // a decoder that reports malformed input rather than replacing it, so bad bytes are named
            return new BufferedReader(new InputStreamReader(Files.newInputStream(file),
                    StandardCharsets.UTF_8.newDecoder()));
        } catch (NoSuchFileException e) {
            throw new IOException(file + ": no such file");
        }
    }

    private static void readArray(Path file, Visitor visitor) throws IOException {
        try (BufferedReader reader = open(file)) {
            reader.mark(1);
            if (reader.read() != '\uFEFF') reader.reset(); // a BOM, which the JSON parser would refuse
            String where = file.toString();
            try (JsonParser parser = JSON.getFactory().createParser(reader)) { // keeps STRICT_DUPLICATE_DETECTION
                parser.nextToken(); // '[' (checked by firstCharacter)
                for (int index = 0; ; index++) {
                    where = file + "[" + index + "]";
                    JsonToken token = parser.nextToken();
                    if (token == JsonToken.END_ARRAY) break;
                    long startChar = parser.currentTokenLocation().getCharOffset();
                    where = file + "[" + index + "] (line " + parser.currentTokenLocation().getLineNr() + ")";
                    if (token == null) throw new IOException(where + ": the file ends inside the array");
                    JsonNode node = ELEMENT.readTree(parser);
                    if (!node.isObject()) throw new IOException(where + ": expected a JSON object, not "
                            + node.getNodeType().name().toLowerCase(java.util.Locale.ROOT));
                    if (parser.currentLocation().getCharOffset() - startChar > MAX_LINE_CHARS) {
                        throw new IOException(where + ": element longer than " + MAX_LINE_CHARS + " characters");
                    }
                    if (!visitor.accept(new Line(node, index, where))) return;
                }
                if (parser.nextToken() != null) throw new IOException(file + ": a second value follows the array");
            } catch (CharacterCodingException e) {
                throw new IOException(where + ": not UTF-8 text");
            } catch (JacksonException e) {
                String problem = e.getOriginalMessage();
                int source = problem.indexOf(" (start marker at [Source");
                throw new IOException(where + ": not valid JSON: " + (source > 0 ? problem.substring(0, source) : problem));
            }
        }
    }

    /** Reads one line into {@code text} (without its end); false at the end of the file. */
    private static boolean readLine(BufferedReader reader, StringBuilder text, String where) throws IOException {
        text.setLength(0);
        for (int c; (c = reader.read()) >= 0; ) {
            if (c == '\n') {
                if (!text.isEmpty() && text.charAt(text.length() - 1) == '\r') text.setLength(text.length() - 1);
                return true;
            }
            if (text.length() == MAX_LINE_CHARS) {
                throw new IOException(where + ": line longer than " + MAX_LINE_CHARS + " characters");
            }
            text.append((char) c);
        }
        return false;
    }

    private static JsonNode parse(String text, String where) throws IOException {
        JsonNode node;
        try {
            node = JSON.readTree(text);
        } catch (JacksonException e) {
            String problem = e.getOriginalMessage().startsWith("Trailing token") ? "a second value follows the first"
                    : e.getOriginalMessage();
            throw new IOException(where + ": not valid JSON: " + problem);
        }
        if (!node.isObject()) throw new IOException(where + ": expected a JSON object, not "
                + node.getNodeType().name().toLowerCase(java.util.Locale.ROOT));
        return node;
    }
}
