package xllm.train;

import java.util.ArrayList;
import java.util.Collection;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;

/**
 * Parameter-name globs of a recipe's {@code trainable} list (docs/recipes.md): names are dotted
 * ({@code imageInterface.qformer.layers.3.attention.query.weight}); {@code *} matches part of one segment (never a
 * dot), {@code **} as a whole segment matches any number of segments: {@code a.**} = everything below {@code a}
 * (one or more segments), {@code **.bias} = every {@code bias} at any depth, {@code a.**.weight} = {@code a.weight},
 * {@code a.x.weight}, {@code a.x.y.weight}. Every other character, dots included, is literal. A glob matches whole
 * names only.
 */
public final class ParameterGlob {

    private final String glob;
    private final Pattern pattern;

    private ParameterGlob(String glob, Pattern pattern) {
        this.glob = glob;
        this.pattern = pattern;
    }

    /** Compiles a glob; {@link IllegalArgumentException} says what is wrong (empty segment, {@code **} inside a segment). */
    public static ParameterGlob compile(String glob) {
        if (glob == null || glob.isBlank()) throw new IllegalArgumentException("empty glob");
        if (glob.chars().anyMatch(Character::isWhitespace)) {
            throw new IllegalArgumentException("glob \"" + glob + "\" contains whitespace");
        }
        String[] segments = glob.split("\\.", -1);
        StringBuilder regex = new StringBuilder();
        boolean dotPending = false;      // a literal "\." goes before the next plain segment
        for (int i = 0; i < segments.length; i++) {
            String segment = segments[i];
            if (segment.isEmpty()) {
                throw new IllegalArgumentException("glob \"" + glob + "\" has an empty segment (leading, trailing or double dot)");
            }
            if (segment.equals("**")) {
                if (i > 0 && segments[i - 1].equals("**")) {
                    throw new IllegalArgumentException("glob \"" + glob + "\" repeats ** (one ** already spans any depth)");
                }
                if (segments.length == 1) regex.append("[^.]+(?:\\.[^.]+)*");   // every name
                else if (i == 0) regex.append("(?:[^.]+\\.)*");                   // zero or more leading segments
                else if (i == segments.length - 1) regex.append("(?:\\.[^.]+)+"); // one or more trailing segments
                else regex.append("(?:\\.[^.]+)*");                               // zero or more in between
                dotPending = i > 0;
                continue;
            }
            if (segment.contains("**")) {
                throw new IllegalArgumentException("glob \"" + glob + "\": ** must be a whole segment (got \"" + segment
                        + "\"); use * within a segment");
            }
            if (dotPending) regex.append("\\.");
            regex.append(segmentRegex(segment));
            dotPending = true;
        }
        return new ParameterGlob(glob, Pattern.compile(regex.toString()));
    }

    /** One segment: literal text with {@code *} = any run of non-dot characters ({@code *} alone: one whole segment). */
    private static String segmentRegex(String segment) {
        if (segment.equals("*")) return "[^.]+";
        StringBuilder regex = new StringBuilder();
        int start = 0;
        for (int star = segment.indexOf('*'); star >= 0; star = segment.indexOf('*', start)) {
            if (star > start) regex.append(Pattern.quote(segment.substring(start, star)));
            regex.append("[^.]*");
            start = star + 1;
        }
        if (start < segment.length()) regex.append(Pattern.quote(segment.substring(start)));
        return regex.toString();
    }

    public String glob() {
        return glob;
    }

    public boolean matches(String parameterName) {
        return pattern.matcher(parameterName).matches();
    }

    /** The text before the first wildcard: what every match starts with. */
    public String literalPrefix() {
        int star = glob.indexOf('*');
        return star < 0 ? glob : glob.substring(0, star);
    }

    /**
     * For each glob (in the given order), the names it matches (in the collection's iteration order); a glob that
     * matches nothing maps to an empty list. Throws {@link IllegalArgumentException} for a malformed glob.
     */
    public static Map<String, List<String>> match(List<String> globs, Collection<String> parameterNames) {
        Map<String, List<String>> matches = new LinkedHashMap<>();
        for (String glob : globs) {
            ParameterGlob compiled = compile(glob);
            List<String> hits = new ArrayList<>();
            for (String name : parameterNames) if (compiled.matches(name)) hits.add(name);
            matches.put(glob, hits);
        }
        return matches;
    }

    /**
     * Up to {@code limit} parameter names closest to what the glob seems to mean, for error hints: ranked by edit
     * distance between the glob's literal prefix and the same-length start of the name, then by the longer
     * shared prefix, then by name.
     */
    public static List<String> closest(String glob, Collection<String> parameterNames, int limit) {
        String prefix = glob.indexOf('*') < 0 ? glob : glob.substring(0, glob.indexOf('*'));
        record Scored(String name, int distance, int shared) {}
        List<Scored> scored = new ArrayList<>();
        for (String name : parameterNames) {
            String head = name.substring(0, Math.min(name.length(), prefix.length()));
            scored.add(new Scored(name, editDistance(prefix, head), sharedPrefix(prefix, name)));
        }
        scored.sort(Comparator.comparingInt(Scored::distance)
                .thenComparing(Comparator.comparingInt(Scored::shared).reversed())
                .thenComparing(Scored::name));
        return scored.stream().limit(limit).map(Scored::name).toList();
    }

    private static int sharedPrefix(String a, String b) {
        int n = 0;
        while (n < a.length() && n < b.length() && a.charAt(n) == b.charAt(n)) n++;
        return n;
    }

    /** Levenshtein distance (insert, delete, substitute cost 1). */
    static int editDistance(String a, String b) {
        int[] previous = new int[b.length() + 1];
        int[] current = new int[b.length() + 1];
        for (int j = 0; j <= b.length(); j++) previous[j] = j;
        for (int i = 1; i <= a.length(); i++) {
            current[0] = i;
            for (int j = 1; j <= b.length(); j++) {
                int substitute = previous[j - 1] + (a.charAt(i - 1) == b.charAt(j - 1) ? 0 : 1);
                current[j] = Math.min(substitute, Math.min(previous[j], current[j - 1]) + 1);
            }
            int[] swap = previous;
            previous = current;
            current = swap;
        }
        return previous[b.length()];
    }

    @Override
    public String toString() {
        return glob;
    }
}
