package xllm.speech;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;

import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeSet;

/**
 * The character vocabulary of the CIF ASR model's output: id 0 is {@code <unk>}, then the characters seen in the
 * training transcripts that the model may emit (lower-case a–z, digits, space, apostrophe, CJK ideographs), sorted.
 * Transcripts are {@link #normalise normalised} first (lower case, punctuation dropped, runs of spaces collapsed);
 * other letters (accented, other scripts) become {@code <unk>}. It is stored with the model (config.json).
 */
public final class CharVocabulary {

    public static final String UNKNOWN = "<unk>";
    /** How {@code <unk>} is written in decoded text. */
    public static final String UNKNOWN_TEXT = "\u2047";

    private final List<String> tokens;             // id → token
    private final Map<Integer, Integer> idOfCodePoint;

    private CharVocabulary(List<String> tokens) {
        if (tokens.isEmpty() || !tokens.get(0).equals(UNKNOWN)) {
            throw new IllegalArgumentException("a character vocabulary starts with " + UNKNOWN + ", got " + tokens);
        }
        this.tokens = List.copyOf(tokens);
        this.idOfCodePoint = new HashMap<>();
        for (int id = 1; id < tokens.size(); id++) {
            String token = tokens.get(id);
            if (token.codePointCount(0, token.length()) != 1) {
                throw new IllegalArgumentException("vocabulary entry " + id + " is not one character: '" + token + "'");
            }
            if (idOfCodePoint.put(token.codePointAt(0), id) != null) {
                throw new IllegalArgumentException("vocabulary entry '" + token + "' appears twice");
            }
        }
    }

    /** The allowed characters of {@code transcripts} (after normalisation), sorted, behind {@code <unk>}. */
    public static CharVocabulary build(Collection<String> transcripts) {
        TreeSet<Integer> seen = new TreeSet<>();
        for (String text : transcripts) normalise(text).codePoints().filter(CharVocabulary::allowed).forEach(seen::add);
        List<String> tokens = new ArrayList<>();
        tokens.add(UNKNOWN);
        for (int cp : seen) tokens.add(new String(Character.toChars(cp)));
        return new CharVocabulary(tokens);
    }

    public static CharVocabulary of(List<String> tokens) {
        return new CharVocabulary(tokens);
    }

    /** Lower case, ’ as ', punctuation and symbols dropped, whitespace runs as one space, trimmed. */
    public static String normalise(String text) {
        StringBuilder out = new StringBuilder();
        boolean space = false;
        for (int cp : text.toLowerCase(Locale.ROOT).replace('\u2019', '\'').codePoints().toArray()) {
            if (Character.isWhitespace(cp)) {
                space = out.length() > 0;
                continue;
            }
            if (!(Character.isLetterOrDigit(cp) || cp == '\'')) continue;
            if (space) out.append(' ');
            space = false;
            out.appendCodePoint(cp);
        }
        return out.toString();
    }

    /** Characters the model may emit: a–z, 0–9, space, apostrophe, Han ideographs. */
    static boolean allowed(int cp) {
        return cp >= 'a' && cp <= 'z' || cp >= '0' && cp <= '9' || cp == ' ' || cp == '\''
                || Character.UnicodeScript.of(cp) == Character.UnicodeScript.HAN;
    }

    /** Ids of the normalised text; characters outside the vocabulary are {@code <unk>} (0). */
    public long[] encode(String text) {
        return normalise(text).codePoints().mapToLong(cp -> idOfCodePoint.getOrDefault(cp, 0)).toArray();
    }

    public String decode(long[] ids) {
        StringBuilder out = new StringBuilder();
        for (long id : ids) {
            if (id < 0 || id >= tokens.size()) throw new IllegalArgumentException("token id " + id + " outside the vocabulary");
            out.append(id == 0 ? UNKNOWN_TEXT : tokens.get((int) id));
        }
        return out.toString();
    }

    public int size() {
        return tokens.size();
    }

    public List<String> tokens() {
        return tokens;
    }

    public ArrayNode toJson() {
        ArrayNode node = new ObjectMapper().createArrayNode();
        tokens.forEach(node::add);
        return node;
    }

    public static CharVocabulary fromJson(JsonNode node, String where) {
        if (!node.isArray() || node.isEmpty()) throw new IllegalArgumentException(where + ": vocabulary must be a non-empty array");
        List<String> tokens = new ArrayList<>();
        node.forEach(t -> tokens.add(t.asText()));
        try {
            return new CharVocabulary(tokens);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(where + ": " + e.getMessage(), e);
        }
    }
}
